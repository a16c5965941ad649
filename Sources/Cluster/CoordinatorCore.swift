import Foundation
import HyperOpt
import Linalg
import Models
import Wire

/// What the coordinator's I/O loop must do after an event.
public enum CoordinatorAction: Sendable {
    /// Send `message` to the peer with this routing id.
    case send(peer: [UInt8], message: Message)
    /// Log a line (never a payload).
    case log(String)
    /// A step completed (for progress, metrics, evaluation, checkpoints).
    case stepCompleted(StepReport)
}

/// Counters the coordinator exposes (Prometheus, summary).
public struct CoordinatorCounters: Sendable, Equatable {
    /// Gradients applied.
    public var gradientsApplied: UInt64 = 0
    /// Hypergradients applied.
    public var hypergradientsApplied: UInt64 = 0
    /// Messages rejected, by reason (error code name).
    public var rejected: [String: UInt64] = [:]
    /// Tasks re-issued after their peer died.
    public var tasksReissued: UInt64 = 0
    /// Peers declared dead.
    public var peersLost: UInt64 = 0
    /// Registrations accepted.
    public var registrations: UInt64 = 0
}

/// The coordinator's logic as a pure state machine: messages and clock ticks in, actions out.
/// No sockets; the loop in `Coordinator` does the I/O, and tests drive this directly.
///
/// Sync mode: each step issues the plan's K training tasks and its validation task, all
/// from the same φ/λ̂ versions; when every result is in, gradients are summed in task order
/// and the φ and λ̂ steps applied (`HyperState`, exactly as `LocalRun` does).
/// Async mode: every accepted gradient is its own φ step and every hypergradient its own
/// λ̂ step; results computed from a φ more than `maxStaleness` versions old are rejected.
public final class CoordinatorCore {
    /// A registered peer.
    struct Peer {
        let routingID: [UInt8]
        let workerID: String
        let role: Role
        var lastHeard: Double
        var lastSent: Double
        var lastSequence: UInt64 = 0
        var cachedPhiVersion: UInt64? = nil
        /// A peer that takes weights instead of φ (Hello.acceptsWeightTasks): a validator
        /// w = φ(λ̂), a trainer (sync mode) each task's λ and w = φ(λ).
        var weightTasks = false
        /// Work requests not yet answered with a task (a worker keeps up to `maxCredits`
        /// outstanding so the next task is already queued while it computes).
        var credits = 0
        var leases: Set<UInt64> = []
    }

    /// A task handed out and not yet answered.
    struct Lease {
        enum Kind: Equatable { case train(task: Int), valid }
        let id: UInt64
        let kind: Kind
        let step: UInt64
        let phiVersion: UInt64
        let lambdaVersion: UInt64
        let peer: [UInt8]
    }

    /// The run configuration.
    public let config: ExperimentConfig
    /// Scheduling mode.
    public let mode: ClusterMode
    /// Async: largest accepted `current φ version − task φ version`.
    public let maxStaleness: UInt64
    /// The parameter-server state.
    public let state: HyperState
    /// Counters.
    public private(set) var counters = CoordinatorCounters()
    /// Heartbeat interval (seconds).
    public let heartbeatInterval: Double
    /// Missed intervals before a peer is dead.
    public let heartbeatLiveness: Int
    /// The spec sent in `Welcome`.
    public let spec: ExperimentSpec

    private let sampler: TaskSampler
    private let h: Int
    private var peers: [[UInt8]: Peer] = [:]
    private var nextWorkerNumber = 1
    /// A validator has registered at least once. Until then a sync step waits for one (the
    /// start of a run); after the last one is lost, steps go on without λ̂ steps (DESIGN §4:
    /// losing the validator pauses λ̂ updates, not φ training) until a validator joins again.
    private var validatorSeen = false
    private var validatorsAlive: Bool { peers.values.contains { $0.role == .validator } }
    private var nextLeaseID: UInt64 = 1
    private var leases: [UInt64: Lease] = [:]
    private var sequence: UInt64 = 0
    /// The clock of the event being handled (so sends record when they happened).
    private var now: Double = 0

    // Sync round state.
    private var plan: StepPlan
    private var unassignedTrain: [Int] = []
    private var validUnassigned = false
    /// The step's accepted training gradients, by task. ∂L/∂w replies are also recorded as
    /// factors the moment they arrive (`TaskGradientExpander.record`): when every task's reply
    /// is of that form, the φ step streams their sum chunk by chunk into Adam (the bits of
    /// adding them in task order, without a φ-sized sum); otherwise the gradients are added in
    /// task order when the step completes.
    private var receivedGradients: [Int: PendingGradient] = [:]
    /// An accepted training gradient.
    private enum PendingGradient {
        /// `∂L/∂φ` as sent.
        case phi([Float])
        /// `∂L/∂w` and the task's λ, expanded to `∂L/∂φ` when added.
        case weights(gradW: [Float], lambda: [Float])
    }
    /// Expands `∂L/∂w` replies (sync mode) into `∂L/∂φ`, exactly as the trainer would.
    private let expander: TaskGradientExpander
    /// φ and λ̂ as arrays for the tasks of their current versions, made once per version and
    /// shared by every task message (the transport sends them without copying).
    private var phiArray: (version: UInt64, values: [Float])?
    private var lambdaArray: (version: UInt64, values: [Float])?
    private var weightsArray: (versions: (UInt64, UInt64), values: [Float])?
    /// Where `currentWeights` and `trainWeights` compute w (aligned like every workspace)
    /// before copying it out.
    private let weightsScratch: AlignedBuffer<Float>
    /// Where `trainWeights` samples a task's λ.
    private let lambdaScratch: AlignedBuffer<Float>
    /// The λ̂-independent part of sync training tasks' λ (`TaskSampler.lambdaNoise`), by step
    /// and task: drawn for the next step once this one is handed out, while the peers compute,
    /// so a weight task's λ is only `λ̂ + noise` when the step starts.
    private var noiseCache: [NoiseKey: AlignedBuffer<Double>] = [:]
    private var spareNoise: [AlignedBuffer<Double>] = []
    private struct NoiseKey: Hashable { let step: UInt64; let task: Int }

