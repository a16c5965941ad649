import Foundation
import HyperOpt
import Wire

/// What the study loop must do after an event.
public enum StudyAction: Sendable {
    /// Send `message` to the peer with this routing id.
    case send(peer: [UInt8], message: Message)
    /// Log a line.
    case log(String)
    /// A trial finished (the record as stored) — for metrics.
    case trialCompleted(TrialRecord)
}

/// The study coordinator's logic (baselines: random search, Bayesian optimization) as a state
/// machine over the SQLite `StudyStore`: workers ask for work, get a `TrialTask` (Algorithm 1
/// at a proposed λ), and return a `TrialResult`. A dead worker's trial goes back to the queue;
/// a late result for a trial that is still open is accepted (trials are deterministic).
public final class StudyCoordinatorCore {
    private struct Peer {
        let workerID: String
        var lastHeard: Double
        var lastSent: Double
        var lastSequence: UInt64 = 0
        var waiting = false
        var trials: Set<Int> = []
    }

    /// The experiment (model, data sizes, seed) each trial trains.
    public let config: ExperimentConfig
    /// The study.
    public let study: StudySpec
    private let store: StudyStore
    private var records: [TrialRecord]
    private var peers: [[UInt8]: Peer] = [:]
    private var nextWorker = 1
    private var sequence: UInt64 = 0
    private var leases: [UInt64: (trial: Int, peer: [UInt8], issuedAt: Double)] = [:]
    private var nextLease: UInt64 = 1
    private let startedAt: Double
    private let priorSeconds: Double
    private let heartbeatInterval: Double
    private let liveness: Int
    private let spec: ExperimentSpec
    private var warmStart: GaussianProcess.Hyperparameters?
    /// The clock of the event being handled.
    private var now: Double = 0
    /// Messages rejected, by reason.
    public private(set) var rejected: [String: Int] = [:]

    /// - Parameters:
    ///   - config: the experiment each trial trains.
    ///   - study: the study.
    ///   - store: the database (existing trials are resumed; running ones re-queued).
    ///   - dataFingerprint: sent to workers.
    ///   - now: the clock.
    ///   - priorSeconds: study seconds already spent (resume).
    public init(config: ExperimentConfig, study: StudySpec, store: StudyStore, dataFingerprint: UInt64, now: Double,
                priorSeconds: Double = 0, heartbeatInterval: Double = 1, liveness: Int = 5) throws {
        self.config = config
        self.study = study
        self.store = store
        _ = try store.requeueRunning()
        records = try store.trials()
        startedAt = now
        self.priorSeconds = priorSeconds
        self.heartbeatInterval = heartbeatInterval
        self.liveness = liveness
        spec = ClusterSpec.spec(config: config, dataFingerprint: dataFingerprint)
    }

    /// Study wall-clock seconds (including before a resume).
    public func studySeconds(now: Double) -> Double { priorSeconds + now - startedAt }

    /// All trials so far.
    public var trials: [TrialRecord] { records }

    /// The best finished trial (lowest validation loss).
    public var best: TrialRecord? {
        records.filter { $0.status == .done && ($0.validLoss?.isFinite ?? false) }.min { $0.validLoss! < $1.validLoss! }
    }

    /// `true` when every trial is finished (or the budget is spent and nothing is running).
    public func isFinished(now: Double) -> Bool {
        let finished = records.filter { $0.status == .done || $0.status == .failed }.count
        if finished >= study.trials { return true }
        if let budget = study.wallBudgetSeconds, studySeconds(now: now) >= budget {
            return !records.contains { $0.status == .running }
        }
        return false
    }

