import Foundation
import Testing
import HyperOpt
import Linalg
import Models
import Wire
@testable import Cluster

/// `CoordinatorCore` driven directly, without sockets: fake peers (byte-array routing ids)
/// send `WireCodec.encode`d messages into `handle(peer:frames:now:)`, time moves only through
/// the `now` arguments and `tick(now:)`, and results are computed with the same
/// `HyperTrainer` the real workers use, on a tiny synthetic data set.
@Suite struct CoordinatorCoreTests {
    // MARK: Registration and work

    @Test("a Hello is answered with Welcome carrying a fresh worker id, the spec and the heartbeat settings")
    func helloGetsWelcome() throws {
        let h = CoreHarness()
        var t = h.peer(1)
        let actions = h.core.handle(peer: t.id, frames: t.frames(.hello(Hello(role: .trainer, hostname: "fake", pid: 7))), now: h.t0)
        let welcome = try #require(CoreHarness.welcome(in: actions, to: t.id))
        #expect(welcome.workerID.hasPrefix("trainer-"))
        #expect(welcome.spec == h.core.spec)
        #expect(welcome.spec.numPhiParams == UInt64(h.config.phiCount))
        #expect(welcome.spec.numHyperparameters == UInt32(h.config.hyperparameterCount))
        #expect(welcome.spec.dataFingerprint == CoreHarness.fingerprint)
        #expect(welcome.heartbeatIntervalMs == 200)
        #expect(welcome.heartbeatLiveness == 5)
        #expect(h.core.counters.registrations == 1)
        #expect(h.core.peerCounts.trainers == 1 && h.core.peerCounts.validators == 0)

        var v = h.peer(2)
        let vw = try #require(CoreHarness.welcome(in: h.core.handle(peer: v.id, frames: v.frames(.hello(Hello(role: .validator))), now: h.t0), to: v.id))
        #expect(vw.workerID.hasPrefix("validator-"))
        #expect(vw.workerID != welcome.workerID)
        #expect(h.core.peerCounts.trainers == 1 && h.core.peerCounts.validators == 1)
    }

    @Test("a WorkRequest gets a TrainTask (trainer) or ValidTask (validator) with the current φ and λ̂; a third trainer waits")
    func workRequestGetsTasks() throws {
        let h = CoreHarness()
        var a = try h.register(1, .trainer)
        var b = try h.register(2, .trainer)
        var c = try h.register(3, .trainer)
        var v = try h.register(4, .validator)

        let ta = try #require(CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id))
        #expect(ta.step == 0 && ta.taskIndex == 0 && ta.tasksPerStep == 2)
        #expect(ta.phi == h.core.state.phi.array)
        #expect(ta.lambdaHat == h.core.state.lambdaHat.array)
        let tb = try #require(CoreHarness.trainTask(in: h.core.handle(peer: b.id, frames: b.frames(.workRequest), now: h.t0), to: b.id))
        #expect(tb.step == 0 && tb.taskIndex == 1)
        #expect(tb.leaseID != ta.leaseID)
        // Both tasks of step 0 are out: the third trainer is kept waiting (no task now).
        let none = h.core.handle(peer: c.id, frames: c.frames(.workRequest), now: h.t0)
        #expect(CoreHarness.trainTask(in: none, to: c.id) == nil)

        let vt = try #require(CoreHarness.validTask(in: h.core.handle(peer: v.id, frames: v.frames(.workRequest), now: h.t0), to: v.id))
        #expect(vt.step == 0)
        #expect(vt.phi == h.core.state.phi.array)
        #expect(vt.lambdaHat == h.core.state.lambdaHat.array)
    }

    @Test("a step completes only when all K gradients and the hypergradient are in, in any arrival order")
    func roundNeedsEveryResult() throws {
        let h = CoreHarness()
        var a = try h.register(1, .trainer)
        var b = try h.register(2, .trainer)
        var v = try h.register(3, .validator)
        let ta = try #require(CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id))
        let tb = try #require(CoreHarness.trainTask(in: h.core.handle(peer: b.id, frames: b.frames(.workRequest), now: h.t0), to: b.id))
        #expect(!h.core.firstRoundIssued, "the validation task is still unassigned")
        let vt = try #require(CoreHarness.validTask(in: h.core.handle(peer: v.id, frames: v.frames(.workRequest), now: h.t0), to: v.id))
        #expect(h.core.firstRoundIssued)
        let before = h.core.state.snapshot()

        // Task 1 first, then the hypergradient, then task 0: only the last completes the step.
        var r = h.core.handle(peer: b.id, frames: b.frames(.gradient(h.gradient(for: tb, phi: tb.phi))), now: h.t0)
        #expect(CoreHarness.acked(r, to: b.id))
        #expect(CoreHarness.completedSteps(r).isEmpty)
        #expect(h.core.state.snapshot() == before)
        r = h.core.handle(peer: v.id, frames: v.frames(.hypergradient(h.hypergradient(for: vt, phi: vt.phi))), now: h.t0)
        #expect(CoreHarness.acked(r, to: v.id))
        #expect(CoreHarness.completedSteps(r).isEmpty)
        #expect(h.core.state.snapshot() == before)
        r = h.core.handle(peer: a.id, frames: a.frames(.gradient(h.gradient(for: ta, phi: ta.phi))), now: h.t0)
        #expect(CoreHarness.acked(r, to: a.id))
        #expect(CoreHarness.completedSteps(r) == [1])
        #expect(h.core.state.step == 1)
        #expect(h.core.counters.gradientsApplied == 2)
        #expect(h.core.counters.hypergradientsApplied == 1)
        #expect(h.core.counters.rejected.isEmpty)

        // Same step in one process: bit for bit.
        let local = LocalRun(config: h.config, data: h.data)
        _ = try local.step()
        #expect(h.core.state.snapshot() == local.state.snapshot())
    }

    /// Hypernetwork settings the bit-identity test runs under (every kind, raw and centred input).
    /// The last two run the stable recipe (schedule, λ̂ warm-up, divergence guard) with a
    /// guard so touchy that it rolls back during the test.
    static let hypernetSettings: [(hypernet: String, scope: RegularizationScope, centred: Bool, guarded: Bool)] = [
        ("linear", .global, false, false), ("linear", .perClass, true, false),
        ("factorized:3", .perWeight, false, false), ("factorized:3", .perWeight, true, false), ("mlp:4", .perLayer, false, false),
        ("linear", .perClass, true, true), ("factorized:3", .perWeight, true, true),
    ]

    /// The stable recipe with a guard that trips on any rise of the validation batch loss.
    static func touchyRecipe(_ c: inout ExperimentConfig) {
        var g = DivergenceGuardSettings()
        g.threshold = 1.000_001; g.smoothing = 1; g.warmupSteps = 1; g.snapshotEvery = 2; g.maxRollbacks = 20
        c.divergenceGuard = g
        c.lambdaWarmupSteps = 2
        c = Recipe.stable.resolve(c, given: [.divergenceGuard, .lambdaWarmupSteps, .validBatchSize])
    }

    /// How the two fake trainers of the bit-identity test work.
    enum TrainerForms: CaseIterable, Sendable {
        /// φ tasks; the first replies ∂L/∂w (the task allows it), the second ∂L/∂φ (a peer
        /// that ignores the offer): every step's gradients are added in task order at its end.
        case phiTasks
        /// Both take weight tasks (λ and w = φ(λ) in, ∂L/∂w out), as ours do: the φ step
        /// streams the recorded factors; tasks reach the I/O loop through `taskSink`.
        case weightTasks
        /// The first takes weight tasks, the second φ tasks and replies ∂L/∂φ (mixed steps).
        case mixed
    }