    /// When set, each task is handed to this closure (the I/O loop sends it) the moment it is
    /// made, instead of being returned with the other actions: the first trainer's task is then
    /// on the wire while the next tasks' weights are computed. Nil (tests): tasks are returned.
    public var taskSink: ((CoordinatorAction) -> Void)?
    private var trainLosses: [Double] = []
    private var hypergradient: AlignedBuffer<Float>
    private var validLoss: Double? = nil
    private var failuresThisStep = 0
    /// The divergence guard (when the configuration asks for one): called where `LocalRun`
    /// calls it, so its roll-backs happen at the same steps with the same bits.
    private var divergenceGuard: DivergenceGuard?

    // Async state.
    private var asyncIssued: UInt64 = 0
    /// φ version of the last validation task handed out in async mode.
    private var asyncValidIssuedAt: UInt64?
    private var asyncRecentTrain: [Double] = []

    /// `true` once the first sync round (or, in async mode, the first task) has been handed out
    /// in full: every role was up, had its data loaded and asked for work. Lets the run report
    /// its start-up time apart from its stepping rate.
    public private(set) var firstRoundIssued = false

    /// A message the run cannot recover from (e.g. every gradient of a step is non-finite).
    public private(set) var fatalError: String?
    /// `true` once the configured steps are done.
    public var isFinished: Bool { state.step >= UInt64(config.steps) || fatalError != nil }

    /// - Parameters:
    ///   - config: the run configuration.
    ///   - state: fresh or restored state.
    ///   - mode: sync or async.
    ///   - maxStaleness: async staleness bound.
    ///   - dataFingerprint: of the coordinator's splits, sent to workers.
    ///   - heartbeatInterval: seconds.
    ///   - heartbeatLiveness: missed intervals before a peer is dead.
    public init(config: ExperimentConfig, state: HyperState, mode: ClusterMode, maxStaleness: UInt64 = 4,
                dataFingerprint: UInt64, heartbeatInterval: Double = 1, heartbeatLiveness: Int = 5) {
        self.config = config
        self.state = state
        self.mode = mode
        self.maxStaleness = maxStaleness
        self.heartbeatInterval = heartbeatInterval
        self.heartbeatLiveness = heartbeatLiveness
        spec = ClusterSpec.spec(config: config, dataFingerprint: dataFingerprint)
        sampler = TaskSampler(config: config)
        h = state.lambdaHat.count
        plan = StepPlan(step: state.step, config: config)
        hypergradient = AlignedBuffer(count: h)
        expander = TaskGradientExpander(config: config)
        weightsScratch = AlignedBuffer(count: expander.weightCount)
        lambdaScratch = AlignedBuffer(count: h)
        divergenceGuard = config.divergenceGuard.map { DivergenceGuard(settings: $0, state: state) }
        startRound()
    }

    /// Peers alive, by role.
    public var peerCounts: (trainers: Int, validators: Int) {
        (peers.values.filter { $0.role == .trainer }.count, peers.values.filter { $0.role == .validator }.count)
    }

    // MARK: - Events

