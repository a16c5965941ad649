// swift-tools-version: 6.0
import PackageDescription
import Foundation

// Hot loops (sparse input layer, elementwise kernels, Adam) are written in Swift and need
// AVX2/FMA to keep up with BLAS. Haswell (AVX2, 2013+) is the default;
// set HYPERTRAIN_TARGET_CPU=x86-64 to build for older processors.
#if arch(x86_64)
let targetCPU = ProcessInfo.processInfo.environment["HYPERTRAIN_TARGET_CPU"] ?? "haswell"
let fastSwift: [SwiftSetting] = [
    .unsafeFlags(["-target-cpu", targetCPU]),
    // Generic numerics (Float for training, Double for gradient checks) must be specialized
    // across module boundaries; without this the hot loops run unspecialized.
    .unsafeFlags(["-cross-module-optimization"], .when(configuration: .release)),
]
#else
let fastSwift: [SwiftSetting] = []
#endif

let package = Package(
    name: "Hypertrain",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "hypertrain", targets: ["hypertrain"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // Settings files (`--config`): the cheapest YAML or TOML parser to build from a clean
        // clone (README, "Settings files").
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // C layer: module maps and generated code only.
        .systemLibrary(name: "CBLAS", providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]),
        .systemLibrary(name: "CZeroMQ", providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "CHypertrainProto", linkerSettings: [.linkedLibrary("protobuf-c")]),

        // Swift layer.
        .target(name: "Linalg", dependencies: ["CBLAS"], swiftSettings: fastSwift),
        .target(name: "Datasets", dependencies: ["Linalg", "CZlib"], swiftSettings: fastSwift),
        .target(name: "Models", dependencies: ["Linalg"], swiftSettings: fastSwift),
        .target(name: "HyperOpt", dependencies: ["Models", "Datasets", "Linalg"], swiftSettings: fastSwift),
        .target(name: "Wire", dependencies: ["CHypertrainProto"]),
        .target(name: "Transport", dependencies: ["CZeroMQ"]),
        .target(name: "Telemetry"),
        .target(name: "Cluster", dependencies: ["HyperOpt", "Wire", "Transport", "Telemetry", "CSQLite"], swiftSettings: fastSwift),
        .target(name: "Settings", dependencies: ["HyperOpt", "Models", .product(name: "Yams", package: "Yams")]),
        .target(name: "Experiments", dependencies: ["Cluster", "HyperOpt", "Models", "Linalg", "Telemetry"], swiftSettings: fastSwift),
        .executableTarget(
            name: "hypertrain",
            dependencies: [
                "Cluster", "Experiments", "HyperOpt", "Datasets", "Models", "Settings", "Telemetry", "Transport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: fastSwift
        ),

        .testTarget(name: "LinalgTests", dependencies: ["Linalg"]),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Linalg"], exclude: ["Fixtures"]),
        .testTarget(name: "HyperOptTests", dependencies: ["HyperOpt", "Datasets", "Models"], exclude: ["Fixtures"]),
        .testTarget(name: "WireTests", dependencies: ["Wire"]),
        .testTarget(name: "TransportTests", dependencies: ["Transport"]),
        .testTarget(name: "TelemetryTests", dependencies: ["Telemetry"]),
        .testTarget(name: "ClusterTests", dependencies: ["Cluster", "HyperOpt", "Wire", "Models"]),
        .testTarget(name: "ExperimentsTests", dependencies: ["Experiments", "HyperOpt"]),
        .testTarget(name: "IntegrationTests", dependencies: ["hypertrain", "Cluster", "HyperOpt", "Settings", "Transport", "Wire"]),
    ],
    swiftLanguageModes: [.v6]
)
