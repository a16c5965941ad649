import Foundation
import Testing
@preconcurrency import Glibc
import Cluster
import RunState
import Transport
import Wire
import TestSupport

/// The cluster as users run it: real `hypertrain` processes over ipc:// and tcp://127.0.0.1,
/// killed and restarted, fed garbage, and checked against the single-process run.
/// Serialized: the machine has 2 cores and the peers' liveness timeouts are ~1 s.
@Suite(.serialized) struct ClusterIntegrationTests {
    /// The short configuration (≈ 1–3 s on 2 cores).
    static let short = experimentFlags(steps: 400)
    /// Long enough to kill something in the middle.
    static let long = experimentFlags(steps: 1500)

    // MARK: 1. Determinism

    @Test("sync mode in every local layout reproduces the single-process run bit for bit (2 trainer processes or threads, the validator a thread or a process; --workers auto)",
          arguments: [["--workers", "2"], ["--workers", "2", "--validator", "process"], ["--workers", "2", "--trainers", "thread"],
                      ["--workers", "1", "--trainers", "thread", "--validator", "process"], ["--workers", "auto"]])
    func syncMatchesSingleProcess(layout: [String]) throws {
        let scratch = try Scratch("sync-\(layout.joined(separator: "-"))")
        let procs = try Processes(scratch)
        defer { procs.stopAll() }
        let data = try Env.data()
        let ref = try References.shared.reference(Self.short)

        let ckpt = scratch.file("c.bin"), metrics = scratch.file("m.jsonl"), summary = scratch.file("s.json")
        let (cluster, status) = try procs.run("run-\(layout.joined(separator: "-"))", ["run"] + Self.short + layout + [
            "--checkpoint", ckpt, "--metrics", metrics, "--summary", summary,
            "--log-every", "1", "--quiet", "--data", data])
        try #require(status == 0, "run \(layout.joined(separator: " ")) failed\n\(procs.logs)")

        let lambdas = Outputs.lambdaByStep(metrics)
        #expect(lambdas.count == 400 && ref.lambdaByStep.count == 400, "metrics lines: cluster \(lambdas.count), single \(ref.lambdaByStep.count)")
        let differing = (1...400).filter { lambdas[$0] == nil || lambdas[$0] != ref.lambdaByStep[$0] }
        #expect(differing.isEmpty, "λ̂ differs at steps \(differing.prefix(10)) (first: cluster \(lambdas[differing.first ?? 1] ?? []) vs single \(ref.lambdaByStep[differing.first ?? 1] ?? []))")

        let c = try Outputs.checkpoint(ckpt)
        #expect(c.snapshot.step == 400)
        #expect(bits(c.snapshot.phi) == bits(ref.checkpoint.snapshot.phi), "φ differs")
        #expect(bits(c.snapshot.lambdaHat) == bits(ref.checkpoint.snapshot.lambdaHat), "λ̂ differs")
        #expect(c.snapshot == ref.checkpoint.snapshot, "optimizer state or counters differ")
        let s = try Outputs.object(summary)
        #expect(s["steps"] as? Int == 400)
        #expect(s["mode"] as? String == "sync")
        #expect(rejections(s).isEmpty, "honest workers had results rejected: \(rejections(s))\n\(cluster.report)")
    }

    // MARK: 2. A worker dies