    /// A message arrived from `peer` (its ROUTER routing id) as raw frames.
    /// `frames` are `[UInt8]`s or the transport's receive buffers (`WireFrame`).
    public func handle<F: WireFrame>(peer: [UInt8], frames: [F], now: Double) -> [CoordinatorAction] {
        self.now = now
        let size = frames.reduce(0) { $0 + $1.count }
        let message: Message
        do {
            message = try WireCodec.decode(frames)
        } catch {
            let code = error.errorCode
            reject(code)
            var actions: [CoordinatorAction] = [.log("rejected \(frames.count)-frame message of \(size) bytes from \(Self.hex(peer)): \(error)")]
            let replyTo = WireCodec.peekHeader(frames)?.sequence ?? 0
            actions.append(send(peer, .error(ErrorReply(code: code, message: "\(error)", inReplyTo: replyTo))))
            return actions
        }
        if var p = peers[peer] { p.lastHeard = now; peers[peer] = p }

        switch message.body {
        case .hello(let hello):
            return register(peer: peer, hello: hello, now: now)
        case .statusRequest:
            return [send(peer, .status(status()))]
        default:
            break
        }
        guard var p = peers[peer] else {
            reject(.notRegistered)
            return [.log("message \(Self.kind(message.body)) from unregistered peer \(Self.hex(peer)); asked to register"),
                    send(peer, .error(ErrorReply(code: .notRegistered, message: "send Hello first", inReplyTo: message.sequence)))]
        }
        if case .heartbeat = message.body { return [] }
        if message.senderID != p.workerID {
            reject(.unexpected)
            return [send(peer, .error(ErrorReply(code: .unexpected, message: "sender id \(message.senderID) is not this peer's id", inReplyTo: message.sequence)))]
        }
        // (worker id, sequence) deduplication: results are not idempotent.
        if message.sequence <= p.lastSequence {
            reject(.duplicate)
            return [.log("duplicate sequence \(message.sequence) from \(p.workerID); ignored"),
                    send(peer, .error(ErrorReply(code: .duplicate, message: "already processed", inReplyTo: message.sequence)))]
        }
        p.lastSequence = message.sequence
        peers[peer] = p

        switch message.body {
        case .workRequest:
            p.credits = min(p.credits + 1, Self.maxCredits)
            peers[peer] = p
            return dispatch(now: now)
        case .shutdown(let s):
            // A worker leaving on purpose: its leases are re-issued now, not after the timeout.
            let removed = removePeer(peer, reason: "left: \(s.reason.prefix(80))")
            return removed + completeRoundIfReady(now: now) + dispatch(now: now)
        case .gradient where p.role != .trainer, .hypergradient where p.role != .validator:
            reject(.unauthorized)
            return [send(peer, .error(ErrorReply(code: .unauthorized, message: "a \(p.role) may not send \(message.body.name)", inReplyTo: message.sequence)))]
        case .gradient(let g):
            // The next round's tasks go out before the ack and the step report: they are what
            // the peers are waiting for.
            let actions = acceptGradient(peer: peer, message: message, g, now: now)
            return dispatch(now: now) + actions
        case .hypergradient(let g):
            let actions = acceptHypergradient(peer: peer, message: message, g, now: now)
            return dispatch(now: now) + actions
        default:
            reject(.unexpected)
            return [.log("unexpected \(Self.kind(message.body)) from \(p.workerID)"),
                    send(peer, .error(ErrorReply(code: .unexpected, message: "unexpected \(Self.kind(message.body))", inReplyTo: message.sequence)))]
        }
    }

    /// Clock tick: heartbeats out, dead peers removed and their tasks re-issued.
    public func tick(now: Double) -> [CoordinatorAction] {
        self.now = now
        var actions: [CoordinatorAction] = []
        let deadline = heartbeatInterval * Double(heartbeatLiveness)
        for (key, p) in peers where now - p.lastHeard > (p.lastSequence > 1 ? deadline : max(deadline, Self.registrationGrace)) {
            actions += removePeer(key, reason: "silent for \(String(format: "%.1f", now - p.lastHeard)) s")
        }
        for key in peers.keys where now - peers[key]!.lastSent >= heartbeatInterval {
            actions.append(send(key, .heartbeat(Heartbeat(unixMs: UInt64(Date().timeIntervalSince1970 * 1000)))))
        }
        if !actions.isEmpty { actions += completeRoundIfReady(now: now) + dispatch(now: now) }
        return actions
    }

    /// Tells every peer to stop.
    public func shutdownAll(reason: String) -> [CoordinatorAction] {
        peers.keys.map { send($0, .shutdown(Shutdown(reason: reason))) }
    }

    /// A status report.
    public func status() -> Status {
        let c = peerCounts
        let json = "{\"step\":\(state.step),\"mode\":\"\(mode.rawValue)\",\"gradients_applied\":\(counters.gradientsApplied),\"phi_version\":\(state.phiVersion),\"lambda_version\":\(state.lambdaVersion)}"
        return Status(step: state.step, stepsTotal: UInt64(config.steps), trainers: UInt32(c.trainers), validators: UInt32(c.validators), json: json)
    }

    // MARK: - Registration and peers

    private func register(peer: [UInt8], hello: Hello, now: Double) -> [CoordinatorAction] {
        var actions: [CoordinatorAction] = []
        if peers[peer] != nil { actions += removePeer(peer, reason: "re-registered") }
        // A worker that reconnected (new socket, new routing id) names its old id: drop the old
        // entry now so its leases are re-issued instead of waiting for the liveness timeout.
        if !hello.previousWorkerID.isEmpty, let old = peers.first(where: { $0.value.workerID == hello.previousWorkerID })?.key {
            actions += removePeer(old, reason: "reconnected")
        }
        guard hello.role == .trainer || hello.role == .validator else {
            reject(.unexpected)
            return actions + [send(peer, .error(ErrorReply(code: .unexpected, message: "this coordinator runs hyper-training; role \(hello.role) has no work here")))]
        }
        let prefix = hello.role == .trainer ? "trainer" : "validator"
        let id = "\(prefix)-\(nextWorkerNumber)"
        nextWorkerNumber += 1
        if hello.role == .validator && validatorSeen && !validatorsAlive {
            actions.append(.log("validator \(id) joined: λ̂ steps resume at step \(state.step)"))
        }
        if hello.role == .validator { validatorSeen = true }
        peers[peer] = Peer(routingID: peer, workerID: id, role: hello.role, lastHeard: now, lastSent: now,
                           weightTasks: hello.acceptsWeightTasks)
        counters.registrations += 1
        actions.append(.log("registered \(id) (host \(hello.hostname.prefix(64)), pid \(hello.pid))"))
        actions.append(send(peer, .welcome(Welcome(workerID: id, spec: spec, heartbeatIntervalMs: UInt32(heartbeatInterval * 1000),
                                                   heartbeatLiveness: UInt32(heartbeatLiveness)))))
        return actions
    }