    /// A message arrived from `peer`.
    public func handle(peer: [UInt8], frames: [[UInt8]], now: Double) -> [StudyAction] {
        self.now = now
        let message: Message
        do { message = try WireCodec.decode(frames) } catch {
            let code = error.errorCode
            rejected["\(code)", default: 0] += 1
            return [.log("rejected a \(frames.count)-frame message (\(frames.reduce(0) { $0 + $1.count }) bytes): \(error)"),
                    send(peer, .error(ErrorReply(code: code, message: "\(error)")))]
        }
        if var p = peers[peer] { p.lastHeard = now; peers[peer] = p }
        if case .hello(let hello) = message.body {
            var actions = dropPeer(peer, reason: "re-registered")
            let id = "trial-worker-\(nextWorker)"
            nextWorker += 1
            peers[peer] = Peer(workerID: id, lastHeard: now, lastSent: now)
            actions.append(.log("registered \(id) (host \(hello.hostname.prefix(64)), role \(hello.role))"))
            actions.append(send(peer, .welcome(Welcome(workerID: id, spec: spec, heartbeatIntervalMs: UInt32(heartbeatInterval * 1000),
                                                       heartbeatLiveness: UInt32(liveness)))))
            return actions
        }
        guard var p = peers[peer] else {
            rejected["notRegistered", default: 0] += 1
            return [send(peer, .error(ErrorReply(code: .notRegistered, message: "send Hello first", inReplyTo: message.sequence)))]
        }
        if case .heartbeat = message.body { return [] }
        guard message.sequence > p.lastSequence else {
            rejected["duplicate", default: 0] += 1
            return [send(peer, .error(ErrorReply(code: .duplicate, message: "already processed", inReplyTo: message.sequence)))]
        }
        p.lastSequence = message.sequence
        peers[peer] = p
        switch message.body {
        case .workRequest:
            p.waiting = true
            peers[peer] = p
            return dispatch(now: now)
        case .trialResult(let r):
            return accept(r, from: peer, sequence: message.sequence, now: now) + dispatch(now: now)
        case .shutdown:
            return dropPeer(peer, reason: "left") + dispatch(now: now)
        default:
            rejected["unexpected", default: 0] += 1
            return [send(peer, .error(ErrorReply(code: .unexpected, message: "unexpected \(message.body.name) in a study", inReplyTo: message.sequence)))]
        }
    }

    /// Clock tick: heartbeats, dead peers' trials back to the queue.
    public func tick(now: Double) -> [StudyAction] {
        self.now = now
        var actions: [StudyAction] = []
        for (key, p) in peers where now - p.lastHeard > heartbeatInterval * Double(liveness) {
            actions += dropPeer(key, reason: "silent for \(String(format: "%.1f", now - p.lastHeard)) s")
        }
        for key in peers.keys where now - peers[key]!.lastSent >= heartbeatInterval {
            actions.append(send(key, .heartbeat(Heartbeat(unixMs: UInt64(Date().timeIntervalSince1970 * 1000)))))
        }
        return actions + dispatch(now: now)
    }

    /// Tells every peer to stop.
    public func shutdownAll(reason: String) -> [StudyAction] {
        peers.keys.map { send($0, .shutdown(Shutdown(reason: reason))) }
    }

    private func dropPeer(_ key: [UInt8], reason: String) -> [StudyAction] {
        guard let p = peers.removeValue(forKey: key) else { return [] }
        var requeued = 0
        for id in p.trials where records[id].status == .running {
            try? store.markPending(id: id)
            records[id].status = .pending
            records[id].worker = nil
            requeued += 1
        }
        leases = leases.filter { $0.value.peer != key }
        return [.log("lost \(p.workerID) (\(reason)); \(requeued) trial(s) re-queued")]
    }

