import Foundation
import HyperOpt
import Linalg
import Wire

/// The hyper-training coordinator's actions: its events are completed steps.
public typealias CoordinatorAction = PeerAction<StepReport>

/// Counters the coordinator exposes (Prometheus, summary).
public struct CoordinatorCounters: Sendable, Equatable {
    /// Gradients applied.
    public var gradientsApplied: UInt64 = 0
    /// Hypergradients applied.
    public var hypergradientsApplied: UInt64 = 0
    /// Messages rejected, by reason (error code name).
    public var rejected: [String: UInt64] = [:]
    /// Tasks re-issued after their peer died or left.
    public var tasksReissued: UInt64 = 0
    /// Peers removed: dead, left, or replaced by a new registration.
    public var peersLost: UInt64 = 0
    /// Registrations accepted.
    public var registrations: UInt64 = 0
    /// Results (gradients, hypergradients) that reached the state machine: each is applied or
    /// refused, so `gradientsApplied + hypergradientsApplied + Σ resultsRefused` equals this.
    public var resultsReceived: UInt64 = 0
    /// Results refused, by reason.
    public var resultsRefused: [String: UInt64] = [:]
}

/// Where the coordinator's thread spends its time inside the state machine (wall seconds on
/// the monotonic clock; the loop is one thread, so this is its serial time). Read by
/// `hypertrain bench cluster`; the extra clock reads cost ≈ 0.1 µs per message.
public struct CoordinatorSerialTime: Sendable, Equatable {
    /// Decoding and checking frames, registration, heartbeats (the peer layer's receive).
    public var receive = 0.0
    /// Checking results against their leases and recording them (∂L/∂w expanded into factors).
    public var intake = 0.0
    /// φ and λ̂ steps (Adam over φ, the λ̂ update) when a round completes.
    public var update = 0.0
    /// Making tasks (λ samples, w = φ(λ)) and handing them to the transport.
    public var dispatch = 0.0
    /// Rounds completed (sync) by `update`.
    public var updates: UInt64 = 0
    /// Tasks handed out.
    public var tasksIssued: UInt64 = 0

    /// Zero.
    public init() {}

    /// The time between two readings.
    public static func - (a: Self, b: Self) -> Self {
        var d = Self()
        d.receive = a.receive - b.receive
        d.intake = a.intake - b.intake
        d.update = a.update - b.update
        d.dispatch = a.dispatch - b.dispatch
        d.updates = a.updates - b.updates
        d.tasksIssued = a.tasksIssued - b.tasksIssued
        return d
    }
}

/// The hyper-training coordinator's logic as a pure state machine: messages and clock ticks in,
/// actions out. No sockets; the loop in `Coordinator` does the I/O, and tests drive this
/// directly. Peers (registration, liveness, deduplication, sends) are the shared `PeerTable`'s
/// job; this type keeps the scheduling (`CoordinatorCore+Scheduling.swift`) and the intake of
/// results (`CoordinatorCore+Intake.swift`).
///
/// Sync mode: each step issues the plan's K training tasks and its validation task, all from
/// the same φ/λ̂ versions (the state's task parameters); when every result is in, gradients are
/// summed in task order and the φ and λ̂ steps applied (`HyperState`, exactly as `LocalRun`
/// does). Pipelined (`ExperimentConfig.pipelined`), the next step's tasks — made from the
/// parameters before this update — are handed out before the update is applied.
/// Async mode: every accepted gradient is its own φ step and every hypergradient its own λ̂ step;
/// results computed from a φ more than `maxStaleness` versions old are rejected.
public final class CoordinatorCore {
    /// What scheduling keeps per peer.
    struct Slot {
        /// The φ version the peer holds (φ is sent only when it changed).
        var cachedPhiVersion: UInt64? = nil
        /// A peer that takes weights instead of φ (Hello.acceptsWeightTasks): a validator
        /// w = φ(λ̂), a trainer (sync mode) each task's λ and w = φ(λ).
        var weightTasks = false
        /// Work requests not yet answered with a task (a worker keeps up to `maxCredits`
        /// outstanding so the next task is already queued while it computes).
        var credits = 0
    }

    /// What a lease was for.
    struct Task {
        enum Kind: Equatable { case train(task: Int), valid }
        let kind: Kind
        let step: UInt64
        let phiVersion: UInt64
        let lambdaVersion: UInt64
    }

    /// The run configuration.
    public let config: ExperimentConfig
    /// Scheduling mode.
    public let mode: ClusterMode
    /// Async: largest accepted `current φ version − task φ version`.
    public let maxStaleness: UInt64
    /// The parameter-server state.
    public let state: HyperState
    /// The spec sent in `Welcome`.
    public let spec: ExperimentSpec