    @Test("several steps driven through fake peers equal LocalRun bit for bit, trainers taking weight tasks or φ tasks and replying with ∂L/∂w or ∂L/∂φ, a weight-task validator (φ only re-sent when it changed), lockstep and pipelined",
          arguments: hypernetSettings.indices.flatMap { i in [(i, false), (i, true)] }, TrainerForms.allCases)
    func manyStepsMatchLocalRun(setting: (Int, Bool), forms: TrainerForms) throws {
        let (kind, scope, centred, guarded) = Self.hypernetSettings[setting.0]
        let pipelined = setting.1
        let steps = guarded ? 14 : 6
        let h = CoreHarness(steps: steps) { c in
            c.hypernet = HypernetKind(parsing: kind)!
            c.scope = scope
            if centred { c.hypernetInput = .centred }
            if guarded { Self.touchyRecipe(&c) }
            if pipelined { c.pipelined = true }
        }
        // The validator takes weight tasks (w = φ(λ̂) in, ∂L/∂w out) as ours does; the
        // φ form of the validation task is covered by the single-step test above.
        var peers = [try h.register(1, .trainer, weightTasks: forms != .phiTasks),
                     try h.register(2, .trainer, weightTasks: forms == .weightTasks),
                     try h.register(3, .validator, weightTasks: true)]
        var sunk: [CoordinatorAction] = []
        if forms == .weightTasks { h.core.taskSink = { sunk.append($0) } }
        var pending: [Int: Message.Body] = [:]
        var cachedPhi: [Int: [Float]] = [:]
        func absorb(_ returned: [CoordinatorAction]) {
            let actions = sunk + returned
            sunk = []
            for (i, p) in peers.enumerated() {
                for m in CoreHarness.messages(in: actions, to: p.id) {
                    switch m.body {
                    case .trainTask(let t) where !t.weights.isEmpty:
                        #expect(forms != .phiTasks && (i == 0 || forms == .weightTasks) && t.phi.isEmpty)
                        // The first trainer echoes λ, the second leaves it out (both allowed).
                        pending[i] = .gradient(h.gradient(forWeightTask: t, echoLambda: i == 0))
                    case .trainTask(let t):
                        #expect(i == 1 || forms == .phiTasks)
                        if !t.phi.isEmpty { cachedPhi[i] = t.phi }
                        #expect(t.acceptsWeightGradient)
                        pending[i] = .gradient(h.gradient(for: t, phi: cachedPhi[i]!, weightForm: i == 0))
                    case .validTask(let t):
                        #expect(!t.weights.isEmpty && t.phi.isEmpty)
                        pending[i] = .hypergradient(h.hypergradient(forWeightTask: t))
                    default: break
                    }
                }
            }
        }
        for i in peers.indices { absorb(h.core.handle(peer: peers[i].id, frames: peers[i].frames(.workRequest), now: h.t0)) }
        var rounds = 0
        while !h.core.isFinished && rounds < 100 {
            rounds += 1
            // Deliver results in a rotating order so arrival order differs between steps.
            let order = peers.indices.map { ($0 + rounds) % peers.count }
            for i in order {
                guard let body = pending.removeValue(forKey: i) else { continue }
                absorb(h.core.handle(peer: peers[i].id, frames: peers[i].frames(body), now: h.t0))
                absorb(h.core.handle(peer: peers[i].id, frames: peers[i].frames(.workRequest), now: h.t0))
            }
        }
        #expect(h.core.isFinished)
        #expect(h.core.state.step == UInt64(steps))
        #expect(h.core.counters.rejected.isEmpty, "rejections: \(h.core.counters.rejected)")

        let local = LocalRun(config: h.config, data: h.data)
        for _ in 0..<steps { _ = try local.step() }
        if guarded { #expect(local.state.rollbacks > 0, "the touchy guard never rolled back") }
        #expect(h.core.state.rollbacks == local.state.rollbacks)
        let s = h.core.state.snapshot(), l = local.state.snapshot()
        #expect(s.phi.map(\.bitPattern) == l.phi.map(\.bitPattern))
        #expect(s.lambdaHat.map(\.bitPattern) == l.lambdaHat.map(\.bitPattern))
        #expect(s == l)
        #expect((s.taskParameters != nil) == pipelined)
        if pipelined {
            // The schedule changes the run: one-step-old gradients are not the lockstep ones.
            var lockstep = h.config
            lockstep.pipelined = nil
            let other = LocalRun(config: lockstep, data: h.data)
            for _ in 0..<steps { _ = try other.step() }
            #expect(other.state.phi.array != l.phi)
        }
    }

    // MARK: Refused messages

    @Test("a message from an unregistered peer is answered NOT_REGISTERED and changes nothing")
    func unregisteredPeer() throws {
        let h = CoreHarness()
        var stranger = h.peer(9)
        stranger.workerID = "trainer-1"
        let before = h.core.state.snapshot()
        for body: Message.Body in [.workRequest, .heartbeat(Heartbeat(unixMs: 1)),
                                   .gradient(Gradient(step: 0, taskIndex: 0, leaseID: 1, trainLoss: 0.5,
                                                      gradPhi: Array(repeating: 0, count: h.config.phiCount),
                                                      lambdas: [-3.5], indices: [0, 1, 2, 3]))] {
            let r = h.core.handle(peer: stranger.id, frames: stranger.frames(body), now: h.t0)
            let e = try #require(CoreHarness.error(in: r, to: stranger.id))
            #expect(e.code == .notRegistered)
            #expect(e.inReplyTo == stranger.sequence)
        }
        #expect(h.core.counters.rejected["notRegistered"] == 3)
        #expect(h.core.state.snapshot() == before)
        #expect(h.core.counters.registrations == 0)
    }

    @Test("a repeated (sender, sequence) is not applied twice and leaves the state unchanged")
    func duplicateSequenceIgnored() throws {
        let h = CoreHarness()
        var a = try h.register(1, .trainer)
        var b = try h.register(2, .trainer)
        let ta = try #require(CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id))
        _ = try #require(CoreHarness.trainTask(in: h.core.handle(peer: b.id, frames: b.frames(.workRequest), now: h.t0), to: b.id))
        let g = h.gradient(for: ta, phi: ta.phi)
        let frames = a.frames(.gradient(g))
        #expect(CoreHarness.acked(h.core.handle(peer: a.id, frames: frames, now: h.t0), to: a.id))
        #expect(h.core.counters.gradientsApplied == 1)
        let before = h.core.state.snapshot()
        // The very same frames again (a resend), and an older sequence number.
        _ = h.core.handle(peer: a.id, frames: frames, now: h.t0)
        a.sequence -= 1
        _ = h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0)
        #expect(h.core.counters.gradientsApplied == 1)
        #expect(h.core.counters.rejected["duplicate"] == 2)
        #expect(h.core.state.snapshot() == before)
    }

    @Test("a repeated sequence is answered Error{DUPLICATE, in_reply_to} (docs/protocol.md §4)")
    func duplicateAnsweredWithError() throws {
        let h = CoreHarness()
        var a = try h.register(1, .trainer)
        let wr = a.frames(.workRequest)
        _ = h.core.handle(peer: a.id, frames: wr, now: h.t0)
        let r = h.core.handle(peer: a.id, frames: wr, now: h.t0)
        let e = CoreHarness.error(in: r, to: a.id)
        #expect(e?.code == .duplicate, "protocol.md §4: a repeat is answered Error{DUPLICATE}; got \(CoreHarness.messages(in: r, to: a.id).map(\.body.name))")
        #expect(e?.inReplyTo == a.sequence)
    }