    private func dispatch(now: Double) -> [StudyAction] {
        var actions: [StudyAction] = []
        for key in peers.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            guard var p = peers[key], p.waiting else { continue }
            guard let id = nextTrial(now: now) else { break }
            let lease = nextLease
            nextLease += 1
            leases[lease] = (id, key, now)
            do { try store.markRunning(id: id, worker: p.workerID) } catch { actions.append(.log("\(error)")) }
            records[id].status = .running
            records[id].worker = p.workerID
            records[id].attempts += 1
            p.trials.insert(id)
            p.waiting = false
            p.lastSent = now
            peers[key] = p
            actions.append(send(key, .trialTask(TrialTask(trialID: UInt64(id), leaseID: lease, steps: UInt64(study.trialSteps),
                                                          lambda: records[id].lambda.map(Float.init)))))
        }
        return actions
    }

    /// The lowest pending trial, or a newly proposed one while the budget allows.
    private func nextTrial(now: Double) -> Int? {
        if let pending = records.first(where: { $0.status == .pending }) { return pending.id }
        guard records.count < study.trials else { return nil }
        if let budget = study.wallBudgetSeconds, studySeconds(now: now) >= budget { return nil }
        let id = records.count
        let lambda = propose(id)
        do { try store.insert(id: id, lambda: lambda) } catch { return nil }
        records.append(TrialRecord(id: id, lambda: lambda, status: .pending, worker: nil, attempts: 0))
        return id
    }

    private func propose(_ id: Int) -> [Double] {
        switch study.strategy {
        case .random:
            return RandomSearch(space: study.space, seed: config.seed).propose(trial: id)
        case .bayes:
            let observations = records.compactMap { r -> BayesianOptimizer.Observation? in
                guard r.status == .done, let v = r.validLoss, v.isFinite else { return nil }
                return .init(lambda: r.lambda, loss: v)
            }
            let pending = records.filter { $0.status == .running || $0.status == .pending }.map(\.lambda)
            let bo = BayesianOptimizer(space: study.space, seed: config.seed)
            do {
                let p = try bo.propose(observations: observations, pending: pending, trial: id, warmStart: warmStart)
                warmStart = p.hyperparameters ?? warmStart
                return p.points[0]
            } catch {
                return RandomSearch(space: study.space, seed: config.seed).propose(trial: id)
            }
        }
    }

    private func accept(_ r: Wire.TrialResult, from peer: [UInt8], sequence: UInt64, now: Double) -> [StudyAction] {
        let id = Int(r.trialID)
        guard id >= 0 && id < records.count else {
            rejected["badTrial", default: 0] += 1
            return [send(peer, .error(ErrorReply(code: .unexpected, message: "unknown trial \(r.trialID)", inReplyTo: sequence)))]
        }
        let issued = leases.removeValue(forKey: r.leaseID)
        if var p = peers[peer] { p.trials.remove(id); peers[peer] = p }
        guard records[id].status != .done && records[id].status != .failed else {
            rejected["duplicate", default: 0] += 1
            return [send(peer, .ack(Ack(sequence: sequence)))]
        }
        let seconds = issued.map { now - $0.issuedAt } ?? .nan
        let study = studySeconds(now: now)
        if !(r.validLoss.isFinite) {
            try? store.markFailed(id: id)
            records[id].status = .failed
            return [.log("trial \(id) diverged (non-finite validation loss); recorded as failed"), send(peer, .ack(Ack(sequence: sequence))),
                    .trialCompleted(records[id])]
        }
        do {
            try store.markDone(id: id, train: r.trainLoss, valid: r.validLoss, test: r.testLoss, trialSeconds: seconds, studySeconds: study)
        } catch {
            return [.log("could not store trial \(id): \(error)")]
        }
        records[id].status = .done
        records[id].trainLoss = r.trainLoss
        records[id].validLoss = r.validLoss
        records[id].testLoss = r.testLoss
        records[id].trialSeconds = seconds
        records[id].finishedAtStudySeconds = study
        return [send(peer, .ack(Ack(sequence: sequence))), .trialCompleted(records[id])]
    }

    private func send(_ peer: [UInt8], _ body: Message.Body) -> StudyAction {
        sequence += 1
        if var p = peers[peer] { p.lastSent = now; peers[peer] = p }
        return .send(peer: peer, message: Message(senderID: "coordinator", sequence: sequence, body: body))
    }
}