    private func removePeer(_ key: [UInt8], reason: String) -> [CoordinatorAction] {
        guard let p = peers.removeValue(forKey: key) else { return [] }
        counters.peersLost += 1
        var requeued = 0
        for id in p.leases {
            guard let lease = leases.removeValue(forKey: id) else { continue }
            guard mode == .sync, lease.step == state.step else { continue }
            switch lease.kind {
            case .train(let k): if receivedGradients[k] == nil { requeue(k); requeued += 1 }
            case .valid: if validLoss == nil { validUnassigned = true; requeued += 1 }
            }
        }
        counters.tasksReissued += UInt64(requeued)
        var actions: [CoordinatorAction] = [.log("lost \(p.workerID) (\(reason)); \(requeued) task(s) re-queued")]
        if p.role == .validator && !validatorsAlive {
            actions.append(.log("no validator left: λ̂ stays at its current value (φ keeps training) until a validator joins"))
        }
        return actions
    }

    private func requeue(_ k: Int) {
        if !unassignedTrain.contains(k) {
            unassignedTrain.append(k)
            unassignedTrain.sort()
        }
    }

    // MARK: - Scheduling

    private func startRound() {
        plan = StepPlan(step: state.step, config: config)
        failuresThisStep = 0
        guard mode == .sync, !isFinished else { return }
        unassignedTrain = Array(0..<plan.trainTasks)
        validUnassigned = plan.validate
        receivedGradients = [:]
        trainLosses = Array(repeating: 0, count: plan.trainTasks)
        validLoss = nil
        if plan.trainTasks > 0 { state.beginStep() }
        for key in noiseCache.keys where key.step < state.step { spareNoise.append(noiseCache.removeValue(forKey: key)!) }
        // Leases of the previous step are void.
        for (id, lease) in leases where lease.step < state.step {
            leases.removeValue(forKey: id)
            if var p = peers[lease.peer] { p.leases.remove(id); peers[lease.peer] = p }
        }
    }

    /// Seconds a newly registered peer may stay silent (it loads its data before asking for
    /// work) before it is declared dead, whatever the heartbeat interval.
    static let registrationGrace = 30.0

    /// Most work requests a peer may have outstanding (pipelining depth).
    static let maxCredits = 2

    /// Hands tasks to peers with outstanding work requests: lowest task index first, one task
    /// per peer per round-robin pass (so two trainers split a step's tasks), peers in a stable
    /// order — trainers before validators (a step's training tasks take longer than its
    /// validation task, so they are the ones to start first).
    private func dispatch(now: Double) -> [CoordinatorAction] {
        guard !isFinished else { return [] }
        var actions: [CoordinatorAction] = []
        var issued = false
        var assigned = true
        let order = peers.keys.sorted { a, b in
            let (va, vb) = (peers[a]!.role == .validator, peers[b]!.role == .validator)
            return va != vb ? vb : a.lexicographicallyPrecedes(b)
        }
        while assigned {
            assigned = false
            for key in order {
                guard var p = peers[key], p.credits > 0, let task = nextTask(for: &p, key: key) else { continue }
                p.credits -= 1
                p.lastSent = now
                peers[key] = p
                let action = send(key, task, recordSend: false)
                if let taskSink { taskSink(action) } else { actions.append(action) }
                issued = true
                assigned = true
            }
        }
        if !firstRoundIssued && issued {
            firstRoundIssued = mode == .async || (unassignedTrain.isEmpty && !validUnassigned)
        }
        if issued && mode == .sync && unassignedTrain.isEmpty && !validUnassigned { drawNoiseAhead() }
        return actions
    }

