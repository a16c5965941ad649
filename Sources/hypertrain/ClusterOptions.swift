import ArgumentParser
import Foundation
import Cluster
import Settings
import Transport

extension ClusterMode: ExpressibleByArgument {}

/// Flags of the coordinator role that `run --workers N` shares.
struct ClusterRunOptions: ParsableArguments {
    @Option(help: "sync (bit-identical to one process) or async (stale gradients rejected).")
    var mode: ClusterMode = .sync
    @Option(name: .customLong("max-staleness"), help: "Async mode: reject gradients computed from φ more than N versions old, and hypergradients from λ̂ more than N versions old.")
    var maxStaleness: UInt64 = 4
    @Option(help: "Checkpoint file (written atomically every --checkpoint-every steps, at the end and on SIGINT/SIGTERM).")
    var checkpoint: String?
    @Option(name: .customLong("checkpoint-every"), help: "Steps between checkpoints (0: only at the end and on signals).")
    var checkpointEvery: Int = 1000
    @Flag(help: "Continue from --checkpoint (its .prev copy if the newest is corrupt).")
    var resume = false
    @Option(name: .customLong("heartbeat-ms"), help: "Heartbeat interval; a peer is dead after 5 missed intervals.")
    var heartbeatMs: Int = 1000

    static let settings: [String: SettingsFile.Kind] = [
        "mode": .text, "max-staleness": .integer, "checkpoint": .text, "checkpoint-every": .integer, "resume": .flag, "heartbeat-ms": .integer,
    ]

    func validate() throws {
        guard checkpointEvery >= 0 else { throw ValidationError("--checkpoint-every must be ≥ 0") }
        guard (20...60_000).contains(heartbeatMs) else { throw ValidationError("--heartbeat-ms must be in 20...60000") }
        if resume && checkpoint == nil { throw ValidationError("--resume needs --checkpoint FILE") }
        var isDirectory: ObjCBool = false
        if let checkpoint, FileManager.default.fileExists(atPath: checkpoint, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ValidationError("--checkpoint \(checkpoint) is a directory; give a file path such as \(checkpoint)/checkpoint.bin")
        }
    }

    func apply(to o: inout Coordinator.Options) {
        o.mode = mode
        o.maxStaleness = maxStaleness
        o.checkpointPath = checkpoint
        o.checkpointEvery = checkpointEvery
        o.resume = resume
        o.heartbeatInterval = Double(heartbeatMs) / 1000
    }
}
