import Foundation
import HyperOpt
import Wire

/// The study coordinator's actions: its events are finished trials (the record as stored).
public typealias StudyAction = PeerAction<TrialRecord>

/// How long one proposal took (`hypertrain bench study`).
public struct ProposalTiming: Sendable, Equatable {
    /// The first trial proposed.
    public let trial: Int
    /// Points proposed in this call (a batch; the later ones are handed out without a call).
    public let batch: Int
    /// Finished observations the model was fitted on.
    public let observations: Int
    /// Trials running or pending (fantasies).
    public let pending: Int
    /// Wall seconds of the proposal.
    public let seconds: Double
}

/// The study coordinator's logic (baselines: random search, Bayesian optimization) as a state
/// machine over the SQLite `StudyStore`: workers ask for work, get a `TrialTask` (Algorithm 1
/// at a proposed λ), and return a `TrialResult`. A dead worker's trial goes back to the queue;
/// a late result for a trial that is still open is accepted (trials are deterministic).
///
/// Database writes go through an ordered queue: a write the file does not take now (another
/// process holds a lock on it) stays in memory and is retried every ``retryInterval`` seconds,
/// in order, so nothing is lost or reordered. A result is acknowledged to its worker as soon
/// as it is in that queue (the worker moves on; the coordinator holds the result), and the
/// study is not finished until the queue is empty. If the coordinator is killed while a result
/// is still queued, the file has that trial `running`, and `--resume` re-queues it.
public final class StudyCoordinatorCore {
    /// What scheduling keeps per peer: whether it asked for work.
    struct Slot { var waiting = false }

    /// The experiment (model, data sizes, seed) each trial trains.
    public let config: ExperimentConfig
    /// The study.
    public let study: StudySpec
    private let store: StudyStore
    private var records: [TrialRecord]
    private var peers: PeerTable<Slot, TrialRecord>
    /// Trials handed out, by lease (the trial id and when it was issued).
    private var leases = LeaseTable<Int>()
    private let startedAt: Double
    private let priorSeconds: Double
    private let spec: ExperimentSpec
    private var warmStart: GaussianProcess.Hyperparameters?
    /// Observations at the last marginal-likelihood fit of the GP's hyperparameters.
    private var lastFitObservations: Int?
    /// Up to this many observations every proposal refits the GP's hyperparameters.
    static let alwaysRefitBelow = 100
    /// A batch's points after the first, handed out before anything new is proposed.
    private var proposedAhead: [[Double]] = []
    /// Writes the database has not taken yet, oldest first.
    private var unsaved: [StudyWrite] = []
    /// When the current run of failed writes began (nil: the last write succeeded).
    private var failingSince: Double?
    private var failuresSinceLogged = 0
    private var nextAttempt = 0.0
    /// Seconds between attempts while the database refuses writes.
    public static let retryInterval = 1.0
    /// Messages rejected, by reason.
    public var rejected: [String: Int] { peers.rejected.mapValues { Int($0) } }
    /// Every proposal's timing, in order.
    public private(set) var proposals: [ProposalTiming] = []

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
        peers = PeerTable(heartbeatInterval: heartbeatInterval, liveness: liveness)
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

    /// Changes still waiting for the database.
    public var unsavedWrites: Int { unsaved.count }

    /// `true` when every trial is finished (or the budget is spent and nothing is running) and
    /// stored.
    public func isFinished(now: Double) -> Bool {
        guard unsaved.isEmpty else { return false }
        let finished = records.filter { $0.status == .done || $0.status == .failed }.count
        if finished >= study.trials { return true }
        if let budget = study.wallBudgetSeconds, studySeconds(now: now) >= budget {
            return !records.contains { $0.status == .running }
        }
        return false
    }

    /// A message arrived from `peer`.
    public func handle<F: WireFrame>(peer: [UInt8], frames: [F], now: Double) -> [StudyAction] {
        let message: Message
        switch peers.receive(peer: peer, frames: frames, now: now) {
        case .handled(let actions): return actions
        case .undecodable(let actions):
            // The worker drops a refused result's trial: its trials go back to the queue.
            let (count, requeued) = requeue(leases.release(heldBy: peer), now: now)
            if count == 0 { return actions }
            return actions + requeued + [.log("\(count) trial(s) re-queued after an undecodable reply")] + dispatch(now: now)
        case .hello(let hello):
            var actions: [StudyAction] = []
            for (old, reason) in peers.replaced(by: peer, hello: hello) { actions += lose(old, reason: reason, now: now) }
            return actions + peers.register(peer, hello: hello, prefix: "trial-worker", slot: Slot(), spec: spec, now: now).actions
        case .statusRequest(let sequence):
            return [peers.refuse(peer, .unexpected, "a study coordinator reports no status; see its summary", inReplyTo: sequence)]
        case .message(let m, _): message = m
        }
        switch message.body {
        case .workRequest:
            peers[peer]?.slot.waiting = true
            return dispatch(now: now)
        case .trialResult(let r):
            return accept(r, from: peer, sequence: message.sequence, now: now) + dispatch(now: now)
        case .shutdown:
            return lose(peer, reason: "left", now: now) + dispatch(now: now)
        default:
            return [peers.refuse(peer, .unexpected, "unexpected \(message.body.name) in a study", inReplyTo: message.sequence)]
        }
    }