    @Test("kill -9 of a training worker mid-run: the run finishes with a new worker and equals the uninterrupted run")
    func workerKilled() throws {
        let scratch = try Scratch("wkill")
        let procs = try Processes(scratch)
        defer { procs.stopAll() }
        let data = try Env.data()
        let ref = try References.shared.reference(Self.long)
        let ep = scratch.ipc()
        let metrics = scratch.file("m.jsonl"), summary = scratch.file("s.json"), ckpt = scratch.file("c.bin")

        let coordinator = try procs.start("coordinator", ["coordinator"] + Self.long + [
            "--bind", ep, "--insecure", "--heartbeat-ms", "200", "--checkpoint", ckpt, "--checkpoint-every", "0",
            "--metrics", metrics, "--summary", summary, "--log-every", "1", "--quiet", "--data", data])
        let victim = try procs.start("worker-1", ["worker", "--connect", ep, "--data", data])
        let survivor = try procs.start("worker-2", ["worker", "--connect", ep, "--data", data])
        let validator = try procs.start("validator", ["validator", "--connect", ep, "--data", data])

        // Kill it once it is surely working: registered (data loaded) and the run past step 200.
        try #require(Poll.until(timeout: 60) { (Outputs.lastStep(metrics) >= 200 && registeredID(victim) != nil) || !coordinator.isRunning },
                     "no step 200 with the worker registered within 60 s\n\(procs.logs)")
        try #require(coordinator.isRunning && Outputs.lastStep(metrics) < 1200,
                     "the run ended (or nearly) before the worker could be killed\n\(procs.logs)")
        let victimID = try #require(registeredID(victim), "the worker to kill never registered\n\(victim.report)")
        victim.killAndReap()
        let killedAt = Outputs.lastStep(metrics)
        // The coordinator notices within ~1 s (5 × 200 ms); then a replacement joins.
        #expect(Poll.until(timeout: 10) { coordinator.stderr.contains("lost \(victimID) ") || !coordinator.isRunning },
                "the coordinator never declared the killed worker lost\n\(coordinator.report)")
        let replacement = try procs.start("worker-3", ["worker", "--connect", ep, "--data", data])

        let status = try #require(coordinator.wait(timeout: 120), "coordinator still running after 120 s\n\(procs.logs)")
        #expect(status == 0, "coordinator exit status \(status)\n\(procs.logs)")
        for w in [survivor, replacement, validator] {
            let st = w.wait(timeout: 10)
            #expect(st == 0, "\(w.name) exit \(st.map(String.init) ?? "none (still running)")\n\(w.report)")
        }

        let s = try Outputs.object(summary)
        #expect(s["steps"] as? Int == 1500)
        #expect((s["peers_lost"] as? Int ?? 0) >= 1, "peers_lost \(s["peers_lost"] ?? "nil")")
        #expect((s["registrations"] as? Int ?? 0) >= 4, "registrations \(s["registrations"] ?? "nil")")
        #expect(s["interrupted"] as? Bool == false)
        #expect(replacement.stderr.contains("registered as"), "the replacement never registered\n\(replacement.report)")

        // Sync mode is deterministic whoever computes: same result as one process.
        let c = try Outputs.checkpoint(ckpt)
        #expect(c.snapshot.step == 1500)
        #expect(bits(c.snapshot.lambdaHat) == bits(ref.checkpoint.snapshot.lambdaHat),
                "λ̂ \(c.snapshot.lambdaHat) vs uninterrupted \(ref.checkpoint.snapshot.lambdaHat) (worker killed at step \(killedAt))")
        #expect(bits(c.snapshot.phi) == bits(ref.checkpoint.snapshot.phi), "φ differs from the uninterrupted run")
        #expect((s["lambda_hat"] as? [Double]) == ref.checkpoint.snapshot.lambdaHat.map(Double.init))
    }

    // MARK: 3. The coordinator dies

    @Test("kill -9 of the coordinator, restarted with --resume: the workers reconnect and the result equals the uninterrupted run")
    func coordinatorKilledAndResumed() throws {
        let scratch = try Scratch("ckill")
        let procs = try Processes(scratch)
        defer { procs.stopAll() }
        let ref = try References.shared.reference(Self.long)
        let (saved, c, metrics) = try Self.killCoordinatorAndResume(Self.long, steps: 1500, scratch: scratch, procs: procs)
        #expect(c.snapshot.step == 1500)
        #expect(bits(c.snapshot.phi) == bits(ref.checkpoint.snapshot.phi), "φ differs from the uninterrupted run (resumed from step \(saved.snapshot.step))")
        #expect(bits(c.snapshot.lambdaHat) == bits(ref.checkpoint.snapshot.lambdaHat),
                "λ̂ \(c.snapshot.lambdaHat) vs uninterrupted \(ref.checkpoint.snapshot.lambdaHat)")
        #expect(c.snapshot == ref.checkpoint.snapshot)
        let s = try Outputs.object(scratch.file("s2.json"))
        #expect(s["steps"] as? Int == 1500)
        // The resumed metrics continue the first run's: every step up to the end is there.
        let lambdas = Outputs.lambdaByStep(metrics)
        #expect(lambdas[1500] == ref.lambdaByStep[1500])
        let resumedSteps = (Int(saved.snapshot.step) + 1)...1500
        #expect(resumedSteps.allSatisfy { lambdas[$0] == ref.lambdaByStep[$0] }, "resumed steps' λ̂ differ from the uninterrupted run")
    }

    @Test("a worker that reconnects just as the run ends (its Shutdown went to its old socket) is told Shutdown by the finished coordinator, not left waiting --give-up-after")
    func reconnectAtTheEnd() throws {
        let scratch = try Scratch("farewell")
        let procs = try Processes(scratch)
        defer { procs.stopAll() }
        let data = try Env.data()
        let ep = scratch.ipc()
        let summary = scratch.file("s.json")
        // Heartbeat 1.5 s: the farewell lasts two intervals from the final Shutdowns.
        let coordinator = try procs.start("coordinator", ["coordinator"] + Self.short + [
            "--bind", ep, "--insecure", "--heartbeat-ms", "1500", "--summary", summary, "--quiet", "--data", data])
        _ = try procs.start("worker", ["worker", "--connect", ep, "--data", data])
        _ = try procs.start("validator", ["validator", "--connect", ep, "--data", data])
        // The summary is written after the Shutdowns went out: the coordinator is saying farewell.
        try #require(Poll.until(timeout: 60) { FileManager.default.fileExists(atPath: summary) || !coordinator.isRunning },
                     "no summary within 60 s\n\(procs.logs)")
        let context = try ZMQContext()
        defer { context.close() }
        let late = try RawPeer(context, ep)
        defer { late.close() }
        let reply = try late.send(.hello(Hello(role: .trainer, hostname: "late", pid: 3, previousWorkerID: "trainer-1")))
        guard case .shutdown(let s)? = reply?.body else {
            Issue.record("expected Shutdown, got \(reply?.body.name ?? "no reply")\n\(coordinator.report)"); return
        }
        #expect(s.reason == ShutdownReason.runComplete)
        let status = try #require(coordinator.wait(timeout: 30), "coordinator still running\n\(coordinator.report)")
        #expect(status == 0, "\(coordinator.report)")
    }

    /// A coordinator with two workers and a validator (`flags`, `steps` steps, a checkpoint every
    /// 50 steps) killed with kill -9 past step 150, then started again with `--resume` on the
    /// same endpoint (the workers find it by themselves). Returns the checkpoint it resumed
    /// from, the final checkpoint and the metrics file (`s2.json` in `scratch` is the summary).
    static func killCoordinatorAndResume(_ flags: [String], steps: Int, scratch: Scratch, procs: Processes) throws
        -> (saved: Checkpoint, final: Checkpoint, metrics: String) {
        let data = try Env.data()
        let ep = scratch.ipc()
        let ckpt = scratch.file("c.bin"), metrics = scratch.file("m.jsonl")
        func coordinatorArgs(_ summary: String, resume: Bool) -> [String] {
            ["coordinator"] + flags + ["--bind", ep, "--insecure", "--heartbeat-ms", "200",
                                       "--checkpoint", ckpt, "--checkpoint-every", "50",
                                       "--metrics", metrics, "--summary", scratch.file(summary),
                                       "--log-every", "1", "--quiet", "--data", data] + (resume ? ["--resume"] : [])
        }

        let first = try procs.start("coordinator-1", coordinatorArgs("s1.json", resume: false))
        let workers = [try procs.start("worker-1", ["worker", "--connect", ep, "--data", data]),
                       try procs.start("worker-2", ["worker", "--connect", ep, "--data", data]),
                       try procs.start("validator", ["validator", "--connect", ep, "--data", data])]
        try #require(Poll.until(timeout: 60) { Outputs.lastStep(metrics) >= 150 || !first.isRunning },
                     "no step 150 within 60 s\n\(procs.logs)")
        try #require(first.isRunning && Outputs.lastStep(metrics) < steps - 50, "the run ended before the coordinator could be killed\n\(procs.logs)")
        first.killAndReap()
        let killedAt = Outputs.lastStep(metrics)
        let saved = try Outputs.checkpoint(ckpt)
        #expect(saved.snapshot.step >= 150 && saved.snapshot.step % 50 == 0 && saved.snapshot.step <= UInt64(killedAt),
                "checkpoint at step \(saved.snapshot.step), killed at step \(killedAt)")
        #expect(!FileManager.default.fileExists(atPath: scratch.file("s1.json")), "a SIGKILLed coordinator cannot have written a summary")

        let second = try procs.start("coordinator-2", coordinatorArgs("s2.json", resume: true))
        let status = try #require(second.wait(timeout: 120), "resumed coordinator still running after 120 s\n\(procs.logs)")
        #expect(status == 0, "resumed coordinator exit \(status)\n\(procs.logs)")
        #expect(second.stderr.contains("resumed from"), "\(second.report)")
        for w in workers {
            let st = w.wait(timeout: 30)
            #expect(st == 0, "\(w.name) exit \(st.map(String.init) ?? "none (still running)")\n\(w.report)")
        }
        return (saved, try Outputs.checkpoint(ckpt), metrics)
    }

    // MARK: 3b. The pipelined schedule

    /// Per-weight λ with a factorized hypernetwork (the hidden layer the coordinator reuses),
    /// pipelined.
    static let pipelined = experimentFlags(steps: 600) + ["--scope", "per-weight", "--hypernet", "factorized:4", "--pipelined", "on"]

    @Test("pipelined: run --workers 2 and a coordinator killed (kill -9) and resumed with --resume both equal the pipelined single-process run bit for bit, task parameters included")
    func pipelinedMatchesSingleProcessAndResumes() throws {
        let scratch = try Scratch("pipelined")
        let procs = try Processes(scratch)
        defer { procs.stopAll() }
        let data = try Env.data()
        let ref = try References.shared.reference(Self.pipelined)
        #expect(ref.checkpoint.snapshot.taskParameters != nil)

        // The local layout (validator thread, 2 trainer processes).
        let local = scratch.file("local.bin"), localMetrics = scratch.file("local.jsonl")
        let (run, runStatus) = try procs.run("run-pipelined", ["run"] + Self.pipelined + [
            "--workers", "2", "--checkpoint", local, "--metrics", localMetrics, "--log-every", "1", "--quiet", "--data", data])
        try #require(runStatus == 0, "run --workers 2 --pipelined on failed\n\(run.report)")
        #expect(try Outputs.checkpoint(local).snapshot == ref.checkpoint.snapshot, "the local cluster differs from the single process")
        let localLambdas = Outputs.lambdaByStep(localMetrics)
        #expect((1...600).allSatisfy { localLambdas[$0] == ref.lambdaByStep[$0] }, "λ̂ differs at some step")

        // A coordinator killed mid-run and resumed from its checkpoint.
        let (saved, c, metrics) = try Self.killCoordinatorAndResume(Self.pipelined, steps: 600, scratch: scratch, procs: procs)
        #expect(saved.snapshot.taskParameters != nil)
        #expect(c.snapshot == ref.checkpoint.snapshot, "resumed from step \(saved.snapshot.step): differs from the uninterrupted run")
        let lambdas = Outputs.lambdaByStep(metrics)
        #expect((Int(saved.snapshot.step) + 1...600).allSatisfy { lambdas[$0] == ref.lambdaByStep[$0] }, "resumed steps' λ̂ differ")
        // (Workers still registered with the killed coordinator are told NOT_REGISTERED once, then
        // register again; nothing else may be refused.)
        let s = try Outputs.object(scratch.file("s2.json"))
        #expect(rejections(s).keys.allSatisfy { $0 == "notRegistered" }, "honest workers had results rejected: \(rejections(s))")
    }

    @Test("--pipelined on with --mode async is refused before anything starts")
    func pipelinedAsyncRefused() throws {
        let scratch = try Scratch("pipelined-async")
        let procs = try Processes(scratch)
        defer { procs.stopAll() }
        let (child, status) = try procs.run("run", ["run"] + Self.pipelined + ["--workers", "1", "--mode", "async", "--quiet", "--data", try Env.data()])
        #expect(status != 0)
        #expect(child.stderr.contains("--pipelined on is a sync schedule"), "\(child.report)")
    }

    // MARK: 4. Garbage in

    @Test("a live coordinator fed a few hundred malformed messages refuses each, changes nothing, and then finishes the run")
    func fuzzedCoordinator() throws {
        let scratch = try Scratch("fuzz")
        let procs = try Processes(scratch)
        defer { procs.stopAll() }
        let data = try Env.data()
        let ref = try References.shared.reference(Self.short)
        let ep = scratch.ipc()
        let summary = scratch.file("s.json"), ckpt = scratch.file("c.bin")
        let coordinator = try procs.start("coordinator", ["coordinator"] + Self.short + [
            "--bind", ep, "--heartbeat-ms", "200", "--checkpoint", ckpt, "--checkpoint-every", "0",
            "--summary", summary, "--quiet", "--data", data])
        try #require(Poll.until(timeout: 30) { coordinator.stderr.contains("listening on") || !coordinator.isRunning },
                     "coordinator did not start\n\(coordinator.report)")
        try #require(coordinator.isRunning, "\(coordinator.report)")

        let context = try ZMQContext()
        defer { context.close() }
        var rng = SplitMix64(seed: 0x5EED)
        var sent = 0

        // Random bytes, empty frames, truncated and over-long messages, from an unregistered socket.
        let garbage = try RawPeer(context, ep)
        defer { garbage.close() }
        let validGradient = WireCodec.encode(Message(senderID: "trainer-9", sequence: 3, body: .gradient(
            Gradient(step: 0, taskIndex: 0, leaseID: 1, trainLoss: 0.5, gradPhi: [Float](repeating: 0.25, count: 64),
                     lambdas: [-3.5], indices: Array(0..<50)))))
        let validHello = WireCodec.encode(Message(sequence: 1, body: .hello(Hello(role: .trainer, hostname: "fuzz", pid: 1))))
        for i in 0..<240 {
            var frames: [[UInt8]]
            switch i % 6 {
            case 0:  // random frames
                frames = (0..<Int.random(in: 1...4, using: &rng)).map { _ in rng.bytes(Int.random(in: 0...200, using: &rng)) }
            case 1:  // empty frames
                frames = Array(repeating: [], count: Int.random(in: 1...3, using: &rng))
            case 2:  // a gradient's envelope cut short
                frames = validGradient
                frames[0] = Array(frames[0].prefix(Int.random(in: 1..<frames[0].count, using: &rng)))
            case 3:  // a Hello's envelope cut short (never a whole Hello: we must stay unregistered)
                frames = [Array(validHello[0].prefix(Int.random(in: 1..<validHello[0].count, using: &rng)))]
            case 4:  // tensor frames dropped, truncated, or one too many
                frames = validGradient
                switch (i / 6) % 4 {
                case 0: frames.removeLast()
                case 1: frames[1].removeLast(Int.random(in: 1...8, using: &rng))
                case 2: frames.append(rng.bytes(12))
                default: frames[2] = []
                }
            default: // random bit flips in a whole gradient
                frames = validGradient
                for _ in 0..<3 {
                    let f = Int.random(in: 0..<frames.count, using: &rng)
                    guard !frames[f].isEmpty else { continue }
                    frames[f][Int.random(in: 0..<frames[f].count, using: &rng)] ^= UInt8(1 << Int.random(in: 0...7, using: &rng))
                }
            }
            try garbage.sendRaw(frames)
            sent += 1
        }
        let garbageReplies = garbage.drain(expecting: 240, timeout: 10)
        #expect(garbageReplies.count == 240, "every refused message is answered (got \(garbageReplies.count) replies to 240)")
        #expect(garbageReplies.allSatisfy { if case .error = $0.body { true } else { false } },
                "non-error replies: \(garbageReplies.filter { if case .error = $0.body { false } else { true } }.map(\.body.name))")

        // Targeted refusals, each checked for its reply code.
        let stranger = try RawPeer(context, ep)
        defer { stranger.close() }
        func expectCode(_ peer: RawPeer, _ frames: [[UInt8]], _ codes: Set<ErrorCode>, _ what: String) throws {
            try peer.sendRaw(frames)
            sent += 1
            let reply = peer.reply()
            guard case .error(let e)? = reply?.body else {
                Issue.record("\(what): expected Error \(codes), got \(reply?.body.name ?? "no reply")")
                return
            }
            #expect(codes.contains(e.code), "\(what): got \(e.code) (\(e.message)), expected \(codes)")
        }
        for v: UInt32 in [0, 2, 7, .max] {
            try expectCode(stranger, WireCodec.encode(Message(sequence: 10, body: .hello(Hello(role: .trainer)), protocolVersion: v)),
                           [.versionMismatch], "protocol version \(v)")
        }
        // Unknown body (oneof field 99): UNEXPECTED per WireError.errorCode; MALFORMED tolerated here (see CoordinatorCoreTests).
        try expectCode(stranger, [PB.envelope(sequence: 11, extra: PB.bytes(99, []))], [.unexpected, .malformed], "unknown body field")
        // Declared tensors far beyond the 512 MiB limit, with tiny frames, including overflowing sums.
        try expectCode(stranger, [PB.envelope(sequence: 12, tensors: [("grad_phi", 0, 1 << 40), ("lambda", 0, 1), ("indices", 1, 1)],
                                              extra: PB.gradientBody()), [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
                       [.malformed, .badTensor], "huge declared tensor")
        try expectCode(stranger, [PB.envelope(sequence: 13, tensors: [("grad_phi", 0, UInt64.max / 2), ("lambda", 0, UInt64.max / 2), ("indices", 1, 3)],
                                              extra: PB.gradientBody()), [], [], []],
                       [.malformed, .badTensor], "overflowing declared tensors")
        // A well-formed gradient from a peer that never said Hello.
        try expectCode(stranger, validGradient, [.notRegistered], "gradient from an unregistered peer")
        try expectCode(stranger, WireCodec.encode(Message(senderID: "x", sequence: 14, body: .workRequest)), [.notRegistered], "work request from an unregistered peer")

        // A registered trainer sending bad results for its real lease.
        let rogue = try RawPeer(context, ep)
        defer { rogue.close() }
        guard case .welcome(let welcome)? = try rogue.send(.hello(Hello(role: .trainer, hostname: "rogue", pid: 2)))?.body else {
            Issue.record("no Welcome for the rogue trainer\n\(coordinator.report)")
            return
        }
        rogue.workerID = welcome.workerID
        let p = Int(welcome.spec.numPhiParams), h = Int(welcome.spec.numHyperparameters), batch = Int(welcome.spec.batchSize)
        guard case .trainTask(let task)? = try rogue.send(.workRequest)?.body else {
            Issue.record("no TrainTask for the rogue trainer"); return
        }
        #expect(task.phi.count == p && task.lambdaHat.count == h)
        func gradient(_ lease: UInt64, gradCount: Int, fill: Float = 0.01, lambdas: [Float]? = nil, indices: [Int32]? = nil) -> Message.Body {
            .gradient(Gradient(step: task.step, taskIndex: task.taskIndex, leaseID: lease, trainLoss: 0.1,
                               gradPhi: [Float](repeating: fill, count: gradCount), lambdas: lambdas ?? task.lambdaHat,
                               indices: indices ?? Array(repeating: 0, count: batch)))
        }
        func rogueExpect(_ body: Message.Body, _ codes: Set<ErrorCode>, _ what: String) throws {
            let reply = try rogue.send(body)
            sent += 1
            guard case .error(let e)? = reply?.body else {
                Issue.record("\(what): expected \(codes), got \(reply?.body.name ?? "no reply")"); return
            }
            #expect(codes.contains(e.code), "\(what): got \(e.code) (\(e.message)), expected \(codes)")
            #expect(e.inReplyTo == rogue.sequence, "\(what): in_reply_to \(e.inReplyTo), sequence \(rogue.sequence)")
        }
        // A refused result closes its lease and the task goes back in the queue (protocol §4):
        // the rogue asks for it again before each next bad result.
        var lease = task.leaseID
        func renew() throws {
            guard case .trainTask(let again)? = try rogue.send(.workRequest)?.body else {
                Issue.record("the refused task was not handed out again"); return
            }
            #expect(again.taskIndex == task.taskIndex && again.leaseID != lease)
            lease = again.leaseID
        }
        try rogueExpect(gradient(lease, gradCount: p - 1), [.badTensor], "grad_phi one short")
        try renew()
        try rogueExpect(gradient(lease, gradCount: p + 7), [.badTensor], "grad_phi too long")
        try renew()
        try rogueExpect(gradient(lease, gradCount: p, lambdas: []), [.badTensor], "no λ samples")
        try renew()
        try rogueExpect(gradient(lease, gradCount: p, indices: Array(repeating: 1_000_000, count: batch)), [.badTensor], "indices out of range")
        try renew()
        try rogueExpect(gradient(lease, gradCount: p, lambdas: task.lambdaHat.map { $0 + 9 }), [.badTensor], "λ samples not from (seed, step, task)")
        try renew()
        try rogueExpect(gradient(lease + 1000, gradCount: p), [.stale], "unknown lease")
        try rogueExpect(gradient(lease, gradCount: p, fill: .nan), [.nonFinite], "NaN gradient")
        try rogueExpect(gradient(lease, gradCount: p), [.stale], "lease given up by the NaN gradient")
        try rogueExpect(.hypergradient(Hypergradient(step: 0, leaseID: lease, validLoss: 1, gradLambda: [1])), [.unauthorized, .stale], "trainer sending a hypergradient")
        try rogueExpect(.trialResult(TrialResult(trialID: 1, leaseID: 1, trainLoss: 0, validLoss: 0, testLoss: 0)), [.unexpected], "trial result to a hyper-training coordinator")
        // Sender id that is not the registered one.
        try rogue.sendRaw(WireCodec.encode(Message(senderID: "trainer-999", sequence: rogue.sequence + 1, body: .workRequest)))
        rogue.sequence += 1
        sent += 1
        let foreign = rogue.reply()
        var foreignCode: ErrorCode? = nil
        if case .error(let e)? = foreign?.body { foreignCode = e.code }
        #expect(foreignCode == .unexpected, "foreign sender id: got \(foreign?.body.name ?? "no reply")")
        // A repeated sequence number (that of the trial result, which passed deduplication).
        try rogue.sendRaw(WireCodec.encode(Message(senderID: rogue.workerID, sequence: rogue.sequence - 1, body: .workRequest)))
        sent += 1
        _ = rogue.reply()

        // Nothing was applied: the coordinator still answers and is at step 0.
        let observer = try RawPeer(context, ep)
        defer { observer.close() }
        guard case .status(let st)? = try observer.send(.statusRequest)?.body else {
            Issue.record("no Status after \(sent) bad messages\n\(coordinator.report)"); return
        }
        #expect(st.step == 0)
        #expect(coordinator.isRunning)
        rogue.close()   // it gave up its lease with the NaN gradient; it is declared dead after ~1 s

        // Honest workers now complete the run; the result is the single-process one.
        let workers = [try procs.start("worker-1", ["worker", "--connect", ep, "--data", data]),
                       try procs.start("worker-2", ["worker", "--connect", ep, "--data", data]),
                       try procs.start("validator", ["validator", "--connect", ep, "--data", data])]
        let status = try #require(coordinator.wait(timeout: 90), "coordinator still running after 90 s\n\(procs.logs)")
        #expect(status == 0, "coordinator exit \(status)\n\(procs.logs)")
        for w in workers { #expect(w.wait(timeout: 10) == 0, "\(w.report)") }

        let s = try Outputs.object(summary)
        #expect(s["steps"] as? Int == 400)
        let r = rejections(s)
        for reason in ["malformed", "versionMismatch", "notRegistered", "badTensor", "nonFinite", "stale", "unexpected", "duplicate"] {
            #expect((r[reason] ?? 0) >= 1, "no '\(reason)' in gradients_rejected \(r)")
        }
        #expect(r.values.reduce(0, +) >= 250, "\(sent) bad messages, \(r.values.reduce(0, +)) rejections counted: \(r)")
        let c = try Outputs.checkpoint(ckpt)
        #expect(bits(c.snapshot.phi) == bits(ref.checkpoint.snapshot.phi), "a refused message changed φ")
        #expect(bits(c.snapshot.lambdaHat) == bits(ref.checkpoint.snapshot.lambdaHat), "a refused message changed λ̂")
    }

    // MARK: 5. CURVE

    @Test("CURVE on TCP: an unauthorized key is refused (worker gives up, coordinator logs it); the authorized peers finish the run")
    func curveAuthorization() throws {
        let scratch = try Scratch("curve")
        let procs = try Processes(scratch)
        defer { procs.stopAll() }
        let data = try Env.data()
        let keys = scratch.file("keys"), authorized = scratch.file("authorized_keys")
        try FileManager.default.createDirectory(atPath: keys, withIntermediateDirectories: true)
        for (name, authorize) in [("server", false), ("good", true), ("bad", false)] {
            let (k, st) = try procs.run("keygen-\(name)", ["keygen", "--out", keys, "--name", name] + (authorize ? ["--authorize", authorized] : []), timeout: 20)
            try #require(st == 0, "\(k.report)")
        }
        let badPublic = try String(contentsOfFile: keys + "/bad.pub", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "public=", with: "")
        #expect(badPublic.count == 40)
        #expect(try !String(contentsOfFile: authorized, encoding: .utf8).contains(badPublic))

        let summary = scratch.file("s.json")
        var coordinator: Child? = nil
        var endpoint = ""
        for attempt in 0..<3 where coordinator == nil {
            endpoint = "tcp://127.0.0.1:\(try freeTCPPort())"
            let c = try procs.start("coordinator-\(attempt)", ["coordinator"] + Self.short + [
                "--bind", endpoint, "--server-key", keys + "/server.key", "--authorized-keys", authorized,
                "--heartbeat-ms", "200", "--summary", summary, "--quiet", "--data", data])
            _ = Poll.until(timeout: 30) { c.stderr.contains("listening on") || !c.isRunning }
            if c.isRunning && c.stderr.contains("listening on") { coordinator = c } else { c.killAndReap() }
        }
        let server = try #require(coordinator, "coordinator could not bind a TCP port\n\(procs.logs)")
        #expect(server.stderr.contains("CURVE"), "\(server.report)")

        let intruderStart = Date()
        let intruder = try procs.start("worker-unauthorized", ["worker", "--connect", endpoint, "--key", keys + "/bad.key",
                                                                "--server-public-key", keys + "/server.pub", "--give-up-after", "3", "--data", data])
        #expect(Poll.until(timeout: 15) { server.stderr.contains(badPublic) },
                "the coordinator never logged refusing \(badPublic)\n\(server.report)")
        #expect(server.stderr.contains("refused CURVE client key \(badPublic)"), "\(server.report)")

        let peers = [try procs.start("worker-authorized", ["worker", "--connect", endpoint, "--key", keys + "/good.key",
                                                            "--server-public-key", keys + "/server.pub", "--data", data]),
                     try procs.start("validator-authorized", ["validator", "--connect", endpoint, "--key", keys + "/good.key",
                                                               "--server-public-key", keys + "/server.pub", "--data", data])]
        let status = try #require(server.wait(timeout: 90), "coordinator still running after 90 s\n\(procs.logs)")
        #expect(status == 0, "\(procs.logs)")
        for p in peers { #expect(p.wait(timeout: 10) == 0, "\(p.report)") }
        // It started ≥ 3 s ago with --give-up-after 3: it must be gone (or going) by now.
        let refused = try #require(intruder.wait(timeout: 10), "the unauthorized worker did not give up within \(Int(Date().timeIntervalSince(intruderStart))) s of --give-up-after 3\n\(intruder.report)")
        #expect(refused != 0, "the unauthorized worker exited 0\n\(intruder.report)")
        #expect(intruder.stderr.contains("no coordinator"), "\(intruder.report)")
        #expect(!intruder.stderr.contains("registered as"), "the unauthorized worker got in\n\(intruder.report)")

        let s = try Outputs.object(summary)
        #expect(s["steps"] as? Int == 400)
        #expect((s["registrations"] as? Int ?? 0) >= 2, "\(s["registrations"] ?? "nil")")
        // Every registration the coordinator logged is one of the authorized processes.
        let registeredPIDs = server.stderr.split(separator: "\n").filter { $0.contains(": registered ") }.compactMap { line in
            line.range(of: "pid ").flatMap { Int32(line[$0.upperBound...].prefix { $0.isNumber }) }
        }
        #expect(!registeredPIDs.isEmpty && Set(registeredPIDs).isSubset(of: Set(peers.map(\.pid))),
                "registered pids \(registeredPIDs), authorized peers \(peers.map(\.pid)), intruder \(intruder.pid)")
    }

    @Test("keygen as in the README (`--out keys` on a fresh checkout) creates the key directory")
    func keygenCreatesDirectory() throws {
        let scratch = try Scratch("keygen")
        let procs = try Processes(scratch)
        defer { procs.stopAll() }
        let dir = scratch.file("keys")
        let (child, status) = try procs.run("keygen", ["keygen", "--out", dir, "--name", "coordinator",
                                                       "--authorize", dir + "/authorized_keys"], timeout: 20)
        #expect(status == 0, "\(child.report)")
        #expect(FileManager.default.fileExists(atPath: dir + "/coordinator.key"))
        #expect(FileManager.default.fileExists(atPath: dir + "/coordinator.pub"))
        let attributes = try? FileManager.default.attributesOfItem(atPath: dir + "/coordinator.key")
        #expect((attributes?[.posixPermissions] as? Int) == 0o600)
    }

    // MARK: Liveness of idle peers

    @Test("a validator with nothing to do (phase 1 of the global algorithm) stays registered: the coordinator's heartbeats reach it")
    func idleValidatorStaysRegistered() throws {
        let scratch = try Scratch("idle")
        let procs = try Processes(scratch)
        defer { procs.stopAll() }
        let data = try Env.data()
        let ep = scratch.ipc()
        let summary = scratch.file("s.json")
        let coordinator = try procs.start("coordinator", ["coordinator"] + experimentFlags(steps: 1550) + [
            "--algorithm", "global", "--phase1-steps", "1500", "--bind", ep, "--heartbeat-ms", "200",
            "--summary", summary, "--quiet", "--data", data])
        let trainer = try procs.start("worker", ["worker", "--connect", ep, "--data", data])
        let validator = try procs.start("validator", ["validator", "--connect", ep, "--data", data])
        // Phase 1 (1,500 steps, several seconds) has no validation task: the validator idles,
        // far longer than the 1 s (5 × 200 ms) after which a peer that hears nothing gives up.
        let status = try #require(coordinator.wait(timeout: 90), "coordinator still running after 90 s\n\(procs.logs)")
        #expect(status == 0, "\(procs.logs)")
        for p in [trainer, validator] { #expect(p.wait(timeout: 10) == 0, "\(p.report)") }
        let s = try Outputs.object(summary)
        #expect(s["steps"] as? Int == 1550)
        #expect(!validator.stderr.contains("coordinator silent"), "the idle validator thought the coordinator was dead\n\(validator.report)")
        #expect(s["peers_lost"] as? Int == 0, "peers_lost \(s["peers_lost"] ?? "nil"), registrations \(s["registrations"] ?? "nil") for 2 live peers\n\(procs.logs)")
        #expect(s["registrations"] as? Int == 2, "registrations \(s["registrations"] ?? "nil")")
    }

    // MARK: 6. Async

    @Test("async mode with 2 workers completes the configured steps, one applied gradient per step")
    func asyncMode() throws {
        let scratch = try Scratch("async")
        let procs = try Processes(scratch)
        defer { procs.stopAll() }
        let summary = scratch.file("s.json")
        let (run, status) = try procs.run("run-async", ["run"] + Self.short + [
            "--workers", "2", "--mode", "async", "--heartbeat-ms", "200", "--summary", summary, "--quiet", "--data", try Env.data()], timeout: 120)
        try #require(status == 0, "\(run.report)")
        let s = try Outputs.object(summary)
        #expect(s["steps"] as? Int == 400)
        #expect(s["mode"] as? String == "async")
        #expect((s["gradients_applied"] as? Int ?? 0) >= 400, "gradients_applied \(s["gradients_applied"] ?? "nil")")
        #expect((s["lambda_hat"] as? [Double])?.allSatisfy(\.isFinite) == true)
        // Honest workers of the same build are never refused as sending a wrong tensor; only
        // staleness may cost gradients in async mode.
        #expect(rejections(s)["badTensor"] == nil, "honest async gradients refused as BAD_TENSOR: \(rejections(s)) (CoordinatorCore checks λ samples against the *current* λ̂)")
    }

    // MARK: 7. Ctrl-C

    @Test("SIGINT to `run --workers 2` checkpoints, exits non-zero and leaves no child process behind (the validator a thread of the coordinator or a process; the trainers processes or threads)",
          arguments: [("thread", "process"), ("process", "process"), ("thread", "thread")])
    func interruptedLocalRun(placement: (validator: String, trainers: String)) throws {
        let validator = placement.validator
        let scratch = try Scratch("sigint-\(validator)-\(placement.trainers)")
        let procs = try Processes(scratch)
        defer { procs.stopAll() }
        let ckpt = scratch.file("c.bin"), metrics = scratch.file("m.jsonl")
        let run = try procs.start("run-sigint", ["run"] + experimentFlags(steps: 1_000_000) + [
            "--workers", "2", "--validator", validator, "--trainers", placement.trainers, "--checkpoint", ckpt, "--checkpoint-every", "0", "--metrics", metrics,
            "--log-every", "1", "--quiet", "--data", try Env.data()])
        try #require(Poll.until(timeout: 60) { Outputs.lastStep(metrics) >= 50 || !run.isRunning }, "no step 50\n\(run.report)")
        try #require(run.isRunning, "\(run.report)")
        let children = childPIDs(of: run.pid)
        let expected = (validator == "process" ? 1 : 0) + (placement.trainers == "process" ? 2 : 0)
        #expect(children.count == expected, "expected \(expected) child processes (validator \(validator), trainers \(placement.trainers)), found \(children)")
        #expect(!FileManager.default.fileExists(atPath: ckpt), "no checkpoint before the signal with --checkpoint-every 0")

        let mask = run.blockedSignals
        run.signal(SIGINT)
        let status = try #require(run.wait(timeout: 30), "run still going 30 s after SIGINT (\(mask))\n\(run.report)")
        // Checked at once: a child the parent did not stop would still be running (or an
        // unreaped zombie) right now.
        let survivors = children.filter(isAlive)
        #expect(survivors.isEmpty, "children still alive after the parent exited: \(survivors)")
        for pid in survivors { _ = Glibc.kill(pid, SIGKILL) }
        #expect(status != 0, "exit status \(status) after SIGINT")
        #expect(status == 130, "exit status \(status), expected 130\n\(run.report)")
        let c = try Outputs.checkpoint(ckpt)
        #expect(c.snapshot.step >= 50 && c.snapshot.step < 1_000_000, "checkpoint at step \(c.snapshot.step)")
        #expect(run.stderr.contains("interrupted at step \(c.snapshot.step)"), "\(run.report)")
    }

    @Test("kill -9 of a local trainer process: `run` starts another in its place and ends bit-identical to the single process")
    func localTrainerKilled() throws {
        let scratch = try Scratch("local-kill")
        let procs = try Processes(scratch)
        defer { procs.stopAll() }
        let ref = try References.shared.reference(Self.long)
        let ckpt = scratch.file("c.bin"), metrics = scratch.file("m.jsonl")
        let run = try procs.start("run-local-kill", ["run"] + Self.long + [
            "--workers", "2", "--checkpoint", ckpt, "--metrics", metrics, "--log-every", "1", "--data", try Env.data()])
        try #require(Poll.until(timeout: 60) { Outputs.lastStep(metrics) >= 100 || !run.isRunning }, "no step 100\n\(run.report)")
        let children = childPIDs(of: run.pid)
        let victim = try #require(children.first, "no child process\n\(run.report)")
        _ = Glibc.kill(victim, SIGKILL)
        let status = try #require(run.wait(timeout: 120), "run still going 120 s after the kill\n\(run.report)")
        #expect(status == 0, "exit status \(status)\n\(run.report)")
        #expect(run.stderr.contains("started pid"), "no restart logged\n\(run.report)")
        let c = try Outputs.checkpoint(ckpt)
        #expect(c.snapshot.step == 1500)
        #expect(bits(c.snapshot.phi) == bits(ref.checkpoint.snapshot.phi), "φ differs from the single process")
        #expect(bits(c.snapshot.lambdaHat) == bits(ref.checkpoint.snapshot.lambdaHat), "λ̂ differs from the single process")
    }

    // MARK: 8. Bad flags

    @Test("bad flags are refused with a clear message before any work starts",
          arguments: [
            (["run", "--sigma", "-1"], "sigma"),
            (["run", "--sigma=-1"], "sigma must be a finite number"),
            (["coordinator", "--bind", "tcp://0.0.0.0:5555"], "--insecure"),
            (["run", "--workers", "2", "--resume"], "--resume needs --checkpoint"),
            (["run", "--workers", "two"], "--workers"),
            (["run", "--workers", "65"], "--workers must be in 0...64 or auto"),
            (["run", "--workers", "2", "--validator", "gpu"], "--validator"),
            (["run", "--resume"], "--resume"),
            (["worker", "--connect", "tcp://x:1"], "--server-public-key"),
            (["validator", "--connect", "tcp://x:1"], "--server-public-key"),
            (["run", "--workers", "2", "--heartbeat-ms", "5"], "--heartbeat-ms"),
          ])
    func badFlags(flags: [String], message: String) throws {
        let scratch = try Scratch("flags")
        let procs = try Processes(scratch)
        defer { procs.stopAll() }
        let summary = scratch.file("s.json"), metrics = scratch.file("m.jsonl")
        let outputs = flags[0] == "run" || flags[0] == "coordinator" ? ["--summary", summary, "--metrics", metrics] : []
        let (child, status) = try procs.run("bad-flags", flags + outputs + ["--data", try Env.data()], timeout: 20)
        #expect(status != 0, "\(child.report)")
        #expect(child.stderr.contains(message), "stderr should mention '\(message)'\n\(child.report)")
        #expect(!child.stderr.contains("listening on") && !child.stderr.contains("registered"), "\(child.report)")
        #expect(!FileManager.default.fileExists(atPath: summary) && !FileManager.default.fileExists(atPath: metrics),
                "output files written despite bad flags")
    }
}