    /// The next task for this peer's role, leased to it; nil when there is none now.
    private func nextTask(for p: inout Peer, key: [UInt8]) -> Message.Body? {
        switch (mode, p.role) {
        case (.sync, .trainer):
            guard !unassignedTrain.isEmpty else { return nil }
            let k = unassignedTrain.removeFirst()
            let lease = newLease(.train(task: k), peer: key)
            p.leases.insert(lease)
            if p.weightTasks {
                // The task's λ and w = φ(λ) (D + H values) instead of φ: the trainer runs only the
                // elementary model, and we run the hypernetwork both ways.
                let (lambda, weights) = trainWeights(task: k)
                return .trainTask(TrainTask(step: state.step, taskIndex: UInt32(k), leaseID: lease, tasksPerStep: UInt32(plan.trainTasks),
                                            phi: [], lambdaHat: [], acceptsWeightGradient: true, weights: weights, lambda: lambda))
            }
            // The round's φ stays put until every gradient is in, so the trainer may send the
            // much smaller ∂L/∂w and we run the hypernetwork's backward pass here.
            return .trainTask(TrainTask(step: state.step, taskIndex: UInt32(k), leaseID: lease, tasksPerStep: UInt32(plan.trainTasks),
                                        phi: phiIfNeeded(&p), lambdaHat: currentLambdaHat(), acceptsWeightGradient: true))
        case (.sync, .validator):
            guard validUnassigned else { return nil }
            validUnassigned = false
            let lease = newLease(.valid, peer: key)
            p.leases.insert(lease)
            if p.weightTasks {
                // w = φ(λ̂) (D values) instead of φ; we run the hypernetwork's backward pass.
                return .validTask(ValidTask(step: state.step, leaseID: lease, phi: [], lambdaHat: currentLambdaHat(),
                                            weights: currentWeights()))
            }
            return .validTask(ValidTask(step: state.step, leaseID: lease, phi: phiIfNeeded(&p), lambdaHat: currentLambdaHat()))
        case (.async, .trainer):
            guard StepPlan(step: state.step, config: config).trainTasks > 0 else { return nil }
            let lease = newLease(.train(task: 0), peer: key, step: asyncIssued)
            p.leases.insert(lease)
            defer { asyncIssued += 1 }
            return .trainTask(TrainTask(step: asyncIssued, taskIndex: 0, leaseID: lease, tasksPerStep: 1,
                                        phi: phiIfNeeded(&p), lambdaHat: currentLambdaHat()))
        case (.async, .validator):
            // While φ trains, at most one validation task per φ version, as Algorithm 3
            // alternates one φ step and one λ̂ step: a validator faster than the trainers would
            // otherwise move λ̂ many times against the same φ. (Phase 2 of the global
            // algorithm has only λ̂ steps.)
            let plan = StepPlan(step: state.step, config: config)
            guard plan.validate, p.leases.isEmpty,
                  plan.trainTasks == 0 || asyncValidIssuedAt.map({ $0 < state.phiVersion }) ?? true else { return nil }
            asyncValidIssuedAt = state.phiVersion
            let lease = newLease(.valid, peer: key, step: state.step)
            p.leases.insert(lease)
            return .validTask(ValidTask(step: state.step, leaseID: lease, phi: phiIfNeeded(&p), lambdaHat: currentLambdaHat()))
        default:
            return nil
        }
    }

    /// φ travels only when the peer does not hold this version yet (an empty tensor means
    /// "use your cached φ of the version in the header").
    private func phiIfNeeded(_ p: inout Peer) -> [Float] {
        if p.cachedPhiVersion == state.phiVersion { return [] }
        p.cachedPhiVersion = state.phiVersion
        if phiArray?.version != state.phiVersion { phiArray = (state.phiVersion, state.phi.array) }
        return phiArray!.values
    }

    /// w = φ(λ̂) of the current versions as an array (computed once per version pair).
    private func currentWeights() -> [Float] {
        let versions = (state.phiVersion, state.lambdaVersion)
        if let w = weightsArray, w.versions == versions { return w.values }
        expander.weights(phi: state.phi.constPointer, lambdaHat: state.lambdaHat.constPointer, into: weightsScratch.pointer)
        weightsArray = (versions, weightsScratch.array)
        return weightsArray!.values
    }

    /// Sync training task `task` of this step as a weight task: its λ sample (what (seed, step,
    /// task) gives at λ̂) and w = φ(λ), both computed in aligned workspaces as a trainer would.
    private func trainWeights(task: Int) -> (lambda: [Float], weights: [Float]) {
        sampler.lambda(noise: noise(step: state.step, task: task), lambdaHat: state.lambdaHat.constPointer,
                       into: lambdaScratch.pointer, count: h)
        expander.weights(phi: state.phi.constPointer, lambdaHat: state.lambdaHat.constPointer, lambda: lambdaScratch.constPointer,
                         into: weightsScratch.pointer)
        return (lambdaScratch.array, weightsScratch.array)
    }

    /// The λ̂-independent part of the λ of sync task `task` at `step`, drawn once.
    private func noise(step: UInt64, task: Int) -> UnsafePointer<Double> {
        let key = NoiseKey(step: step, task: task)
        if let b = noiseCache[key] { return b.constPointer }
        let b = spareNoise.popLast() ?? AlignedBuffer<Double>(count: h)
        sampler.lambdaNoise(step: step, task: task, into: b.pointer, count: h)
        noiseCache[key] = b
        return b.constPointer
    }

    /// Draws the next step's noise for weight-task trainers (the current step is handed out;
    /// its peers are computing).
    private func drawNoiseAhead() {
        guard peers.values.contains(where: { $0.role == .trainer && $0.weightTasks }) else { return }
        let next = state.step + 1
        guard next < UInt64(config.steps) else { return }
        for k in 0..<StepPlan(step: next, config: config).trainTasks { _ = noise(step: next, task: k) }
    }

    /// λ̂ of the current version as an array (one copy per version).
    private func currentLambdaHat() -> [Float] {
        if lambdaArray?.version != state.lambdaVersion { lambdaArray = (state.lambdaVersion, state.lambdaHat.array) }
        return lambdaArray!.values
    }

    private func newLease(_ kind: Lease.Kind, peer: [UInt8], step: UInt64? = nil) -> UInt64 {
        let id = nextLeaseID
        nextLeaseID += 1
        leases[id] = Lease(id: id, kind: kind, step: step ?? state.step, phiVersion: state.phiVersion,
                           lambdaVersion: state.lambdaVersion, peer: peer)
        return id
    }

    // MARK: - Results