    @Test("wrong-size, wrong-λ, bad-index and NaN gradients are refused with the right code and no state change")
    func badGradientsRejected() throws {
        let h = CoreHarness()
        var a = try h.register(1, .trainer)
        var b = try h.register(2, .trainer)
        let ta = try #require(CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id))
        _ = try #require(CoreHarness.trainTask(in: h.core.handle(peer: b.id, frames: b.frames(.workRequest), now: h.t0), to: b.id))
        let before = h.core.state.snapshot()

        // A refused result closes its lease (the worker drops the task, protocol §6) and the task
        // is handed out again: each bad reply is made for the task as re-issued.
        var task = ta
        func refused(_ spoil: (inout Gradient) -> Void) throws -> ErrorCode {
            var g = h.gradient(for: task, phi: ta.phi)
            spoil(&g)
            let r = h.core.handle(peer: a.id, frames: a.frames(.gradient(g)), now: h.t0)
            #expect(!CoreHarness.acked(r, to: a.id))
            let e = try #require(CoreHarness.error(in: r, to: a.id))
            #expect(e.inReplyTo == a.sequence)
            let again = try #require(CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id),
                                     "the refused task was not handed out again")
            #expect(again.taskIndex == ta.taskIndex && again.step == ta.step && again.leaseID != task.leaseID)
            task = again
            return e.code
        }
        #expect(try refused { $0.gradPhi.removeLast() } == .badTensor)
        #expect(try refused { $0.gradPhi.append(0) } == .badTensor)
        #expect(try refused { $0.lambdas[0] += 1 } == .badTensor)
        #expect(try refused { $0.indices[0] = Int32(h.config.nTrain) } == .badTensor)
        #expect(try refused { $0.indices.removeLast() } == .badTensor)
        // Rows in range but not the minibatch (seed, step, task) gives: a shifted generator.
        #expect(try refused { $0.indices = $0.indices.map { ($0 + 1) % Int32(h.config.nTrain) } } == .badTensor)
        #expect(h.core.state.snapshot() == before)
        #expect(h.core.counters.gradientsApplied == 0)

        // A NaN gives up the lease (the task goes back in the queue) and changes nothing.
        #expect(try refused { $0.gradPhi[3] = .nan } == .nonFinite)
        #expect(try refused { $0.trainLoss = .infinity } == .nonFinite)
        // Echoed versions that are not the task's (a worker that forgot to echo them).
        var g = h.gradient(for: task, phi: ta.phi)
        let r = h.core.handle(peer: a.id, frames: a.frames(.gradient(g), phiVersion: 1 << 40), now: h.t0)
        #expect(CoreHarness.error(in: r, to: a.id)?.code == .unexpected)
        // A result for the lease that refusal closed is stale.
        g = h.gradient(for: task, phi: ta.phi)
        #expect(CoreHarness.error(in: h.core.handle(peer: a.id, frames: a.frames(.gradient(g)), now: h.t0), to: a.id)?.code == .stale)
        #expect(h.core.state.snapshot() == before)
        #expect(h.core.counters.gradientsApplied == 0)
        #expect(h.core.counters.rejected["badTensor"] == 6)
        #expect(h.core.counters.rejected["nonFinite"] == 2)