    /// Clock tick: heartbeats, dead peers' trials back to the queue.
    public func tick(now: Double) -> [StudyAction] {
        var actions: [StudyAction] = []
        for (key, reason) in peers.expired(now: now) { actions += lose(key, reason: reason, now: now) }
        return actions + flush(now: now) + peers.heartbeats(now: now) + dispatch(now: now)
    }

    /// Queues a metadata value (replacing a queued value of the same key).
    public func saveMeta(_ key: String, _ value: String, now: Double) -> [StudyAction] {
        if let i = unsaved.firstIndex(where: { if case .meta(key, _) = $0 { true } else { false } }) {
            unsaved[i] = .meta(key: key, value: value)
            return []
        }
        return save(.meta(key: key, value: value), now: now)
    }

    /// Queues a write and applies it now when nothing is waiting ahead of it.
    private func save(_ write: StudyWrite, now: Double) -> [StudyAction] {
        unsaved.append(write)
        return unsaved.count == 1 ? flush(now: now, force: true) : []
    }

    /// Applies queued writes in order, stopping at the first the database refuses; retried
    /// from `tick` every ``retryInterval`` seconds (`force`: now). A refusal is logged when a
    /// run of them starts, and the end of the run once, with how long it lasted.
    public func flush(now: Double, force: Bool = false) -> [StudyAction] {
        guard !unsaved.isEmpty, force || now >= nextAttempt else { return [] }
        var applied = 0
        var failure: StudyStoreError?
        while applied < unsaved.count {
            do { try store.apply(unsaved[applied]) } catch { failure = error; break }
            applied += 1
        }
        unsaved.removeFirst(applied)
        guard let failure else {
            guard let since = failingSince else { return [] }
            failingSince = nil
            return [.log("study database writable again after \(String(format: "%.1f", now - since)) s (\(failuresSinceLogged) failed attempt(s)); every queued change is stored")]
        }
        nextAttempt = now + Self.retryInterval
        failuresSinceLogged += 1
        guard failingSince == nil else { return [] }
        failingSince = now
        failuresSinceLogged = 1
        let why = failure.isBusy ? "locked by another process" : "refused a write"
        return [.log("study database \(why) (\(failure)); keeping \(unsaved.count) change(s) in memory and retrying every \(Int(Self.retryInterval)) s (logged once)")]
    }

    /// Tells every peer to stop.
    public func shutdownAll(reason: String) -> [StudyAction] { peers.shutdownAll(reason: reason) }

    /// After `shutdownAll`: a message from `peer` is answered with the same Shutdown (once per
    /// routing id), whatever it was (`ServeLoop.farewell`).
    public func farewell(peer: [UInt8]) -> [StudyAction] { peers.farewell(peer).map { [$0] } ?? [] }

    /// Removes a peer; its running trials go back to the queue.
    private func lose(_ key: [UInt8], reason: String, now: Double) -> [StudyAction] {
        guard let p = peers.remove(key) else { return [] }
        let (requeued, actions) = requeue(leases.release(heldBy: key), now: now)
        return [.log("lost \(p.workerID) (\(reason)); \(requeued) trial(s) re-queued")] + actions
    }

    /// Puts the running trials among `released` back in the queue.
    private func requeue(_ released: [LeaseTable<Int>.Lease], now: Double) -> (count: Int, actions: [StudyAction]) {
        var count = 0
        var actions: [StudyAction] = []
        for lease in released where records[lease.task].status == .running {
            let id = lease.task
            actions += save(.pending(id: id), now: now)
            records[id].status = .pending
            records[id].worker = nil
            count += 1
        }
        return (count, actions)
    }

    private func dispatch(now: Double) -> [StudyAction] {
        var actions: [StudyAction] = []
        for key in peers.orderedKeys {
            guard let p = peers[key], p.slot.waiting else { continue }
            guard let id = nextTrial(now: now, actions: &actions) else { break }
            let lease = leases.issue(id, to: key, now: now)
            actions += save(.running(id: id, worker: p.workerID), now: now)
            records[id].status = .running
            records[id].worker = p.workerID
            records[id].attempts += 1
            peers[key]?.slot.waiting = false
            actions.append(peers.send(key, .trialTask(TrialTask(trialID: UInt64(id), leaseID: lease, steps: UInt64(study.trialSteps),
                                                                lambda: records[id].lambda.map(Float.init)))))
        }
        return actions
    }

