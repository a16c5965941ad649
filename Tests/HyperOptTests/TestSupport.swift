import Datasets
import Foundation
import HyperOpt
import Testing

/// Where the real MNIST lives for the tests: `$HYPERTRAIN_DATA`, else `data/mnist` under the
/// package root (found by walking up from this file). CI fetches it first; when it is absent
/// the real-data tests fail with a message saying how to get it, they do not skip.
enum RealData {
    static func packageRoot(filePath: String = #filePath) -> String? {
        var dir = (filePath as NSString).deletingLastPathComponent
        while dir != "/" && !dir.isEmpty {
            if FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent("Package.swift")) {
                return dir
            }
            dir = (dir as NSString).deletingLastPathComponent
        }
        return nil
    }

    static var directory: String {
        if let dir = ProcessInfo.processInfo.environment["HYPERTRAIN_DATA"], !dir.isEmpty { return dir }
        return ((packageRoot() ?? FileManager.default.currentDirectoryPath) as NSString)
            .appendingPathComponent("data/mnist")
    }

    static let missingMessage = Comment(rawValue:
        "MNIST not found in \(directory): run `make data` or `scripts/fetch-mnist.sh` first (or set HYPERTRAIN_DATA)")

    static var isPresent: Bool {
        ["train-images.idx3-ubyte", "train-labels.idx1-ubyte", "t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte"]
            .allSatisfy { FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent($0)) }
    }

    /// MNIST, loaded once per test process.
    private static let loaded: Result<MNIST, DatasetError>? = {
        guard isPresent else { return nil }
        return Result { () throws(DatasetError) in try MNIST.load(directory: directory) }
    }()

    /// The real MNIST, or a failure that says how to fetch it.
    static func mnist() throws -> MNIST {
        let result = try #require(loaded, missingMessage)
        return try result.get()
    }

    /// The splits of `config` from the real MNIST.
    static func data(for config: ExperimentConfig) throws -> ExperimentData {
        ExperimentData(splits: try mnist().splits(nTrain: config.nTrain, nValid: config.nValid, nTest: config.nTest))
    }
}

extension HyperState.Snapshot {
    /// `true` when φ, λ̂ and both optimizers' moments are all finite.
    var allFinite: Bool {
        phi.allFinite && lambdaHat.allFinite && phiM.allFinite && phiV.allFinite && lambdaM.allFinite && lambdaV.allFinite
    }
}

extension Array where Element == Float {
    var allFinite: Bool { allSatisfy { $0.isFinite } }
}