        // The task is handed out again (new lease), and a correct result is then accepted.
        let again = try #require(CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id))
        #expect(again.taskIndex == ta.taskIndex && again.step == ta.step)
        #expect(again.leaseID != ta.leaseID)
        #expect(CoreHarness.acked(h.core.handle(peer: a.id, frames: a.frames(.gradient(h.gradient(for: again, phi: ta.phi))), now: h.t0), to: a.id))
        #expect(h.core.counters.gradientsApplied == 1)
        // Every result that reached the state machine is accounted for: applied or refused.
        let c = h.core.counters
        #expect(c.resultsReceived == 11 && c.resultsReceived == c.gradientsApplied + c.hypergradientsApplied + c.resultsRefused.values.reduce(0, +),
                "\(c)")
    }

    @Test("a ∂L/∂w reply of the wrong length, beside a ∂L/∂φ, with a NaN, or to an async task is refused and changes nothing")
    func badWeightGradientsRejected() throws {
        let h = CoreHarness()
        var a = try h.register(1, .trainer)
        let ta = try #require(CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id))
        let before = h.core.state.snapshot()
        // Each refusal closes the lease; the task is handed out again for the next attempt.
        var task = ta
        func refused(_ spoil: (inout Gradient) -> Void) throws -> ErrorCode? {
            var g = h.gradient(for: task, phi: ta.phi, weightForm: true)
            spoil(&g)
            let code = CoreHarness.error(in: h.core.handle(peer: a.id, frames: a.frames(.gradient(g)), now: h.t0), to: a.id)?.code
            task = try #require(CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id))
            return code
        }
        #expect(try refused { $0.gradW.removeLast() } == .badTensor)
        #expect(try refused { $0.gradPhi = Array(repeating: 0, count: h.config.phiCount) } == .badTensor, "grad_phi and grad_w together")
        #expect(try refused { $0.gradW[2] = .nan } == .nonFinite)
        // λ may be left out only answering a weight task (whose λ the coordinator sent): this
        // trainer got a φ task.
        #expect(try refused { $0.lambdas = [] } == .badTensor, "∂L/∂w without λ to a φ task")
        #expect(h.core.state.snapshot() == before)
        #expect(h.core.counters.gradientsApplied == 0)

        // A ∂L/∂w reply's λ is checked in full (the backward pass runs at it), not only the
        // first components as for ∂L/∂φ: per-weight scope, H = 7,850, one component far out.
        let wide = CoreHarness { $0.scope = .perWeight; $0.hypernet = .factorized(hidden: 3) }
        var c = try wide.register(1, .trainer, weightTasks: true)
        let tc = try #require(CoreHarness.trainTask(in: wide.core.handle(peer: c.id, frames: c.frames(.workRequest), now: wide.t0), to: c.id))
        var off = wide.gradient(forWeightTask: tc)
        #expect(off.lambdas.count == 7_850)
        off.lambdas[5_000] += 0.5
        let wideBefore = wide.core.state.snapshot()
        let rc = wide.core.handle(peer: c.id, frames: c.frames(.gradient(off)), now: wide.t0)
        #expect(CoreHarness.error(in: rc, to: c.id)?.code == .badTensor)
        #expect(wide.core.state.snapshot() == wideBefore && wide.core.counters.gradientsApplied == 0)
        // The refusal closed the lease; the task, handed out again, is then answered correctly.
        let tc2 = try #require(CoreHarness.trainTask(in: wide.core.handle(peer: c.id, frames: c.frames(.workRequest), now: wide.t0), to: c.id))
        #expect(tc2.taskIndex == tc.taskIndex && tc2.leaseID != tc.leaseID)
        // Answering a weight task, λ may be left out (docs/protocol.md §5): the λ it carried counts.
        #expect(CoreHarness.acked(wide.core.handle(peer: c.id, frames: c.frames(.gradient(wide.gradient(forWeightTask: tc2, echoLambda: false))), now: wide.t0), to: c.id))
        #expect(wide.core.counters.gradientsApplied == 1)

        // Async tasks do not accept ∂L/∂w (φ may move before the reply arrives), and a trainer
        // that takes weight tasks gets φ there too.
        let async = CoreHarness(mode: .async)
        var b = try async.register(1, .trainer, weightTasks: true)
        let tb = try #require(CoreHarness.trainTask(in: async.core.handle(peer: b.id, frames: b.frames(.workRequest), now: async.t0), to: b.id))
        #expect(!tb.acceptsWeightGradient && tb.weights.isEmpty && tb.phi.count == async.config.phiCount)
        let r = async.core.handle(peer: b.id, frames: b.frames(.gradient(async.gradient(for: tb, phi: tb.phi, weightForm: true))), now: async.t0)
        #expect(CoreHarness.error(in: r, to: b.id)?.code == .badTensor)
        #expect(async.core.counters.gradientsApplied == 0)
    }

    @Test("a validator's ∂L/∂w is refused when of the wrong length, beside ∂L/∂λ̂, non-finite, or in async mode (which sends φ, not w)")
    func badWeightHypergradientsRejected() throws {
        let h = CoreHarness()
        var v = try h.register(1, .validator, weightTasks: true)
        let vt = try #require(CoreHarness.validTask(in: h.core.handle(peer: v.id, frames: v.frames(.workRequest), now: h.t0), to: v.id))
        #expect(vt.weights.count == h.trainer.weightCount && vt.phi.isEmpty)
        let before = h.core.state.snapshot()
        // Each refusal closes the lease; the validation task is handed out again.
        var task = vt
        func refused(_ spoil: (inout Hypergradient) -> Void) throws -> ErrorCode? {
            var g = h.hypergradient(forWeightTask: task)
            spoil(&g)
            let code = CoreHarness.error(in: h.core.handle(peer: v.id, frames: v.frames(.hypergradient(g)), now: h.t0), to: v.id)?.code
            task = try #require(CoreHarness.validTask(in: h.core.handle(peer: v.id, frames: v.frames(.workRequest), now: h.t0), to: v.id))
            return code
        }
        #expect(try refused { $0.gradW.removeLast() } == .badTensor)
        #expect(try refused { $0.gradLambda = Array(repeating: 0, count: h.config.hyperparameterCount) } == .badTensor, "grad_lambda and grad_w together")
        #expect(try refused { $0.gradW[0] = .infinity } == .nonFinite)
        #expect(h.core.state.snapshot() == before)
        #expect(h.core.counters.hypergradientsApplied == 0)

        // A validator that did not ask for weight tasks gets φ.
        let plain = CoreHarness()
        var p = try plain.register(1, .validator)
        let pt = try #require(CoreHarness.validTask(in: plain.core.handle(peer: p.id, frames: p.frames(.workRequest), now: plain.t0), to: p.id))
        #expect(pt.weights.isEmpty && pt.phi.count == plain.config.phiCount)

        // Async mode: φ may move before the answer arrives, so no weight tasks and ∂L/∂w is refused.
        let async = CoreHarness(mode: .async)
        var a = try async.register(1, .validator, weightTasks: true)
        let at = try #require(CoreHarness.validTask(in: async.core.handle(peer: a.id, frames: a.frames(.workRequest), now: async.t0), to: a.id))
        #expect(at.weights.isEmpty && at.phi.count == async.config.phiCount)
        var w = async.hypergradient(forWeightTask: ValidTask(step: at.step, leaseID: at.leaseID, phi: [], lambdaHat: at.lambdaHat,
                                                             weights: Array(repeating: 0.01, count: async.trainer.weightCount)))
        w.leaseID = at.leaseID
        #expect(CoreHarness.error(in: async.core.handle(peer: a.id, frames: a.frames(.hypergradient(w)), now: async.t0), to: a.id)?.code == .badTensor)
        #expect(async.core.counters.hypergradientsApplied == 0)
    }

    @Test("a gradient for an unknown, foreign or superseded lease is answered STALE")
    func staleLeaseRejected() throws {
        let h = CoreHarness()
        var a = try h.register(1, .trainer)
        var b = try h.register(2, .trainer)
        var v = try h.register(3, .validator)
        let ta = try #require(CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id))
        let tb = try #require(CoreHarness.trainTask(in: h.core.handle(peer: b.id, frames: b.frames(.workRequest), now: h.t0), to: b.id))
        let vt = try #require(CoreHarness.validTask(in: h.core.handle(peer: v.id, frames: v.frames(.workRequest), now: h.t0), to: v.id))
        let ga = h.gradient(for: ta, phi: ta.phi)

        var wrongLease = ga
        wrongLease.leaseID = 999
        #expect(CoreHarness.error(in: h.core.handle(peer: a.id, frames: a.frames(.gradient(wrongLease)), now: h.t0), to: a.id)?.code == .stale)
        // B answering A's task (A's lease) is refused too.
        #expect(CoreHarness.error(in: h.core.handle(peer: b.id, frames: b.frames(.gradient(ga)), now: h.t0), to: b.id)?.code == .stale)
        var wrongStep = ga
        wrongStep.step = 5
        #expect(CoreHarness.error(in: h.core.handle(peer: a.id, frames: a.frames(.gradient(wrongStep)), now: h.t0), to: a.id)?.code == .stale)

        // Complete step 0; then a late copy of A's step-0 result (new sequence) is stale.
        #expect(CoreHarness.acked(h.core.handle(peer: a.id, frames: a.frames(.gradient(ga)), now: h.t0), to: a.id))
        #expect(CoreHarness.acked(h.core.handle(peer: b.id, frames: b.frames(.gradient(h.gradient(for: tb, phi: tb.phi))), now: h.t0), to: b.id))
        #expect(CoreHarness.acked(h.core.handle(peer: v.id, frames: v.frames(.hypergradient(h.hypergradient(for: vt, phi: vt.phi))), now: h.t0), to: v.id))
        #expect(h.core.state.step == 1)
        let after = h.core.state.snapshot()
        #expect(CoreHarness.error(in: h.core.handle(peer: a.id, frames: a.frames(.gradient(ga)), now: h.t0), to: a.id)?.code == .stale)
        #expect(CoreHarness.error(in: h.core.handle(peer: v.id, frames: v.frames(.hypergradient(h.hypergradient(for: vt, phi: vt.phi))), now: h.t0), to: v.id)?.code == .stale)
        #expect(h.core.state.snapshot() == after)
        #expect(h.core.counters.rejected["stale"] == 5)
    }

    @Test("frames that do not decode are answered with WireError.errorCode: MALFORMED, VERSION_MISMATCH, BAD_TENSOR, UNEXPECTED")
    func undecodableFrames() throws {
        let h = CoreHarness()
        var a = try h.register(1, .trainer)
        let before = h.core.state.snapshot()
        func code(_ frames: [[UInt8]]) -> ErrorCode? { CoreHarness.error(in: h.core.handle(peer: a.id, frames: frames, now: h.t0), to: a.id)?.code }

        #expect(code([[]]) == .malformed)
        #expect(code([[0xFF, 0xFF, 0xFF]]) == .malformed)
        var old = Message(senderID: a.workerID, sequence: 99, body: .workRequest)
        old.protocolVersion = 2
        #expect(code(WireCodec.encode(old)) == .versionMismatch)
        // A gradient whose tensor frames do not match their description (protocol.md §2: BAD_TENSOR).
        let g = Gradient(step: 0, taskIndex: 0, leaseID: 1, trainLoss: 1, gradPhi: [1, 2], lambdas: [0], indices: [0])
        var frames = a.frames(.gradient(g))
        frames.removeLast()
        #expect(code(frames) == .badTensor, "tensor count mismatch → WireError.tensorCountMismatch.errorCode == .badTensor")
        frames = a.frames(.gradient(g))
        frames[1].removeLast()
        #expect(code(frames) == .badTensor, "tensor size mismatch → WireError.tensorSizeMismatch.errorCode == .badTensor")
        // A body this version does not know (oneof field 99): UNEXPECTED.
        let unknownBody: [UInt8] = [0x08, 0x01, 0x28, 0x05, 0x9A, 0x06, 0x00]
        #expect(code([unknownBody]) == .unexpected, "unknown body → WireError.unknownBody.errorCode == .unexpected")
        #expect(h.core.state.snapshot() == before)
    }

    @Test("a trainer sending a Hypergradient is answered UNAUTHORIZED (docs/protocol.md §6)")
    func trainerCannotSendHypergradient() throws {
        let h = CoreHarness()
        var a = try h.register(1, .trainer)
        let ta = try #require(CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id))
        let before = h.core.state.snapshot()
        let r = h.core.handle(peer: a.id, frames: a.frames(.hypergradient(Hypergradient(step: 0, leaseID: ta.leaseID, validLoss: 1, gradLambda: [0.5]))), now: h.t0)
        #expect(CoreHarness.error(in: r, to: a.id)?.code == .unauthorized)
        #expect(h.core.state.snapshot() == before)
    }

    // MARK: Liveness

    @Test("a silent peer is declared dead by tick and its lease is re-issued to a waiting peer; its late result is refused")
    func deadPeerLeaseReissued() throws {
        let h = CoreHarness()
        var a = try h.register(1, .trainer)
        var b = try h.register(2, .trainer)
        var c = try h.register(3, .trainer)
        let ta = try #require(CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id))
        _ = try #require(CoreHarness.trainTask(in: h.core.handle(peer: b.id, frames: b.frames(.workRequest), now: h.t0), to: b.id))
        #expect(CoreHarness.trainTask(in: h.core.handle(peer: c.id, frames: c.frames(.workRequest), now: h.t0), to: c.id) == nil)

        // B and C keep talking; A falls silent. Liveness: 5 × 0.2 s.
        var now = h.t0
        var reissued: TrainTask? = nil
        var ticks: [CoordinatorAction] = []
        for _ in 0..<8 {
            now += 0.2
            _ = h.core.handle(peer: b.id, frames: b.frames(.heartbeat(Heartbeat(unixMs: 0))), now: now)
            _ = h.core.handle(peer: c.id, frames: c.frames(.heartbeat(Heartbeat(unixMs: 0))), now: now)
            let t = h.core.tick(now: now)
            ticks += t
            if let task = CoreHarness.trainTask(in: t, to: c.id) { reissued = task; break }
            #expect(now - h.t0 > 1.0 || h.core.peerCounts.trainers == 3, "declared dead too early")
        }
        let task = try #require(reissued, "task \(ta.taskIndex) was not re-issued to the waiting trainer")
        #expect(task.taskIndex == ta.taskIndex && task.step == ta.step)
        #expect(task.leaseID != ta.leaseID)
        #expect(!task.phi.isEmpty, "C never received φ, so the task must carry it")
        #expect(h.core.peerCounts.trainers == 2)
        #expect(h.core.counters.peersLost == 1)
        #expect(h.core.counters.tasksReissued == 1)
        #expect(CoreHarness.messages(in: ticks, to: a.id).allSatisfy { if case .trainTask = $0.body { false } else { true } })

        // A comes back with its old result: it is no longer registered.
        let late = h.core.handle(peer: a.id, frames: a.frames(.gradient(h.gradient(for: ta, phi: ta.phi))), now: now)
        #expect(CoreHarness.error(in: late, to: a.id)?.code == .notRegistered)
        #expect(h.core.counters.gradientsApplied == 0)
        // C's result for the re-issued lease is accepted.
        #expect(CoreHarness.acked(h.core.handle(peer: c.id, frames: c.frames(.gradient(h.gradient(for: task, phi: task.phi))), now: now), to: c.id))
        #expect(h.core.counters.gradientsApplied == 1)
    }

    @Test("a dead validator's lease is re-issued to another validator")
    func deadValidatorReissued() throws {
        let h = CoreHarness()
        var v1 = try h.register(1, .validator)
        var v2 = try h.register(2, .validator)
        let vt = try #require(CoreHarness.validTask(in: h.core.handle(peer: v1.id, frames: v1.frames(.workRequest), now: h.t0), to: v1.id))
        #expect(CoreHarness.validTask(in: h.core.handle(peer: v2.id, frames: v2.frames(.workRequest), now: h.t0), to: v2.id) == nil)
        var now = h.t0
        var got: ValidTask? = nil
        for _ in 0..<8 where got == nil {
            now += 0.2
            _ = h.core.handle(peer: v2.id, frames: v2.frames(.heartbeat(Heartbeat(unixMs: 0))), now: now)
            got = CoreHarness.validTask(in: h.core.tick(now: now), to: v2.id)
        }
        let task = try #require(got)
        #expect(task.step == vt.step && task.leaseID != vt.leaseID)
        #expect(h.core.counters.tasksReissued == 1)
    }

    @Test("an idle registered peer is sent a Heartbeat by tick once a heartbeat interval has passed")
    func idlePeerGetsHeartbeat() throws {
        let h = CoreHarness()
        var a = try h.register(1, .trainer)
        var b = try h.register(2, .trainer)
        var c = try h.register(3, .trainer)
        _ = h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0)
        _ = h.core.handle(peer: b.id, frames: b.frames(.workRequest), now: h.t0)
        _ = h.core.handle(peer: c.id, frames: c.frames(.workRequest), now: h.t0)   // C waits: nothing to do
        // C keeps sending heartbeats (it is alive) but hears nothing else from the coordinator.
        var heard = false
        var now = h.t0
        for _ in 0..<4 where !heard {
            now += 0.15
            _ = h.core.handle(peer: c.id, frames: c.frames(.heartbeat(Heartbeat(unixMs: 0))), now: now)
            heard = CoreHarness.messages(in: h.core.tick(now: now), to: c.id).contains { if case .heartbeat = $0.body { true } else { false } }
        }
        #expect(heard, "no Heartbeat to an idle peer within 3 intervals: the peer will think the coordinator is dead (protocol.md §4)")
    }

    @Test("a peer that says Shutdown gets its leases re-issued at once (docs/protocol.md §4)")
    func peerShutdownReissuesLeases() throws {
        let h = CoreHarness()
        var a = try h.register(1, .trainer)
        var b = try h.register(2, .trainer)
        var c = try h.register(3, .trainer)
        let ta = try #require(CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id))
        _ = h.core.handle(peer: b.id, frames: b.frames(.workRequest), now: h.t0)
        _ = h.core.handle(peer: c.id, frames: c.frames(.workRequest), now: h.t0)
        let r = h.core.handle(peer: a.id, frames: a.frames(.shutdown(Shutdown(reason: "SIGTERM"))), now: h.t0)
        let task = CoreHarness.trainTask(in: r, to: c.id)
        #expect(task?.taskIndex == ta.taskIndex, "the leaving peer's task should go to the waiting trainer now, not after the liveness timeout")
        #expect(CoreHarness.error(in: r, to: a.id) == nil)
    }

    // MARK: Async mode

    @Test("async mode accepts an honest gradient computed from the λ̂ it was handed, even after λ̂ moved")
    func asyncAcceptsGradientAfterLambdaStep() throws {
        let h = CoreHarness(mode: .async)
        var t = try h.register(1, .trainer)
        var v = try h.register(2, .validator)
        let task = try #require(CoreHarness.trainTask(in: h.core.handle(peer: t.id, frames: t.frames(.workRequest), now: h.t0), to: t.id))
        let vt = try #require(CoreHarness.validTask(in: h.core.handle(peer: v.id, frames: v.frames(.workRequest), now: h.t0), to: v.id))
        // The validator answers first: λ̂ takes a step while the trainer computes.
        #expect(CoreHarness.acked(h.core.handle(peer: v.id, frames: v.frames(.hypergradient(h.hypergradient(for: vt, phi: vt.phi))), now: h.t0), to: v.id))
        #expect(h.core.state.lambdaHat.array != task.lambdaHat)
        // The trainer's gradient was computed honestly (same build, same seed) from the task's λ̂.
        let r = h.core.handle(peer: t.id, frames: t.frames(.gradient(h.gradient(for: task, phi: task.phi))), now: h.t0)
        #expect(CoreHarness.acked(r, to: t.id), "refused: \(CoreHarness.error(in: r, to: t.id).map { "\($0.code): \($0.message)" } ?? "no reply")")
        #expect(h.core.counters.gradientsApplied == 1)
    }

    @Test("async mode applies each accepted gradient as its own step and rejects results older than the staleness bound")
    func asyncStaleness() throws {
        let h = CoreHarness(mode: .async, maxStaleness: 1, steps: 10)
        var a = try h.register(1, .trainer)
        var b = try h.register(2, .trainer)
        let t0 = try #require(CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id))
        // B takes two steps while A's task (φ version 0) is out.
        var phiB: [Float] = []
        for _ in 0..<2 {
            let tb = try #require(CoreHarness.trainTask(in: h.core.handle(peer: b.id, frames: b.frames(.workRequest), now: h.t0), to: b.id))
            if !tb.phi.isEmpty { phiB = tb.phi }
            let r = h.core.handle(peer: b.id, frames: b.frames(.gradient(h.gradient(for: tb, phi: phiB))), now: h.t0)
            #expect(CoreHarness.acked(r, to: b.id), "\(CoreHarness.error(in: r, to: b.id)?.message ?? "")")
        }
        #expect(h.core.state.step == 2)
        #expect(h.core.state.phiVersion == 2)
        let before = h.core.state.snapshot()
        let r = h.core.handle(peer: a.id, frames: a.frames(.gradient(h.gradient(for: t0, phi: t0.phi))), now: h.t0)
        #expect(CoreHarness.error(in: r, to: a.id)?.code == .stale)
        #expect(h.core.state.snapshot() == before)
    }

    @Test("async mode: a hypergradient is stale by λ̂ versions, not φ versions; one validation task per φ version")
    func asyncValidatorPacing() throws {
        let h = CoreHarness(mode: .async, maxStaleness: 1, steps: 20)
        var t = try h.register(1, .trainer)
        var v = try h.register(2, .validator)
        let vt = try #require(CoreHarness.validTask(in: h.core.handle(peer: v.id, frames: v.frames(.workRequest), now: h.t0), to: v.id))
        // The trainer takes three φ steps while the validation task is out.
        var phi: [Float] = []
        for _ in 0..<3 {
            let task = try #require(CoreHarness.trainTask(in: h.core.handle(peer: t.id, frames: t.frames(.workRequest), now: h.t0), to: t.id))
            if !task.phi.isEmpty { phi = task.phi }
            #expect(CoreHarness.acked(h.core.handle(peer: t.id, frames: t.frames(.gradient(h.gradient(for: task, phi: phi))), now: h.t0), to: t.id))
        }
        #expect(h.core.state.phiVersion == 3)
        // φ moved 3 versions (> maxStaleness) but λ̂ did not: the hypergradient is applied.
        let r = h.core.handle(peer: v.id, frames: v.frames(.hypergradient(h.hypergradient(for: vt, phi: vt.phi))), now: h.t0)
        #expect(CoreHarness.acked(r, to: v.id), "\(CoreHarness.error(in: r, to: v.id)?.message ?? "")")
        #expect(h.core.counters.hypergradientsApplied == 1)
        // The validator's next request gets a task for the new φ version; after answering it,
        // the one after that waits until φ moves again.
        let vt2 = try #require(CoreHarness.validTask(in: r, to: v.id) ?? CoreHarness.validTask(in: h.core.handle(peer: v.id, frames: v.frames(.workRequest), now: h.t0), to: v.id))
        #expect(CoreHarness.acked(h.core.handle(peer: v.id, frames: v.frames(.hypergradient(h.hypergradient(for: vt2, phi: h.core.state.phi.array))), now: h.t0), to: v.id))
        #expect(CoreHarness.validTask(in: h.core.handle(peer: v.id, frames: v.frames(.workRequest), now: h.t0), to: v.id) == nil)
        let task = try #require(CoreHarness.trainTask(in: h.core.handle(peer: t.id, frames: t.frames(.workRequest), now: h.t0), to: t.id))
        let after = h.core.handle(peer: t.id, frames: t.frames(.gradient(h.gradient(for: task, phi: h.core.state.phi.array))), now: h.t0)
        #expect(CoreHarness.validTask(in: after, to: v.id) != nil, "a new φ version releases the parked validator")
    }

    @Test("async mode, phase 2 of the global algorithm (no φ steps): the validator keeps getting tasks")
    func asyncPhaseTwoValidates() throws {
        let h = CoreHarness(mode: .async, steps: 4) { c in
            c.algorithm = .globalBestResponse
            c.hypernet = .mlp(hidden: 4)
            c.phase1Steps = 0
        }
        var v = try h.register(1, .validator)
        var phi = h.core.state.phi.array
        for step in 0..<4 {
            let vt = try #require(CoreHarness.validTask(in: h.core.handle(peer: v.id, frames: v.frames(.workRequest), now: h.t0), to: v.id),
                                  "no validation task at λ̂ step \(step)")
            if !vt.phi.isEmpty { phi = vt.phi }
            #expect(CoreHarness.acked(h.core.handle(peer: v.id, frames: v.frames(.hypergradient(h.hypergradient(for: vt, phi: phi))), now: h.t0), to: v.id))
        }
        #expect(h.core.counters.hypergradientsApplied == 4)
        #expect(h.core.isFinished)
    }

    @Test("the run aborts instead of spinning when a step keeps getting non-finite gradients")
    func divergenceIsFatal() throws {
        let h = CoreHarness()
        var a = try h.register(1, .trainer)
        var sent = 0
        while h.core.fatalError == nil && sent < 50 {
            guard let t = CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id) else { break }
            var g = h.gradient(for: t, phi: h.core.state.phi.array)
            g.gradPhi[0] = .nan
            _ = h.core.handle(peer: a.id, frames: a.frames(.gradient(g)), now: h.t0)
            sent += 1
        }
        #expect(h.core.fatalError != nil)
        #expect(h.core.isFinished)
        #expect(sent <= 3 * 3 + 1)
        #expect(h.core.state.step == 0)
    }
}