    var peers: PeerTable<Slot, StepReport>
    var leases = LeaseTable<Task>()
    let payloads: TaskPayloads
    let h: Int
    var gradientsApplied: UInt64 = 0
    var hypergradientsApplied: UInt64 = 0
    var resultsReceived: UInt64 = 0
    var resultsRefused: [String: UInt64] = [:]
    var tasksReissued: UInt64 = 0
    /// A validator has registered at least once. Until then a sync step waits for one (the
    /// start of a run); after the last one is lost, steps go on without λ̂ steps — losing the
    /// validator pauses λ̂'s updates, not φ's training — until a validator joins again.
    var validatorSeen = false
    var validatorsAlive: Bool { peers.count(.validator) > 0 }

    // Sync round state.
    /// The step whose tasks are out: the state's step, except in a pipelined run while step
    /// t's update is applied after step t + 1's tasks were handed out (within one call).
    var roundStep: UInt64 = 0
    var plan: StepPlan
    var unassignedTrain: [Int] = []
    var validUnassigned = false
    /// The step's accepted training gradients, by task. ∂L/∂w replies are also recorded as
    /// factors the moment they arrive (`TaskGradientExpander.record`): when every task's reply
    /// is of that form, the φ step streams their sum chunk by chunk into Adam (the bits of
    /// adding them in task order, without a φ-sized sum); otherwise the gradients are added in
    /// task order when the step completes.
    var receivedGradients: [Int: PendingGradient] = [:]
    /// An accepted training gradient.
    enum PendingGradient {
        /// `∂L/∂φ` as sent.
        case phi([Float])
        /// `∂L/∂w` and the task's λ, expanded to `∂L/∂φ` when added.
        case weights(gradW: [Float], lambda: [Float])
    }
    var trainLosses: [Double] = []
    var hypergradient: AlignedBuffer<Float>
    var validLoss: Double? = nil
    var failuresThisStep = 0
    /// The divergence guard (when the configuration asks for one): called where `LocalRun`
    /// calls it, so its roll-backs happen at the same steps with the same bits.
    var divergenceGuard: DivergenceGuard?

    /// Serial time by phase (`hypertrain bench cluster`).
    public internal(set) var serialTime = CoordinatorSerialTime()

    // Async state.
    var asyncIssued: UInt64 = 0
    /// φ version of the last validation task handed out in async mode.
    var asyncValidIssuedAt: UInt64?

    /// When set, each task is handed to this closure (the I/O loop sends it) the moment it is
    /// made, instead of being returned with the other actions: the first trainer's task is then
    /// on the wire while the next tasks' weights are computed. Nil (tests): tasks are returned.
    public var taskSink: ((CoordinatorAction) -> Void)?

    /// `true` once the first sync round (or, in async mode, the first task) has been handed out
    /// in full: every role was up, had its data loaded and asked for work. Lets the run report
    /// its start-up time apart from its stepping rate.
    public internal(set) var firstRoundIssued = false

    /// A message the run cannot recover from (e.g. every gradient of a step is non-finite).
    public internal(set) var fatalError: String?
    /// `true` once the configured steps are done (and, for an external model, the final
    /// validation at φ(λ̂) is in, or no validator is left to compute it).
    public var isFinished: Bool {
        fatalError != nil || state.step > UInt64(config.steps)
            || (state.step == UInt64(config.steps) && !(isFinalValidation && finalValidLoss == nil && validatorsAlive))
    }