    /// The lowest pending trial, or a newly proposed one while the budget allows.
    private func nextTrial(now: Double, actions: inout [StudyAction]) -> Int? {
        if let pending = records.first(where: { $0.status == .pending }) { return pending.id }
        guard records.count < study.trials else { return nil }
        if let budget = study.wallBudgetSeconds, studySeconds(now: now) >= budget { return nil }
        let id = records.count
        let lambda = propose(id)
        actions += save(.insert(id: id, lambda: lambda), now: now)
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
            if !proposedAhead.isEmpty { return proposedAhead.removeFirst() }
            let pending = records.filter { $0.status == .running || $0.status == .pending }.map(\.lambda)
            // Many workers and many observations: one proposal per trial would keep the workers
            // waiting (a proposal at 1,000 observations takes ~0.1 s, and 64 workers with
            // 0.7-s trials want 90 a second), so propose a batch — half the workers, at most
            // 32 — its later points picked from one candidate set (Kriging believer fantasies,
            // `batchFromCandidates`) and handed out as workers ask.
            let batch = observations.count > Self.alwaysRefitBelow ? min(32, max(1, peers.count(.trainer) / 2)) : 1
            let started = ServeLoop.now()
            defer {
                proposals.append(ProposalTiming(trial: id, batch: batch, observations: observations.count, pending: pending.count,
                                                seconds: ServeLoop.now() - started))
            }
            var bo = BayesianOptimizer(space: study.space, seed: config.seed)
            // Large studies: the marginal-likelihood fit (≤ 180 O(m³) evaluations on ≤ 300
            // points) is most of a proposal, and the hyperparameters barely move from one
            // observation to the next: refit (from the last optimum) once the observations grew
            // by a quarter since the last fit, else keep the last fit's. The candidates' variances are O(n²) each: their
            // number shrinks as 1/n past 200 observations (never below 500), the L-BFGS polish
            // of the best ones unchanged. Up to 100 observations every proposal is as before.
            let n = observations.count
            if n > Self.alwaysRefitBelow, let fitted = lastFitObservations, warmStart != nil {
                if Double(n) < 1.25 * Double(fitted) {
                    bo.configuration.refitHyperparameters = false
                } else {
                    // A refit starts from the last fit's optimum: one restart instead of three.
                    bo.configuration.fit.restarts = 1
                }
            }
            if n > 200 { bo.configuration.candidates = max(500, bo.configuration.candidates * 200 / n) }
            bo.configuration.batchFromCandidates = true
            do {
                let p = try bo.propose(batch: batch, observations: observations, pending: pending, trial: id, warmStart: warmStart)
                proposedAhead = Array(p.points.dropFirst())
                if bo.configuration.refitHyperparameters && p.hyperparameters != nil { lastFitObservations = n }
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
            return [peers.refuse(peer, .unexpected, "unknown trial \(r.trialID)", inReplyTo: sequence)]
        }
        // Trials are deterministic: a late result (its worker was declared dead and the trial
        // re-issued) is as good as the re-issued one's.
        let issued = leases.close(r.leaseID)
        guard records[id].status != .done && records[id].status != .failed else {
            peers.reject("\(ErrorCode.duplicate)")
            return [peers.send(peer, .ack(Ack(sequence: sequence)))]
        }
        let seconds = issued.map { now - $0.issuedAt } ?? .nan
        let study = studySeconds(now: now)
        if !(r.validLoss.isFinite) {
            let saved = save(.failed(id: id), now: now)
            records[id].status = .failed
            return [.log("trial \(id) diverged (non-finite validation loss); recorded as failed"), peers.send(peer, .ack(Ack(sequence: sequence))),
                    .event(records[id])] + saved
        }
        // Acknowledged once queued: the coordinator holds the result until the file takes it.
        let saved = save(.done(id: id, train: r.trainLoss, valid: r.validLoss, test: r.testLoss, trialSeconds: seconds, studySeconds: study), now: now)
        records[id].status = .done
        records[id].trainLoss = r.trainLoss
        records[id].validLoss = r.validLoss
        records[id].testLoss = r.testLoss
        records[id].trialSeconds = seconds
        records[id].finishedAtStudySeconds = study
        return saved + [peers.send(peer, .ack(Ack(sequence: sequence))), .event(records[id])]
    }
}