extension CoordinatorCoreTests {
    @Test("with the divergence guard, one NaN gradient is refused and changes nothing; a step whose gradients stay NaN is rolled back (counted, step sizes halved) instead of aborting the run")
    func guardedDivergenceRollsBack() throws {
        let h = CoreHarness { c in c.divergenceGuard = DivergenceGuardSettings() }
        var a = try h.register(1, .trainer)
        let before = h.core.state.snapshot()
        guard let t0 = CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id) else {
            Issue.record("no task"); return
        }
        var g0 = h.gradient(for: t0, phi: h.core.state.phi.array)
        g0.gradPhi[0] = .nan
        _ = h.core.handle(peer: a.id, frames: a.frames(.gradient(g0)), now: h.t0)
        #expect(h.core.state.snapshot() == before && h.core.state.rollbacks == 0 && h.core.fatalError == nil)
        var sent = 1
        while h.core.state.step == 0 && h.core.fatalError == nil && sent < 50 {
            guard let t = CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id) else { break }
            var g = h.gradient(for: t, phi: h.core.state.phi.array)
            g.gradPhi[0] = .nan
            _ = h.core.handle(peer: a.id, frames: a.frames(.gradient(g)), now: h.t0)
            sent += 1
        }
        #expect(h.core.fatalError == nil)
        #expect(h.core.state.step == 1 && h.core.state.rollbacks == 1 && h.core.state.stepSizeFactor == 0.5)
        #expect(h.core.state.phi.array == before.phi && h.core.state.lambdaHat.array == before.lambdaHat)
        #expect(h.core.state.phiVersion == before.phiVersion + 1, "workers must fetch the restored φ")
        #expect(sent <= 3 * 3 + 2)
    }
}

