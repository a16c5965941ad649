import Foundation
import Testing
import Cluster

/// The benchmarks' synthetic workers (`hypertrain bench-worker`, `SyntheticWorker`) against a
/// real coordinator process: every result they send is accepted — the right sizes, the λ and
/// minibatch rows the coordinator checks — so `bench cluster` measures applied gradients, not
/// refusals. Not a timed test.
@Suite(.serialized) struct SyntheticWorkerTests {
    @Test("Synthetic trainers and validator: every result accepted (fig4, 2 trainers)", arguments: ["sync", "async"])
    func accepted(mode: String) throws {
        let scratch = try Scratch("synth-\(mode)")
        let procs = try Processes(scratch)
        defer { procs.stopAll() }
        let endpoint = scratch.ipc()
        let summary = scratch.file("summary.json")
        let steps = 40
        // fig4: 784-10 (D = 7,850), one global λ, linear hypernetwork (P = 15,700). The values
        // are arbitrary: the coordinator checks sizes, finiteness, λ and rows.
        let (d, p, h) = (7850, 15_700, 1)
        let replay = SyntheticWorker.Replay(trainGradW: Array(repeating: 1e-4, count: d), trainGradPhi: Array(repeating: 1e-4, count: p),
                                            trainLambda: Array(repeating: -2, count: h), trainLoss: 0.5,
                                            validGradW: Array(repeating: 1e-4, count: d), validGradLambda: Array(repeating: 1e-4, count: h),
                                            validLoss: 0.5)
        let replayPath = scratch.file("replay.bin")
        try replay.write(to: replayPath)
        #expect(try SyntheticWorker.Replay.read(from: replayPath) == replay)
        let coordinator = try procs.start("coordinator", ["coordinator", "--preset", "fig4", "--steps", "\(steps)", "--mode", mode,
                                                          "--bind", endpoint, "--insecure", "--eval-every", "0", "--summary", summary,
                                                          "--data", try Env.data(), "--quiet"])
        for (i, role) in ["trainer", "trainer", "validator"].enumerated() {
            _ = try procs.start("synthetic\(i)", ["bench-worker", "--connect", endpoint, "--role", role, "--replay", replayPath])
        }
        let status = try #require(coordinator.wait(timeout: 60), "the coordinator did not finish\n\(procs.logs)")
        #expect(status == 0, "\(procs.logs)")
        let s = try Outputs.object(summary)
        #expect(s["steps"] as? Int == steps, "\(s)")
        // Nothing refused for its content; async mode may refuse a result as stale (protocol §4).
        let refused = try #require(s["results_refused"] as? [String: Any])
        #expect(mode == "sync" ? refused.isEmpty : Set(refused.keys).isSubset(of: ["stale"]), "\(s)")
        let gradients = try #require(s["gradients_applied"] as? Int)
        // Sync: the preset's 2 tasks per step; async: one gradient is one step.
        #expect(mode == "sync" ? gradients == 2 * steps : gradients >= steps, "\(s)")
        // (An async run may end before the validator's first task: its steps do not wait for it.)
        if mode == "sync" { #expect(s["hypergradients_applied"] as? Int == steps, "\(s)") }
    }
}
