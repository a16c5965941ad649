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
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // Settings files (`--config`): the cheapest YAML or TOML parser to build from a clean
        // clone (README, "Settings files").
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // /metrics: registry and text exposition (README, "Dependencies").
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C layer: module maps, generated code, and the hand-written kernels in their own target.
        // job: module map over OpenBLAS cblas + LAPACKE (no logic)
        .systemLibrary(name: "CBLAS", providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]),
        // job: module map over libzmq (no logic)
        .systemLibrary(name: "CZeroMQ", providers: [.apt(["libzmq3-dev"])]),
        // job: module map over zlib (no logic)
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // job: module map over SQLite (no logic)
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        // job: protoc-c output of `proto/hypertrain.proto` (generated, committed)
        .target(name: "CHypertrainProto", linkerSettings: [.linkedLibrary("protobuf-c")]),
        // job: protoc-c output of `proto/tensorboard/*.proto`, a subset of TensorBoard's own protos (generated, committed)
        .target(name: "CTensorBoardProto", linkerSettings: [.linkedLibrary("protobuf-c")]),
        // job: hand-written C kernels for Linalg's hot loops (AVX-512 gemm and sparse tiles, prefetching gather, FTZ/DAZ), `static inline`
        .target(name: "CKernels"),

        // Swift layer.
        // job: the one checked path into POSIX (EINTR retried, errno → error), atomic file replacement, CRC-32C
        .target(name: "SystemIO"),
        // job: aligned buffers, BLAS wrappers, Cholesky, AVX2 kernels, Philox4x32-10
        .target(name: "Linalg", dependencies: ["CBLAS", "CKernels"], swiftSettings: fastSwift),
        // job: MNIST IDX reader (raw/.gz), splits, verified fetch (SHA-256 by swift-crypto)
        .target(name: "Datasets", dependencies: ["CZlib", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: fastSwift),
        // job: sparse-input MLP, losses, regularizers, hypernetworks, Adam/SGD, curvature products
        .target(name: "Models", dependencies: ["Linalg"], swiftSettings: fastSwift),
        // job: Algorithms 1–4, task sampler, parameter-server state, GP-BO, unrolled differentiation; pure compute
        .target(name: "HyperOpt", dependencies: ["Models", "Datasets", "Linalg"], swiftSettings: fastSwift),
        // job: domain messages ⇄ protobuf-c envelopes + tensor frames
        .target(name: "Wire", dependencies: ["CHypertrainProto"]),
        // job: ZeroMQ sockets, poller, CURVE keys, ZAP authenticator
        .target(name: "Transport", dependencies: ["CZeroMQ", "SystemIO"]),
        // job: progress line, JSON Lines and summary (Foundation Codable), logging (swift-log), TensorBoard event files (protoc-c), Prometheus metrics (swift-prometheus) on a small HTTP endpoint with its own thread
        .target(name: "Telemetry", dependencies: ["SystemIO", "CTensorBoardProto",
                                                  .product(name: "Logging", package: "swift-log"),
                                                  .product(name: "Prometheus", package: "swift-prometheus")]),
        // job: a run's durable outputs: the checkpoint file format and the run reporter (progress, metrics, summary)
        .target(name: "RunState", dependencies: ["HyperOpt", "Telemetry", "SystemIO"], swiftSettings: fastSwift),
        // job: the peer layer (registration, liveness, dedup, leases, the I/O loop) and on it the hyper-training and study coordinators, workers, local launcher
        .target(name: "Cluster", dependencies: ["HyperOpt", "Linalg", "Models", "Wire", "Transport", "Telemetry", "RunState", "CSQLite",
                                                .product(name: "Prometheus", package: "swift-prometheus")], swiftSettings: fastSwift),
        // job: settings files (`--config`, YAML by Yams): parse, check against a command's flags, presets and resolved configs as files
        .target(name: "Settings", dependencies: ["HyperOpt", "Models", .product(name: "Yams", package: "Yams")]),
        // job: the paper's figures: runs, CSV tables, summaries (plots by scripts/plot_experiment.py)
        .target(name: "Experiments", dependencies: ["Cluster", "HyperOpt", "Models", "Linalg", "Telemetry", "RunState"], swiftSettings: fastSwift),
        // job: the CLI
        .executableTarget(
            name: "hypertrain",
            dependencies: [
                "Cluster", "Experiments", "HyperOpt", "Datasets", "Linalg", "Models", "RunState", "Settings", "Telemetry", "Transport", "Wire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: fastSwift
        ),

        // job: what several test targets share: the real-MNIST locator and a seeded SplitMix64 (tests only)
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "SystemIOTests", dependencies: ["SystemIO"]),
        .testTarget(name: "LinalgTests", dependencies: ["Linalg"]),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets", "TestSupport"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Linalg"], exclude: ["Fixtures"]),
        .testTarget(name: "HyperOptTests", dependencies: ["HyperOpt", "Datasets", "Models", "Linalg", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "WireTests", dependencies: ["Wire", "TestSupport"]),
        .testTarget(name: "TransportTests", dependencies: ["Transport"]),
        .testTarget(name: "TelemetryTests", dependencies: ["Telemetry", "SystemIO", "TestSupport", "Linalg", .product(name: "Prometheus", package: "swift-prometheus")]),
        .testTarget(name: "RunStateTests", dependencies: ["RunState", "HyperOpt", "SystemIO", "TestSupport"]),
        .testTarget(name: "ClusterTests", dependencies: ["Cluster", "HyperOpt", "Linalg", "Models", "Wire"]),
        .testTarget(name: "ExperimentsTests", dependencies: ["Experiments", "HyperOpt", "TestSupport"]),
        // `hypertrain` is a dependency so the binary the tests start is built first.
        .testTarget(name: "IntegrationTests", dependencies: ["hypertrain", "Cluster", "HyperOpt", "RunState", "Settings", "Transport", "Wire", "TestSupport",
                                                          .product(name: "ArgumentParser", package: "swift-argument-parser")]),
    ],
    swiftLanguageModes: [.v6]
)