extension CoordinatorCoreTests {
    @Test("sync mode: a step waits for the first validator; after the last validator is lost φ keeps training with λ̂ paused (logged), and λ̂ steps resume when a validator joins")
    func lostValidatorPausesOnlyLambda() throws {
        let h = CoreHarness(steps: 10)
        var a = try h.register(1, .trainer)
        func logs(_ actions: [CoordinatorAction]) -> [String] {
            actions.compactMap { if case .log(let line) = $0 { line } else { nil } }
        }
        /// The trainer's two tasks of the current step, answered honestly.
        func trainStep() throws -> [CoordinatorAction] {
            var actions: [CoordinatorAction] = []
            for _ in 0..<2 {
                let t = try #require(CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id))
                actions += h.core.handle(peer: a.id, frames: a.frames(.gradient(h.gradient(for: t, phi: h.core.state.phi.array))), now: h.t0)
            }
            return actions
        }
        // The start: no validator has registered yet, so step 0 waits for one.
        _ = try trainStep()
        #expect(h.core.state.step == 0, "a run's first steps wait for the validator")
        var v = try h.register(2, .validator)
        let vt = try #require(CoreHarness.validTask(in: h.core.handle(peer: v.id, frames: v.frames(.workRequest), now: h.t0), to: v.id))
        _ = h.core.handle(peer: v.id, frames: v.frames(.hypergradient(h.hypergradient(for: vt, phi: vt.phi))), now: h.t0)
        #expect(h.core.state.step == 1 && h.core.state.lambdaVersion == 1)

        // The validator leaves: the next steps go on without λ̂ steps.
        let left = h.core.handle(peer: v.id, frames: v.frames(.shutdown(Shutdown(reason: "test"))), now: h.t0)
        #expect(logs(left).contains { $0.contains("no validator left") }, "\(logs(left))")
        let lambda = h.core.state.lambdaHat.array, phi = h.core.state.phi.array
        _ = try trainStep()
        _ = try trainStep()
        #expect(h.core.state.step == 3)
        #expect(h.core.state.lambdaHat.array == lambda && h.core.state.lambdaVersion == 1, "λ̂ paused")
        #expect(h.core.state.phi.array != phi && h.core.state.phiVersion == 3, "φ kept training")
        #expect(h.core.fatalError == nil)

        // A validator joins: λ̂ steps resume (the step waits for its hypergradient again).
        var w = try h.register(3, .validator)
        _ = try trainStep()
        #expect(h.core.state.step == 3)
        let wt = try #require(CoreHarness.validTask(in: h.core.handle(peer: w.id, frames: w.frames(.workRequest), now: h.t0), to: w.id))
        _ = h.core.handle(peer: w.id, frames: w.frames(.hypergradient(h.hypergradient(for: wt, phi: wt.phi))), now: h.t0)
        #expect(h.core.state.step == 4 && h.core.state.lambdaVersion == 2)
        #expect(h.core.counters.rejected.isEmpty, "\(h.core.counters.rejected)")
    }
}