    private func takeLease(_ id: UInt64, peer: [UInt8]) -> Lease? {
        guard let lease = leases[id], lease.peer == peer else { return nil }
        leases.removeValue(forKey: id)
        if var p = peers[peer] { p.leases.remove(id); peers[peer] = p }
        return lease
    }

    private func acceptGradient(peer: [UInt8], message: Message, _ g: Gradient, now: Double) -> [CoordinatorAction] {
        let who = peers[peer]?.workerID ?? "?"
        func refuse(_ code: ErrorCode, _ why: String) -> [CoordinatorAction] {
            reject(code)
            return [.log("rejected gradient from \(who) (step \(g.step), task \(g.taskIndex), \(g.gradPhi.count) floats): \(why)"),
                    send(peer, .error(ErrorReply(code: code, message: why, inReplyTo: message.sequence)))]
        }
        guard let lease = leases[g.leaseID], lease.peer == peer, lease.step == g.step,
              case .train(let k) = lease.kind, k == Int(g.taskIndex) else {
            return refuse(.stale, "no open lease \(g.leaseID) for step \(g.step) task \(g.taskIndex) (superseded or re-issued)")
        }
        // Validate before touching any state.
        let weightForm = !g.gradW.isEmpty
        if weightForm {
            // Only a sync task allows it: the φ it was computed from must still be ours.
            guard mode == .sync, g.gradPhi.isEmpty, lease.phiVersion == state.phiVersion else {
                return refuse(.badTensor, "grad_w sent for a task that did not accept it (send grad_phi)")
            }
            guard g.gradW.count == expander.weightCount else {
                return refuse(.badTensor, "grad_w has \(g.gradW.count) values, expected \(expander.weightCount)")
            }
        } else {
            guard g.gradPhi.count == state.phi.count else {
                return refuse(.badTensor, "grad_phi has \(g.gradPhi.count) values, expected \(state.phi.count)")
            }
        }
        guard g.lambdas.count == h else { return refuse(.badTensor, "lambda has \(g.lambdas.count) values, expected \(h)") }
        guard g.gradPhi.allFinite, g.gradW.allFinite, g.lambdas.allFinite, g.trainLoss.isFinite else {
            _ = takeLease(g.leaseID, peer: peer)
            var after: [CoordinatorAction] = []
            if mode == .sync { requeue(k); failuresThisStep += 1; after = checkFailures() }
            return refuse(.nonFinite, "non-finite gradient or loss") + after
        }
        let trainCount = config.batchSize >= config.nTrain ? config.nTrain : config.batchSize
        guard g.indices.count == trainCount, g.indices.allSatisfy({ $0 >= 0 && Int($0) < config.nTrain }) else {
            return refuse(.badTensor, "indices: \(g.indices.count) values (expected \(trainCount)) or out of range")
        }
        // Sync tasks were computed from the current λ̂, so their λ must be exactly what
        // (seed, step, task) gives; a peer with another config, build or libm is refused loudly
        // rather than silently breaking bit-identity. (Async tasks may be from an older λ̂.) A
        // ∂L/∂w reply is checked in full: the hypernetwork's backward pass runs at that λ.
        if mode == .sync {
            let m = weightForm ? h : min(h, Self.lambdaCheckLength)
            guard expectedLambda(task: k, count: m)[...] == g.lambdas.prefix(m) else {
                return refuse(.badTensor, "lambda samples differ from (seed, step, task)'s — peer runs another config or build")
            }
        }
        _ = takeLease(g.leaseID, peer: peer)
        var actions: [CoordinatorAction] = [send(peer, .ack(Ack(sequence: message.sequence)))]
        switch mode {
        case .sync:
            guard receivedGradients[k] == nil else { reject(.duplicate); return actions }
            trainLosses[k] = g.trainLoss
            if weightForm {
                g.gradW.withUnsafeBufferPointer { gw in
                    g.lambdas.withUnsafeBufferPointer { l in
                        expander.record(phi: state.phi.constPointer, lambdaHat: state.lambdaHat.constPointer,
                                        lambda: l.baseAddress!, gradW: gw.baseAddress!, slot: k)
                    }
                }
            }
            receivedGradients[k] = weightForm ? .weights(gradW: g.gradW, lambda: g.lambdas) : .phi(g.gradPhi)
            counters.gradientsApplied += 1
            actions += completeRoundIfReady(now: now)
        case .async:
            let staleness = state.phiVersion - lease.phiVersion
            guard staleness <= maxStaleness else {
                return refuse(.stale, "computed from φ version \(lease.phiVersion), now \(state.phiVersion) (max staleness \(maxStaleness))")
            }
            let plan = StepPlan(step: state.step, config: config)
            guard plan.trainTasks > 0 else { return refuse(.stale, "no φ steps in this phase") }
            g.gradPhi.withUnsafeBufferPointer { gp in
                state.beginStep()
                state.addTaskGradient(gp.baseAddress!)
                state.applyPhiStep()
            }
            counters.gradientsApplied += 1
            state.endStep()
            asyncRecentTrain.append(g.trainLoss)
            actions.append(.stepCompleted(StepReport(step: state.step, lambdaHat: state.lambdaHat.array, trainLoss: g.trainLoss,
                                                     validBatchLoss: nil, evaluation: nil)))
        }
        return actions
    }

