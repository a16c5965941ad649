import RunState
import Datasets
import Foundation
import HyperOpt

/// A run's checkpoint and the data it was trained on, checked to belong together: what
/// `export` and `predict` start from.
struct CheckpointedRun {
    /// The checkpoint as read (φ, λ̂, the configuration).
    let checkpoint: Checkpoint
    /// The splits of the checkpoint's configuration.
    let data: ExperimentData

    /// The configuration.
    var config: ExperimentConfig { checkpoint.config }

    /// Reads the checkpoint at `path` (exactly that file: a corrupt one is an error, with a
    /// pointer to its `.prev` copy when there is one), loads the splits of its configuration
    /// from `dataDirectory` and refuses data whose fingerprint differs from the run's.
    static func load(checkpoint path: String, dataDirectory: String?) throws -> CheckpointedRun {
        let checkpoint: Checkpoint
        do {
            checkpoint = try Checkpoint.read(from: path)
        } catch {
            var message = "cannot use the checkpoint: \(error)"
            if case .missing = error {} else if FileManager.default.fileExists(atPath: path + ".prev") {
                message += " (the previous checkpoint is \(path).prev: pass --checkpoint \(path).prev to use it)"
            }
            throw CommandError(message)
        }
        let directory = dataDirectory ?? MNISTFetcher.defaultDirectory
        let data = try ExperimentData.load(directory: directory, config: checkpoint.config)
        guard data.fingerprint == checkpoint.dataFingerprint else {
            throw CommandError("the data in \(directory) is not the data of this run: its splits (n-train \(checkpoint.config.nTrain), n-valid \(checkpoint.config.nValid), n-test \(checkpoint.config.nTest)) have fingerprint \(Self.hex(data.fingerprint)), the checkpoint records \(Self.hex(checkpoint.dataFingerprint)); pass the run's --data directory")
        }
        return CheckpointedRun(checkpoint: checkpoint, data: data)
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }
}