// MARK: - CoreHarness

/// A fake peer: a routing id, the worker id it was given, and its sequence counter.
struct CoreFakePeer {
    let id: [UInt8]
    var workerID = ""
    var sequence: UInt64 = 0
    /// The core it talks to: a result echoes its open lease's φ and λ̂ versions, as a worker
    /// echoes its task's header (docs/protocol.md §3).
    var core: CoordinatorCore? = nil

    /// The next message from this peer, encoded as it would arrive (without the routing id).
    /// Versions not given are the task's, for a result with an open lease, else 0.
    mutating func frames(_ body: Message.Body, phiVersion: UInt64? = nil, lambdaVersion: UInt64? = nil) -> [[UInt8]] {
        sequence += 1
        var lease: UInt64? = nil
        switch body {
        case .gradient(let g): lease = g.leaseID
        case .hypergradient(let g): lease = g.leaseID
        default: break
        }
        let task = lease.flatMap { core?.leases.open[$0]?.task }
        return WireCodec.encode(Message(senderID: workerID, phiVersion: phiVersion ?? task?.phiVersion ?? 0,
                                        lambdaVersion: lambdaVersion ?? task?.lambdaVersion ?? 0, sequence: sequence, body: body))
    }
}

/// A core on a tiny synthetic problem (784-10, 8 training and 8 validation digits), with a
/// `HyperTrainer` to compute honest results.
final class CoreHarness {
    static let fingerprint: UInt64 = 0xDA7A
    let config: ExperimentConfig
    let data: ExperimentData
    let core: CoordinatorCore
    let trainer: HyperTrainer
    /// The fake clock's start (monotonic-like seconds).
    let t0 = 1_000.0

    init(mode: ClusterMode = .sync, maxStaleness: UInt64 = 4, steps: Int = 5,
         configure: (inout ExperimentConfig) -> Void = { _ in }) {
        var c = ExperimentConfig()
        c.nTrain = 8
        c.nValid = 8
        c.nTest = 4
        c.batchSize = 4
        c.validBatchSize = 4
        c.samplesPerStep = 2
        c.steps = steps
        c.evalEvery = 0
        c.lambdaLearningRate = 0.05
        configure(&c)
        precondition(c.problems().isEmpty, "\(c.problems())")
        config = c
        data = ExperimentData(train: Self.examples(8, salt: 1), valid: Self.examples(8, salt: 2),
                              test: Self.examples(4, salt: 3), fingerprint: Self.fingerprint)
        trainer = HyperTrainer(config: c, data: data)
        let state = HyperState(config: c, phi: trainer.initialPhi(), lambdaHat: trainer.initialLambdaHat())
        core = CoordinatorCore(config: c, state: state, mode: mode, maxStaleness: maxStaleness,
                               dataFingerprint: Self.fingerprint, heartbeatInterval: 0.2, heartbeatLiveness: 5)
    }

