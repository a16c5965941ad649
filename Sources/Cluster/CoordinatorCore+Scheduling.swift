import HyperOpt
import Wire

/// Scheduling: which task goes to which peer, and when a sync round starts.
extension CoordinatorCore {
    /// Most work requests a peer may have outstanding (pipelining depth).
    static let maxCredits = 2

    /// Starts the sync round of `step` (default: the state's step; a pipelined run starts step
    /// t + 1's round before step t's update): every task unassigned, earlier steps' leases void.
    func startRound(step: UInt64? = nil) {
        roundStep = step ?? state.step
        plan = StepPlan(step: roundStep, config: config)
        failuresThisStep = 0
        guard mode == .sync, !isFinished, roundStep <= UInt64(config.steps) else { return }
        unassignedTrain = isFinalValidation ? [] : Array(0..<plan.trainTasks)
        validUnassigned = plan.validate || isFinalValidation
        receivedGradients = [:]
        trainLosses = Array(repeating: 0, count: plan.trainTasks)
        validLoss = nil
        payloads.discardNoise(before: roundStep)
        let step = roundStep
        leases.removeAll { $0.task.step < step }
    }

    /// Puts training task `k` of this step back in the queue (its peer died, left, or sent a
    /// non-finite result).
    func requeue(_ k: Int) {
        if !unassignedTrain.contains(k) {
            unassignedTrain.append(k)
            unassignedTrain.sort()
        }
    }

    /// Hands tasks to peers with outstanding work requests: lowest task index first, one task
    /// per peer per round-robin pass (so two trainers split a step's tasks), peers in a stable
    /// order — trainers before validators (a step's training tasks take longer than its
    /// validation task, so they are the ones to start first).
    func dispatch(now: Double) -> [CoordinatorAction] {
        guard !isFinished else { return [] }
        // A sync step with every task out has nothing to hand out: answer the work request
        // without visiting every peer (with many more peers than tasks that scan was the
        // coordinator's cost growing as K² per step, `hypertrain bench cluster`).
        if mode == .sync && unassignedTrain.isEmpty && !validUnassigned { return [] }
        var actions: [CoordinatorAction] = []
        var issued = false
        var assigned = true
        let keys = peers.orderedKeys
        let order = keys.filter { peers[$0]!.role == .trainer } + keys.filter { peers[$0]!.role != .trainer }
        while assigned {
            assigned = false
            for key in order {
                guard let p = peers[key], p.slot.credits > 0, let task = nextTask(for: key, role: p.role, now: now) else { continue }
                peers[key]?.slot.credits -= 1
                peers[key]?.lastSent = now
                // Stamped with the versions the task was made from (what a worker caches φ by).
                let versions = roundVersions
                let action = peers.send(key, task, phiVersion: versions.phi, lambdaVersion: versions.lambda, recordSend: false)
                if let taskSink { taskSink(action) } else { actions.append(action) }
                issued = true
                assigned = true
            }
        }
        if !firstRoundIssued && issued {
            firstRoundIssued = mode == .async || (unassignedTrain.isEmpty && !validUnassigned)
        }
        if issued && mode == .sync && unassignedTrain.isEmpty && !validUnassigned,
           peers.peers.values.contains(where: { $0.role == .trainer && $0.slot.weightTasks }) {
            payloads.drawNoise(after: roundStep)
        }
        return actions
    }