// MARK: - Helpers

/// The worker id a peer process logged on registering ("registered as trainer-2").
func registeredID(_ child: Child) -> String? {
    guard let r = child.stderr.range(of: "registered as ") else { return nil }
    let id = child.stderr[r.upperBound...].prefix { !$0.isWhitespace }
    return id.isEmpty ? nil : String(id)
}

/// Child processes of `pid` (what `pgrep -P pid` lists), from /proc.
func childPIDs(of pid: Int32) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { candidate in
        guard let stat = try? String(contentsOfFile: "/proc/\(candidate)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 && Int32(fields[1]) == pid
    }.sorted()
}

/// Running (or stopped), but not a zombie and not gone.
func isAlive(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return false }
    let state = stat[stat.index(after: close)...].split(separator: " ").first
    return state != "Z" && state != "X"
}

/// A DEALER socket speaking (or mis-speaking) the protocol from the test process.
final class RawPeer {
    let socket: Socket
    var workerID = ""
    var sequence: UInt64 = 100

    init(_ context: ZMQContext, _ endpoint: String) throws {
        socket = try Socket(context: context, kind: .dealer)
        try socket.set(.linger(milliseconds: 0))
        try socket.connect(endpoint)
    }

    func close() { socket.close() }

    func sendRaw(_ frames: [[UInt8]]) throws { try socket.send(frames) }