    /// Deterministic sparse-ish "digits".
    static func examples(_ n: Int, salt: Int) -> Examples<Float> {
        let rows: [[Float]] = (0..<n).map { i in
            (0..<784).map { j in (i * 31 + j * 7 + salt * 13) % 5 == 0 ? Float((i + j + salt) % 255) / 255 : 0 }
        }
        return Examples(dense: rows, labels: (0..<n).map { UInt8(($0 + salt) % 10) })
    }

    func peer(_ n: UInt8) -> CoreFakePeer { CoreFakePeer(id: [0, 0x80, n, 0x11, n], core: core) }

    /// Registers a fake peer and returns it with its worker id.
    func register(_ n: UInt8, _ role: Role, weightTasks: Bool = false) throws -> CoreFakePeer {
        var p = peer(n)
        let actions = core.handle(peer: p.id, frames: p.frames(.hello(Hello(role: role, acceptsWeightTasks: weightTasks))), now: t0)
        p.workerID = try #require(Self.welcome(in: actions, to: p.id)).workerID
        return p
    }

    /// An honest gradient for `task`, computed from `phi` and the task's λ̂: `∂L/∂φ`, or
    /// `∂L/∂w` when `weightForm`.
    func gradient(for task: TrainTask, phi: [Float], weightForm: Bool = false) -> Gradient {
        var grad = [Float](repeating: 0, count: weightForm ? trainer.weightCount : config.phiCount)
        let loss = phi.withUnsafeBufferPointer { p in
            task.lambdaHat.withUnsafeBufferPointer { l in
                grad.withUnsafeMutableBufferPointer { g in
                    weightForm
                        ? trainer.trainTask(phi: p.baseAddress!, lambdaHat: l.baseAddress!, step: task.step, task: Int(task.taskIndex), gradW: g.baseAddress!)
                        : trainer.trainTask(phi: p.baseAddress!, lambdaHat: l.baseAddress!, step: task.step, task: Int(task.taskIndex), gradPhi: g.baseAddress!)
                }
            }
        }
        return Gradient(step: task.step, taskIndex: task.taskIndex, leaseID: task.leaseID, trainLoss: loss,
                        gradPhi: weightForm ? [] : grad, gradW: weightForm ? grad : [], lambdas: trainer.lastLambda, indices: trainer.lastRows)
    }

    /// An honest answer to a training weight task: `∂L/∂w` at the task's `w` and λ, computed
    /// from 64-byte aligned copies as a worker does.
    /// (`echoLambda` false: the reply leaves `lambda` out, as our trainers do.)
    func gradient(forWeightTask task: TrainTask, echoLambda: Bool = true) -> Gradient {
        let w = AlignedBuffer<Float>(count: trainer.weightCount), lambda = AlignedBuffer<Float>(count: config.hyperparameterCount)
        let g = AlignedBuffer<Float>(count: trainer.weightCount)
        w.load(task.weights)
        lambda.load(task.lambda)
        let loss = trainer.trainTask(weights: w.constPointer, lambda: lambda.constPointer, step: task.step,
                                     task: Int(task.taskIndex), gradW: g.pointer)
        return Gradient(step: task.step, taskIndex: task.taskIndex, leaseID: task.leaseID, trainLoss: loss,
                        gradPhi: [], gradW: g.array, lambdas: echoLambda ? task.lambda : [], indices: trainer.lastRows)
    }

    /// An honest answer to a weight task: `∂L_valid/∂w` at the task's `w`.
    func hypergradient(forWeightTask task: ValidTask) -> Hypergradient {
        var g = [Float](repeating: 0, count: trainer.weightCount)
        let loss = task.weights.withUnsafeBufferPointer { w in
            g.withUnsafeMutableBufferPointer { trainer.validTask(weights: w.baseAddress!, step: task.step, gradW: $0.baseAddress!) }
        }
        return Hypergradient(step: task.step, leaseID: task.leaseID, validLoss: loss, gradLambda: [], gradW: g)
    }

    /// An honest hypergradient for `task`.
    func hypergradient(for task: ValidTask, phi: [Float]) -> Hypergradient {
        var g = [Float](repeating: 0, count: config.hyperparameterCount)
        let loss = phi.withUnsafeBufferPointer { p in
            task.lambdaHat.withUnsafeBufferPointer { l in
                g.withUnsafeMutableBufferPointer { gl in
                    trainer.validTask(phi: p.baseAddress!, lambdaHat: l.baseAddress!, step: task.step, gradLambda: gl.baseAddress!)
                }
            }
        }
        return Hypergradient(step: task.step, leaseID: task.leaseID, validLoss: loss, gradLambda: g)
    }

    // MARK: Reading actions

    static func messages(in actions: [CoordinatorAction], to peer: [UInt8]) -> [Message] {
        actions.compactMap { if case .send(let p, let m) = $0, p == peer { m } else { nil } }
    }

    static func welcome(in actions: [CoordinatorAction], to peer: [UInt8]) -> Welcome? {
        messages(in: actions, to: peer).lazy.compactMap { if case .welcome(let w) = $0.body { w } else { nil } }.first
    }

    static func trainTask(in actions: [CoordinatorAction], to peer: [UInt8]) -> TrainTask? {
        messages(in: actions, to: peer).lazy.compactMap { if case .trainTask(let t) = $0.body { t } else { nil } }.first
    }

    static func validTask(in actions: [CoordinatorAction], to peer: [UInt8]) -> ValidTask? {
        messages(in: actions, to: peer).lazy.compactMap { if case .validTask(let t) = $0.body { t } else { nil } }.first
    }

    static func error(in actions: [CoordinatorAction], to peer: [UInt8]) -> ErrorReply? {
        messages(in: actions, to: peer).lazy.compactMap { if case .error(let e) = $0.body { e } else { nil } }.first
    }

    static func acked(_ actions: [CoordinatorAction], to peer: [UInt8]) -> Bool {
        messages(in: actions, to: peer).contains { if case .ack = $0.body { true } else { false } }
    }

    static func completedSteps(_ actions: [CoordinatorAction]) -> [UInt64] {
        actions.compactMap { if case .event(let r) = $0 { r.step } else { nil } }
    }
}

@Suite struct LogThrottleTests {
    @Test("the first line of a kind is written at once, repeats within the interval are held back and counted, and flush reports what is left")
    func throttles() {
        var t = LogThrottle(interval: 10)
        #expect(t.lines(for: "rejected gradient from trainer-1 (step 5): stale by 7", now: 0) == ["rejected gradient from trainer-1 (step 5): stale by 7"])
        for i in 1...50 { #expect(t.lines(for: "rejected gradient from trainer-2 (step \(5 + i)): stale by 9", now: Double(i) * 0.1).isEmpty) }
        #expect(t.lines(for: "checkpoint failed: disk full", now: 1) == ["checkpoint failed: disk full"], "another kind is not held back")
        let later = t.lines(for: "rejected gradient from trainer-1 (step 99): stale by 5", now: 12)
        #expect(later == ["rejected gradient from trainer-1 (step 99): stale by 5 (and 50 more like it in the last 12 s)"])
        _ = t.lines(for: "checkpoint failed: disk full", now: 2)
        _ = t.lines(for: "checkpoint failed: disk full", now: 3)
        #expect(t.flush() == ["2 more line(s) like: checkpoint failed: disk full"])
        #expect(t.flush().isEmpty)
    }
}
