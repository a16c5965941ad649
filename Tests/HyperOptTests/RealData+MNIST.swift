import Datasets
import Foundation
import HyperOpt
import Linalg
import Testing
import TestSupport

/// The real MNIST for HyperOpt tests (the locator is TestSupport's ``RealData``).
extension RealData {
    /// MNIST, loaded once per test process.
    private static let loaded: Result<MNIST, DatasetError>? = {
        guard isPresent else { return nil }
        return Result { () throws(DatasetError) in try MNIST.load(directory: directory) }
    }()

    /// The real MNIST, or a failure that says how to fetch it.
    static func mnist() throws -> MNIST {
        let result = try #require(loaded, Comment(rawValue: missingMessage))
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

/// Runs `body` on a fresh thread with denormals flushed to zero, the way every Hypertrain
/// role computes (`BLASRuntime.flushDenormalsToZero()` at start). The setting is per thread,
/// so a dedicated thread keeps it from leaking into other tests on the shared test threads.
/// Without it Adam's second moments drift into the denormal range and a 2,000-step CV trial
/// runs ~6× slower.
func withDenormalsFlushed<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        BLASRuntime.flushDenormalsToZero()
        box.result = Result { try body() }
        done.signal()
    }
    thread.stackSize = 8 << 20
    thread.start()
    done.wait()
    return try box.result!.get()
}

/// Hands a result from the worker thread back; the semaphore orders the write before the read.
private final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}
