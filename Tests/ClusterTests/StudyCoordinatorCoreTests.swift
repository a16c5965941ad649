import Foundation
import Testing
import HyperOpt
import Wire
@testable import Cluster

/// `StudyCoordinatorCore` driven directly (fake peers, a fake clock) over a real SQLite store in
/// a temporary directory.
@Suite struct StudyCoordinatorCoreTests {
    final class Harness {
        let directory: String
        let store: StudyStore
        let core: StudyCoordinatorCore
        let study: StudySpec

        init(trials: Int = 3, strategy: SearchStrategy = .random) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("study-core-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            store = try StudyStore(path: directory + "/study.sqlite")
            var config = ExperimentConfig()
            config.seed = 7
            study = StudySpec(strategy: strategy, trials: trials, trialSteps: 10, trialLearningRate: 0.01,
                              space: try SearchSpace.box(lower: -6, upper: 0, count: 1))
            core = try StudyCoordinatorCore(config: config, study: study, store: store, dataFingerprint: 1, now: 0,
                                            heartbeatInterval: 1, liveness: 3)
        }

        deinit {
            store.close()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    struct Peer {
        let id: [UInt8]
        var workerID = ""
        var sequence: UInt64 = 0
        mutating func frames(_ body: Message.Body) -> [[UInt8]] {
            sequence += 1
            return WireCodec.encode(Message(senderID: workerID, sequence: sequence, body: body))
        }
    }

    static func messages(_ actions: [StudyAction], to peer: [UInt8]) -> [Message] {
        actions.compactMap { if case .send(let p, let m) = $0, p == peer { m } else { nil } }
    }

    static func task(_ actions: [StudyAction], to peer: [UInt8]) -> TrialTask? {
        for m in messages(actions, to: peer) { if case .trialTask(let t) = m.body { return t } }
        return nil
    }

    static func register(_ h: Harness, _ n: UInt8, now: Double = 0) throws -> Peer {
        var p = Peer(id: [0x51, n])
        let actions = h.core.handle(peer: p.id, frames: p.frames(.hello(Hello(role: .trainer))), now: now)
        for m in messages(actions, to: p.id) { if case .welcome(let w) = m.body { p.workerID = w.workerID } }
        #expect(p.workerID.hasPrefix("trial-worker-"))
        return p
    }

    @Test("a work request gets a trial; its result is acked, stored in SQLite and reported once")
    func trialRoundTrip() throws {
        let h = try Harness()
        var w = try Self.register(h, 1)
        let t = try #require(Self.task(h.core.handle(peer: w.id, frames: w.frames(.workRequest), now: 1), to: w.id))
        #expect(t.steps == 10 && t.lambda.count == 1 && (-6...0).contains(Double(t.lambda[0])))
        let actions = h.core.handle(peer: w.id, frames: w.frames(.trialResult(TrialResult(trialID: t.trialID, leaseID: t.leaseID, trainLoss: 0.1,
                                                                                          validLoss: 0.2, testLoss: 0.3))), now: 5)
        #expect(Self.messages(actions, to: w.id).contains { if case .ack = $0.body { true } else { false } })
        let events = actions.compactMap { if case .event(let r) = $0 { r } else { nil } }
        #expect(events.count == 1 && events[0].status == .done && events[0].validLoss == 0.2 && events[0].trialSeconds == 4)
        let stored = try h.store.trials()
        #expect(stored[Int(t.trialID)].status == .done && stored[Int(t.trialID)].validLoss == 0.2)
        #expect(h.core.best?.id == Int(t.trialID))
    }

    @Test("a dead worker's trial goes back to the queue and is re-issued with the same λ; its late result counts once")
    func deadWorkerTrialReissued() throws {
        let h = try Harness(trials: 1)
        var a = try Self.register(h, 1)
        let first = try #require(Self.task(h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: 1), to: a.id))
        var b = try Self.register(h, 2, now: 1)
        // b asks while a holds the only trial: nothing to hand out.
        #expect(Self.task(h.core.handle(peer: b.id, frames: b.frames(.workRequest), now: 1), to: b.id) == nil)
        // a goes silent; b keeps sending heartbeats. After 3 intervals a is dead and b gets the trial.
        _ = h.core.handle(peer: b.id, frames: b.frames(.heartbeat(Heartbeat(unixMs: 0))), now: 4)
        let tick = h.core.tick(now: 4.5)
        #expect(tick.contains { if case .log(let l) = $0 { l.contains("lost \(a.workerID)") && l.contains("1 trial(s) re-queued") } else { false } })
        let second = try #require(Self.task(tick, to: b.id))
        #expect(second.trialID == first.trialID && second.lambda == first.lambda && second.leaseID != first.leaseID)
        #expect(try h.store.trials()[0].attempts == 2)
        // a comes back (new registration) and delivers the first attempt's result: accepted.
        a = try Self.register(h, 3, now: 5)
        let late = h.core.handle(peer: a.id, frames: a.frames(.trialResult(TrialResult(trialID: first.trialID, leaseID: first.leaseID, trainLoss: 0.1,
                                                                                        validLoss: 0.4, testLoss: 0.5))), now: 5)
        #expect(late.contains { if case .event = $0 { true } else { false } })
        // b's result for the same trial is acked but not counted again.
        let dup = h.core.handle(peer: b.id, frames: b.frames(.trialResult(TrialResult(trialID: second.trialID, leaseID: second.leaseID, trainLoss: 0.1,
                                                                                       validLoss: 0.4, testLoss: 0.5))), now: 6)
        #expect(!dup.contains { if case .event = $0 { true } else { false } })
        #expect(h.core.rejected["\(ErrorCode.duplicate)"] == 1)
        #expect(h.core.isFinished(now: 6))
    }

    @Test("a non-finite result records the trial as failed; an unknown trial id is refused; a study has no status to report")
    func badResults() throws {
        let h = try Harness(trials: 2)
        var w = try Self.register(h, 1)
        let t = try #require(Self.task(h.core.handle(peer: w.id, frames: w.frames(.workRequest), now: 1), to: w.id))
        let failed = h.core.handle(peer: w.id, frames: w.frames(.trialResult(TrialResult(trialID: t.trialID, leaseID: t.leaseID, trainLoss: .nan,
                                                                                          validLoss: .nan, testLoss: .nan))), now: 2)
        #expect(failed.contains { if case .event(let r) = $0 { r.status == .failed } else { false } })
        #expect(try h.store.trials()[Int(t.trialID)].status == .failed)
        let unknown = h.core.handle(peer: w.id, frames: w.frames(.trialResult(TrialResult(trialID: 99, leaseID: 1, trainLoss: 0, validLoss: 0,
                                                                                           testLoss: 0))), now: 2)
        #expect(Self.messages(unknown, to: w.id).contains { if case .error(let e) = $0.body { e.code == .unexpected } else { false } })
        var stranger = Peer(id: [9])
        let status = h.core.handle(peer: stranger.id, frames: stranger.frames(.statusRequest), now: 2)
        #expect(Self.messages(status, to: stranger.id).contains { if case .error = $0.body { true } else { false } })
    }

    @Test("shutdownAll tells every registered worker; a worker that leaves has its trial re-queued at once")
    func shutdownAndLeave() throws {
        let h = try Harness(trials: 2)
        var a = try Self.register(h, 1)
        let b = try Self.register(h, 2)
        let t = try #require(Self.task(h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: 1), to: a.id))
        let left = h.core.handle(peer: a.id, frames: a.frames(.shutdown(Shutdown(reason: "bye"))), now: 2)
        #expect(left.contains { if case .log(let l) = $0 { l.contains("1 trial(s) re-queued") } else { false } })
        #expect(try h.store.trials()[Int(t.trialID)].status == .pending)
        let all = h.core.shutdownAll(reason: "done")
        #expect(Self.messages(all, to: b.id).contains { if case .shutdown = $0.body { true } else { false } })
        #expect(Self.messages(all, to: a.id).isEmpty)
    }
}