    /// Sends `body` with the next sequence number and waits for the reply.
    func send(_ body: Message.Body) throws -> Message? {
        sequence += 1
        try socket.send(WireCodec.encode(Message(senderID: workerID, sequence: sequence, body: body)))
        return reply()
    }

    /// The next non-heartbeat message within `timeout` seconds.
    func reply(timeout: Double = 5) -> Message? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard let frames = try? socket.receive(timeoutMs: Int32(max(1, deadline.timeIntervalSinceNow * 1000))),
                  let m = try? WireCodec.decode(frames) else { continue }
            if case .heartbeat = m.body { continue }
            return m
        }
        return nil
    }

    /// Replies until `count` arrived or nothing came for a while (bounded by `timeout`).
    func drain(expecting count: Int, timeout: Double) -> [Message] {
        var out: [Message] = []
        let deadline = Date().addingTimeInterval(timeout)
        while out.count < count && Date() < deadline {
            guard let m = reply(timeout: min(2, deadline.timeIntervalSinceNow)) else { break }
            out.append(m)
        }
        return out
    }
}

/// Hand-built protobuf for envelopes `WireCodec` would never produce (proto/hypertrain.proto).
enum PB {
    static func varint(_ v: UInt64) -> [UInt8] {
        var v = v, out: [UInt8] = []
        repeat {
            let b = UInt8(v & 0x7F)
            v >>= 7
            out.append(v == 0 ? b : b | 0x80)
        } while v != 0
        return out
    }

    static func key(_ field: UInt64, _ wire: UInt64) -> [UInt8] { varint(field << 3 | wire) }
    static func uint(_ field: UInt64, _ v: UInt64) -> [UInt8] { key(field, 0) + varint(v) }
    static func bytes(_ field: UInt64, _ b: [UInt8]) -> [UInt8] { key(field, 2) + varint(UInt64(b.count)) + b }

    /// Envelope header (version 1) + tensor descriptions + whatever `extra` holds (a body).
    static func envelope(sequence: UInt64, tensors: [(String, UInt64, UInt64)] = [], extra: [UInt8]) -> [UInt8] {
        var e = uint(1, 1) + bytes(2, Array("trainer-1".utf8)) + uint(5, sequence)
        for (name, dtype, length) in tensors {
            e += bytes(6, bytes(1, Array(name.utf8)) + uint(2, dtype) + uint(3, length))
        }
        return e + extra
    }

    /// A Gradient body (field 15): step 0, task 0, lease 1.
    static func gradientBody() -> [UInt8] { bytes(15, uint(1, 0) + uint(2, 0) + uint(3, 1)) }
}