    /// The next task for this peer's role, leased to it; nil when there is none now.
    private func nextTask(for key: [UInt8], role: Role, now: Double) -> Message.Body? {
        func lease(_ kind: Task.Kind, step: UInt64? = nil) -> UInt64 {
            let versions = roundVersions
            return leases.issue(Task(kind: kind, step: step ?? (mode == .sync ? roundStep : state.step), phiVersion: versions.phi,
                                     lambdaVersion: versions.lambda),
                                to: key, now: now)
        }
        let weightTasks = peers[key]!.slot.weightTasks
        switch (mode, role) {
        case (.sync, .trainer):
            guard !unassignedTrain.isEmpty else { return nil }
            let k = unassignedTrain.removeFirst()
            let id = lease(.train(task: k))
            if weightTasks {
                // The task's λ and w = φ(λ) (D + H values) instead of φ: the trainer runs only the
                // elementary model, and we run the hypernetwork both ways.
                let (lambda, weights) = payloads.trainWeights(task: k, step: roundStep, state)
                return .trainTask(TrainTask(step: roundStep, taskIndex: UInt32(k), leaseID: id, tasksPerStep: UInt32(plan.trainTasks),
                                            phi: [], lambdaHat: [], acceptsWeightGradient: true, weights: weights, lambda: lambda))
            }
            // The round's φ stays put until every gradient is in, so the trainer may send the
            // much smaller ∂L/∂w and we run the hypernetwork's backward pass here.
            return .trainTask(TrainTask(step: roundStep, taskIndex: UInt32(k), leaseID: id, tasksPerStep: UInt32(plan.trainTasks),
                                        phi: phiIfNeeded(key), lambdaHat: payloads.lambdaHat(state), acceptsWeightGradient: true))
        case (.sync, .validator):
            guard validUnassigned else { return nil }
            validUnassigned = false
            let id = lease(.valid)
            if isFinalValidation {
                // An external run's last validation is at the final φ and λ̂ (pipelined, the task
                // parameters are one update older).
                return .validTask(ValidTask(step: roundStep, leaseID: id, phi: [], lambdaHat: state.lambdaHat.array,
                                            weights: payloads.finalWeights(state)))
            }
            if weightTasks {
                // w = φ(λ̂) (D values) instead of φ; we run the hypernetwork's backward pass.
                return .validTask(ValidTask(step: roundStep, leaseID: id, phi: [], lambdaHat: payloads.lambdaHat(state),
                                            weights: payloads.weights(state)))
            }
            return .validTask(ValidTask(step: roundStep, leaseID: id, phi: phiIfNeeded(key), lambdaHat: payloads.lambdaHat(state)))
        case (.async, .trainer):
            // One task per trainer at a time: a second one, queued while the first computes,
            // would be computed from a φ already one step old when it starts — every gradient
            // stale, which on the fig4 setting with the paper's step sizes ended at 6× the
            // synchronous run's validation loss. The next task goes out with the reply's φ step.
            guard StepPlan(step: state.step, config: config).trainTasks > 0, !leases.holds(key) else { return nil }
            let id = lease(.train(task: 0), step: asyncIssued)
            defer { asyncIssued += 1 }
            if config.external != nil {
                // An external model's workers take weights only: its λ and w = φ(λ) at the
                // current versions (kept, to expand the reply with the φ it was computed at).
                let (lambda, weights) = payloads.asyncTrainWeights(step: asyncIssued, state)
                return .trainTask(TrainTask(step: asyncIssued, taskIndex: 0, leaseID: id, tasksPerStep: 1, phi: [], lambdaHat: [],
                                            acceptsWeightGradient: true, weights: weights, lambda: lambda))
            }
            return .trainTask(TrainTask(step: asyncIssued, taskIndex: 0, leaseID: id, tasksPerStep: 1,
                                        phi: phiIfNeeded(key), lambdaHat: payloads.lambdaHat(state)))
        case (.async, .validator):
            // While φ trains, at most one validation task per φ version, as Algorithm 3
            // alternates one φ step and one λ̂ step: a validator faster than the trainers would
            // otherwise move λ̂ many times against the same φ. (Phase 2 of the global
            // algorithm has only λ̂ steps.)
            let plan = StepPlan(step: state.step, config: config)
            guard plan.validate, !leases.holds(key),
                  plan.trainTasks == 0 || asyncValidIssuedAt.map({ $0 < state.phiVersion }) ?? true else { return nil }
            asyncValidIssuedAt = state.phiVersion
            let id = lease(.valid)
            if config.external != nil {
                payloads.keepVersions(state)
                return .validTask(ValidTask(step: state.step, leaseID: id, phi: [], lambdaHat: payloads.lambdaHat(state),
                                            weights: payloads.weights(state)))
            }
            return .validTask(ValidTask(step: state.step, leaseID: id, phi: phiIfNeeded(key), lambdaHat: payloads.lambdaHat(state)))
        default:
            return nil
        }
    }

    /// φ travels only when the peer does not hold this version yet (an empty tensor means
    /// "use your cached φ of the version in the header").
    private func phiIfNeeded(_ key: [UInt8]) -> [Float] {
        if peers[key]?.slot.cachedPhiVersion == state.taskPhiVersion { return [] }
        peers[key]?.slot.cachedPhiVersion = state.taskPhiVersion
        return payloads.phi(state)
    }
}