    /// An external model's validation loss at the final w = φ(λ̂), on the validation minibatch
    /// of step `steps` (docs/protocol.md §12): one more `ValidTask` after the last step, whose
    /// gradient is ignored. The coordinator has no data, so this is its "evaluation".
    public internal(set) var finalValidLoss: Double?
    /// The round after the last step of an external run: only that validation task.
    var isFinalValidation: Bool { config.external != nil && mode == .sync && state.step == UInt64(config.steps) }

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
        peers = PeerTable(heartbeatInterval: heartbeatInterval, liveness: heartbeatLiveness)
        spec = ClusterSpec.spec(config: config, dataFingerprint: dataFingerprint)
        h = state.lambdaHat.count
        payloads = TaskPayloads(config: config, hyperparameterCount: h)
        plan = StepPlan(step: state.step, config: config)
        hypergradient = AlignedBuffer(count: h)
        divergenceGuard = config.divergenceGuard.map { DivergenceGuard(settings: $0, state: state) }
        precondition(mode == .sync || !state.pipelined, "CoordinatorCore: async mode is not pipelined (its tasks use the newest φ)")
        startRound()
    }

    /// Heartbeat interval (seconds).
    public var heartbeatInterval: Double { peers.heartbeatInterval }
    /// Missed intervals before a peer is dead.
    public var heartbeatLiveness: Int { peers.liveness }

    /// Counters so far.
    public var counters: CoordinatorCounters {
        CoordinatorCounters(gradientsApplied: gradientsApplied, hypergradientsApplied: hypergradientsApplied, rejected: peers.rejected,
                            tasksReissued: tasksReissued, peersLost: peers.removals, registrations: peers.registrations,
                            resultsReceived: resultsReceived, resultsRefused: resultsRefused)
    }

    /// Peers alive, by role.
    public var peerCounts: (trainers: Int, validators: Int) { (peers.count(.trainer), peers.count(.validator)) }

    // MARK: - Events

    /// A message arrived from `peer` (its ROUTER routing id) as raw frames.
    /// `frames` are `[UInt8]`s or the transport's receive buffers (`WireFrame`).
    public func handle<F: WireFrame>(peer: [UInt8], frames: [F], now: Double) -> [CoordinatorAction] {
        peers.versions = (state.phiVersion, state.lambdaVersion)
        let (message, role): (Message, Role)
        let received = Self.clock()
        let outcome = peers.receive(peer: peer, frames: frames, now: now)
        serialTime.receive += Self.clock() - received
        switch outcome {
        case .handled(let actions): return actions
        case .undecodable(let actions):
            let reissued = reissue(leases.release(heldBy: peer))
            if reissued == 0 { return actions }
            return actions + [.log("\(reissued) task(s) of \(peers[peer]!.workerID) re-queued after its undecodable reply")] + dispatch(now: now)
        case .hello(let hello): return register(peer: peer, hello: hello, now: now)
        case .statusRequest: return [send(peer, .status(status()))]
        case .message(let m, let r): (message, role) = (m, r)
        }
        switch message.body {
        case .gradient, .hypergradient: resultsReceived += 1
        default: break
        }
        switch message.body {
        case .workRequest:
            let credits = peers[peer]!.slot.credits
            peers[peer]?.slot.credits = min(credits + 1, Self.maxCredits)
            return timedDispatch(now: now)
        case .shutdown(let s):
            // A worker leaving on purpose: its leases are re-issued now, not after the timeout.
            let removed = lose(peer, reason: "left: \(s.reason.prefix(80))")
            return removed + completeRoundIfReady(now: now) + dispatch(now: now)
        case .gradient where role != .trainer, .hypergradient where role != .validator:
            resultsRefused["\(ErrorCode.unauthorized)", default: 0] += 1
            return [peers.refuse(peer, .unauthorized, "a \(role) may not send \(message.body.name)", inReplyTo: message.sequence)]
        case .gradient(let g):
            // The next round's tasks go out before the ack and the step report: they are what
            // the peers are waiting for.
            let t0 = Self.clock(), update0 = serialTime.update
            let actions = acceptGradient(peer: peer, message: message, g, now: now)
            serialTime.intake += Self.clock() - t0 - (serialTime.update - update0)
            return timedDispatch(now: now) + actions
        case .hypergradient(let g):
            let t0 = Self.clock(), update0 = serialTime.update
            let actions = acceptHypergradient(peer: peer, message: message, g, now: now)
            serialTime.intake += Self.clock() - t0 - (serialTime.update - update0)
            return timedDispatch(now: now) + actions
        default:
            return [.log("unexpected \(message.body.name) from \(peers[peer]!.workerID)"),
                    peers.refuse(peer, .unexpected, "unexpected \(message.body.name)", inReplyTo: message.sequence)]
        }
    }

    /// Clock tick: heartbeats out, dead peers removed and their tasks re-issued.
    public func tick(now: Double) -> [CoordinatorAction] {
        peers.versions = (state.phiVersion, state.lambdaVersion)
        var actions: [CoordinatorAction] = []
        for (key, reason) in peers.expired(now: now) { actions += lose(key, reason: reason) }
        actions += peers.heartbeats(now: now)
        if !actions.isEmpty { actions += completeRoundIfReady(now: now) + dispatch(now: now) }
        return actions
    }

    /// Tells every peer to stop.
    public func shutdownAll(reason: String) -> [CoordinatorAction] {
        peers.versions = (state.phiVersion, state.lambdaVersion)
        return peers.shutdownAll(reason: reason)
    }

    /// After `shutdownAll`: a message from `peer` is answered with the same Shutdown (once per
    /// routing id), whatever it was (`ServeLoop.farewell`).
    public func farewell(peer: [UInt8]) -> [CoordinatorAction] { peers.farewell(peer).map { [$0] } ?? [] }

    /// A status report.
    public func status() -> Status {
        let c = peerCounts
        let json = "{\"step\":\(state.step),\"mode\":\"\(mode.rawValue)\",\"gradients_applied\":\(gradientsApplied),\"phi_version\":\(state.phiVersion),\"lambda_version\":\(state.lambdaVersion)}"
        return Status(step: state.step, stepsTotal: UInt64(config.steps), trainers: UInt32(c.trainers), validators: UInt32(c.validators), json: json)
    }

    /// `dispatch`, its time counted in `serialTime.dispatch`.
    func timedDispatch(now: Double) -> [CoordinatorAction] {
        let t0 = Self.clock(), issued = leases.issuedCount
        defer {
            serialTime.dispatch += Self.clock() - t0
            serialTime.tasksIssued += leases.issuedCount - issued
        }
        return dispatch(now: now)
    }

    /// The monotonic clock (vDSO, tens of ns).
    static func clock() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    // MARK: - Registration and loss of peers

    private func register(peer: [UInt8], hello: Hello, now: Double) -> [CoordinatorAction] {
        var actions: [CoordinatorAction] = []
        for (old, reason) in peers.replaced(by: peer, hello: hello) { actions += lose(old, reason: reason) }
        guard hello.role == .trainer || hello.role == .validator else {
            return actions + [peers.refuse(peer, .unexpected, "this coordinator runs hyper-training; role \(hello.role) has no work here", inReplyTo: 0)]
        }
        if let model = config.external {
            // An external model: the coordinator sends only weights (it has no φ a worker could
            // use) and the worker's layout must be the run's.
            guard hello.acceptsWeightTasks else {
                return actions + [peers.refuse(peer, .unexpected, "this run is on an external model: only workers that take weight tasks (Hello.accepts_weight_tasks) can join", inReplyTo: 0)]
            }
            if let theirs = hello.model, let why = ClusterSpec.layoutMismatch(theirs, model) {
                return actions + [.log("refused a \(hello.role) from \(hello.hostname) pid \(hello.pid): \(why)"),
                                  peers.refuse(peer, .badTensor, why, inReplyTo: 0)]
            }
        }
        let resumesLambda = hello.role == .validator && validatorSeen && !validatorsAlive
        if hello.role == .validator { validatorSeen = true }
        let registered = peers.register(
            peer, hello: hello, prefix: hello.role == .trainer ? "trainer" : "validator",
            slot: Slot(weightTasks: hello.acceptsWeightTasks), spec: spec, now: now)
        if resumesLambda { actions.append(.log("validator \(registered.workerID) joined: λ̂ steps resume at step \(state.step)")) }
        return actions + registered.actions
    }

    /// Removes a peer and re-queues the tasks of this step it held.
    func lose(_ key: [UInt8], reason: String) -> [CoordinatorAction] {
        guard let p = peers.remove(key) else { return [] }
        let requeued = reissue(leases.release(heldBy: key))
        var actions: [CoordinatorAction] = [.log("lost \(p.workerID) (\(reason)); \(requeued) task(s) re-queued")]
        if p.role == .validator && !validatorsAlive {
            actions.append(.log("no validator left: λ̂ stays at its current value (φ keeps training) until a validator joins"))
        }
        return actions
    }

    /// Puts the tasks of this step among `released` back in the queue (their peer died, left,
    /// or sent something unusable); returns how many.
    func reissue(_ released: [LeaseTable<Task>.Lease]) -> Int {
        var requeued = 0
        for lease in released where mode == .sync && lease.task.step == roundStep {
            switch lease.task.kind {
            case .train(let k): if receivedGradients[k] == nil { requeue(k); requeued += 1 }
            case .valid: if validLoss == nil { validUnassigned = true; requeued += 1 }
            }
        }
        tasksReissued += UInt64(requeued)
        return requeued
    }

    /// A message to `peer` stamped with the current φ and λ̂ versions.
    func send(_ peer: [UInt8], _ body: Message.Body, recordSend: Bool = true) -> CoordinatorAction {
        peers.send(peer, body, phiVersion: state.phiVersion, lambdaVersion: state.lambdaVersion, recordSend: recordSend)
    }

    /// The φ and λ̂ versions the current round's tasks are made from: the task parameters'
    /// (`HyperState.taskPhi`; in async mode, never pipelined, the current ones), except an
    /// external run's final validation, which is at the final φ and λ̂.
    var roundVersions: (phi: UInt64, lambda: UInt64) {
        isFinalValidation ? (state.phiVersion, state.lambdaVersion) : (state.taskPhiVersion, state.taskLambdaVersion)
    }
}