    /// Adds one task's gradient to the state's running sum.
    private func add(_ gradient: PendingGradient) {
        switch gradient {
        case .phi(let g):
            g.withUnsafeBufferPointer { state.addTaskGradient($0.baseAddress!) }
        case .weights(let gradW, let lambda):
            gradW.withUnsafeBufferPointer { gw in
                lambda.withUnsafeBufferPointer { l in
                    state.accumulateTaskGradient { sum in
                        expander.accumulate(phi: state.phi.constPointer, lambdaHat: state.lambdaHat.constPointer,
                                            lambda: l.baseAddress!, gradW: gw.baseAddress!, into: sum)
                    }
                }
            }
        }
    }

    private func acceptHypergradient(peer: [UInt8], message: Message, _ g: Hypergradient, now: Double) -> [CoordinatorAction] {
        let who = peers[peer]?.workerID ?? "?"
        func refuse(_ code: ErrorCode, _ why: String) -> [CoordinatorAction] {
            reject(code)
            return [.log("rejected hypergradient from \(who) (step \(g.step), \(g.gradLambda.count) floats): \(why)"),
                    send(peer, .error(ErrorReply(code: code, message: why, inReplyTo: message.sequence)))]
        }
        guard let lease = leases[g.leaseID], lease.peer == peer, lease.kind == .valid, lease.step == g.step else {
            return refuse(.stale, "no open validation lease \(g.leaseID) for step \(g.step)")
        }
        let weightForm = !g.gradW.isEmpty
        if weightForm {
            // The answer to a weight task: only sync, and only while w's φ and λ̂ are current.
            guard mode == .sync, g.gradLambda.isEmpty, lease.phiVersion == state.phiVersion,
                  lease.lambdaVersion == state.lambdaVersion else {
                return refuse(.badTensor, "grad_w sent for a validation task that did not carry w (send grad_lambda)")
            }
            guard g.gradW.count == expander.weightCount else {
                return refuse(.badTensor, "grad_w has \(g.gradW.count) values, expected \(expander.weightCount)")
            }
        } else {
            guard g.gradLambda.count == h else { return refuse(.badTensor, "grad_lambda has \(g.gradLambda.count) values, expected \(h)") }
        }
        guard g.gradLambda.allFinite, g.gradW.allFinite, g.validLoss.isFinite else {
            _ = takeLease(g.leaseID, peer: peer)
            var after: [CoordinatorAction] = []
            if mode == .sync { validUnassigned = true; failuresThisStep += 1; after = checkFailures() }
            return refuse(.nonFinite, "non-finite hypergradient or loss") + after
        }
        _ = takeLease(g.leaseID, peer: peer)
        var actions: [CoordinatorAction] = [send(peer, .ack(Ack(sequence: message.sequence)))]
        switch mode {
        case .sync:
            guard validLoss == nil else { reject(.duplicate); return actions }
            if weightForm {
                g.gradW.withUnsafeBufferPointer { gw in
                    expander.hypergradient(phi: state.phi.constPointer, lambdaHat: state.lambdaHat.constPointer,
                                           gradW: gw.baseAddress!, into: hypergradient.pointer)
                }
            } else {
                hypergradient.load(g.gradLambda)
            }
            validLoss = g.validLoss
            counters.hypergradientsApplied += 1
            actions += completeRoundIfReady(now: now)
        case .async:
            // A hypergradient is stale when λ̂ has moved on since its task (another validator's
            // step), not when φ has: a validation pass takes longer than a training task, and
            // measured in φ versions nearly every hypergradient would be refused (λ̂ would
            // barely move, e.g. 56 of 383 accepted on the fig4 setting with one trainer).
            let staleness = state.lambdaVersion - lease.lambdaVersion
            guard staleness <= maxStaleness else {
                return refuse(.stale, "computed from λ̂ version \(lease.lambdaVersion), now \(state.lambdaVersion)")
            }
            hypergradient.load(g.gradLambda)
            state.applyLambdaStep(hypergradient.constPointer)
            counters.hypergradientsApplied += 1
            let plan = StepPlan(step: state.step, config: config)
            if plan.trainTasks == 0 {
                // Phase 2 of the global algorithm: λ̂ steps are the steps.
                state.endStep()
                actions.append(.stepCompleted(StepReport(step: state.step, lambdaHat: state.lambdaHat.array, trainLoss: nil,
                                                         validBatchLoss: g.validLoss, evaluation: nil)))
            } else {
                validLoss = g.validLoss
            }
        }
        return actions
    }

    private func completeRoundIfReady(now: Double) -> [CoordinatorAction] {
        // Without a validator (after the last one was lost) the step goes on without λ̂'s step.
        let validating = plan.validate && (validLoss != nil || !validatorSeen || validatorsAlive)
        guard mode == .sync, !isFinished, receivedGradients.count == plan.trainTasks, plan.trainTasks > 0 || validating,
              !validating || validLoss != nil else { return [] }
        // Exactly LocalRun.step's order of operations: the task gradients summed in task order
        // from zero (the sum was begun in startRound()), then the φ step, then the λ̂ step.
        let train: Double? = plan.trainTasks > 0 ? trainLosses.reduce(0, +) / Double(plan.trainTasks) : nil
        let phiFinite = plan.trainTasks > 0 ? applyPhiStep() : true
        if validating { state.applyLambdaStep(hypergradient.constPointer) }
        // φ's finiteness was checked as the update wrote it; without a φ step, check φ here.
        let finite = plan.trainTasks > 0 ? phiFinite && state.lambdaHat.allFinite : state.parametersAreFinite
        if divergenceGuard == nil && !finite {
            fatalError = "step \(state.step): φ or λ̂ overflowed after the update (step size too large); the last checkpoint holds the last good state"
            return []
        }
        state.endStep()
        guard let verdict = watch(validBatchLoss: validating ? validLoss : nil, finite: finite) else { return [.log(fatalError!)] }
        let rolledBack = !verdict.isEmpty || !finite
        let report = StepReport(step: state.step, lambdaHat: state.lambdaHat.array, trainLoss: rolledBack ? nil : train,
                                validBatchLoss: rolledBack || !validating ? nil : validLoss, evaluation: nil)
        startRound()
        return verdict + [.stepCompleted(report)]
    }

    /// Sync mode with the divergence guard: a step whose results stay non-finite ends as
    /// `LocalRun` ends it (the step counts, the guard rolls the state back) and the next round
    /// starts.
    private func abandonRound() -> [CoordinatorAction] {
        state.endStep()
        guard let verdict = watch(validBatchLoss: nil, finite: false) else { return [.log(fatalError!)] }
        let report = StepReport(step: state.step, lambdaHat: state.lambdaHat.array, trainLoss: nil, validBatchLoss: nil, evaluation: nil)
        startRound()
        return verdict + [.stepCompleted(report)]
    }

    /// The divergence guard's verdict on the step just ended, as `LocalRun.step` takes it: the
    /// roll-back's log line (none when the step was fine), or nil when the guard gave up
    /// (`fatalError` then says why).
    private func watch(validBatchLoss: Double?, finite: Bool) -> [CoordinatorAction]? {
        guard let watcher = divergenceGuard else { return [] }
        switch watcher.observe(state: state, validBatchLoss: validBatchLoss, finite: finite) {
        case .fine: return []
        case .rolledBack(let why): return [.log(why)]
        case .gaveUp(let why):
            fatalError = why
            return nil
        }
    }

    /// The φ step on the mean of the step's task gradients; `true` when φ is finite after it.
    private func applyPhiStep() -> Bool {
        let tasks = plan.trainTasks
        let recorded = receivedGradients.values.allSatisfy { if case .weights = $0 { true } else { false } }
        if recorded && expander.recordedSumIsCertainlyFinite(tasks: tasks) {
            return state.applyPhiStep(tasks: tasks) { expander.forEachRecordedSumChunk(tasks: tasks, $0) }
        }
        if recorded {
            // Not proven finite from the factors: write the sum (Adam's finiteness report then
            // catches an overflow, as for any sum).
            state.setGradientSum(tasks: tasks) { expander.writeRecordedSum(tasks: tasks, into: $0) }
        } else {
            for k in 0..<tasks { add(receivedGradients[k]!) }
        }
        return state.applyPhiStep()
    }

    /// A non-finite result is refused and its task re-issued (one peer's bad result changes
    /// nothing); when a step keeps producing them, the computation itself diverged: with the
    /// divergence guard the step ends as `LocalRun` ends it (rolled back), without it the run
    /// stops.
    private func checkFailures() -> [CoordinatorAction] {
        guard failuresThisStep > 3 * max(plan.trainTasks + 1, 1) else { return [] }
        if divergenceGuard != nil { return abandonRound() }
        fatalError = "step \(state.step): \(failuresThisStep) non-finite results; the run diverged (lower the step sizes). The last good state is kept."
        return []
    }

    /// Components of λ re-derived to check a ∂L/∂φ reply: the first ones of the stream
    /// identify a peer with another seed, config, generator or build as surely as all of them,
    /// at a fixed cost (the full λ has up to D components).
    static let lambdaCheckLength = 64

    /// The first `count` components of the λ of sync task `task` of this step (from the current
    /// λ̂; a prefix of the stream is exactly the prefix of the full sample). The whole λ comes
    /// from the step's noise, drawn once.
    private func expectedLambda(task: Int, count: Int) -> [Float] {
        if count == h {
            sampler.lambda(noise: noise(step: state.step, task: task), lambdaHat: state.lambdaHat.constPointer,
                           into: lambdaScratch.pointer, count: h)
            return lambdaScratch.array
        }
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { o in
            sampler.lambda(step: state.step, task: task, lambdaHat: state.lambdaHat.constPointer, into: o.baseAddress!, count: count)
        }
        return out
    }

    // MARK: - Helpers

    private func reject(_ code: ErrorCode) {
        counters.rejected["\(code)", default: 0] += 1
    }

    private func send(_ peer: [UInt8], _ body: Message.Body, recordSend: Bool = true) -> CoordinatorAction {
        sequence += 1
        if recordSend, var p = peers[peer] { p.lastSent = now; peers[peer] = p }
        return .send(peer: peer, message: Message(senderID: "coordinator", phiVersion: state.phiVersion,
                                                  lambdaVersion: state.lambdaVersion, sequence: sequence, body: body))
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.prefix(8).map { String(format: "%02x", $0) }.joined() }

    static func kind(_ body: Message.Body) -> String {
        String(describing: body).prefix(while: { $0 != "(" }).description
    }
}
