import Foundation
import HyperOpt
import Wire

/// Intake: results checked against their leases and the protocol's rules, then applied —
/// a sync round completes when every result is in, an async result is its own step.
extension CoordinatorCore {
    /// Components of λ re-derived to check a ∂L/∂φ reply: the first ones of the stream
    /// identify a peer with another seed, config, generator or build as surely as all of them,
    /// at a fixed cost (the full λ has up to D components).
    static let lambdaCheckLength = 64

    func acceptGradient(peer: [UInt8], message: Message, _ g: Gradient, now: Double) -> [CoordinatorAction] {
        let who = peers[peer]?.workerID ?? "?"
        func refuse(_ code: ErrorCode, _ why: String) -> [CoordinatorAction] {
            resultsRefused["\(code)", default: 0] += 1
            return [.log("rejected gradient from \(who) (step \(g.step), task \(g.taskIndex), \(g.gradPhi.count) floats): \(why)"),
             peers.refuse(peer, code, why, inReplyTo: message.sequence)]
        }
        guard let lease = leases.lease(g.leaseID, heldBy: peer), lease.task.step == g.step,
              case .train(let k) = lease.task.kind, k == Int(g.taskIndex) else {
            return refuse(.stale, "no open lease \(g.leaseID) for step \(g.step) task \(g.taskIndex) (superseded or re-issued)")
        }
        /// A refused result closes its lease (the worker drops the task, docs/protocol.md §6):
        /// in sync mode the task is handed out again, so a bad reply never stalls the step.
        func refuseResult(_ code: ErrorCode, _ why: String) -> [CoordinatorAction] {
            _ = leases.take(g.leaseID, from: peer)
            if mode == .sync && receivedGradients[k] == nil { requeue(k) }
            return refuse(code, why)
        }
        guard message.phiVersion == lease.task.phiVersion, message.lambdaVersion == lease.task.lambdaVersion else {
            return refuseResult(.unexpected, "echoed versions (φ \(message.phiVersion), λ̂ \(message.lambdaVersion)) are not the task's (φ \(lease.task.phiVersion), λ̂ \(lease.task.lambdaVersion))")
        }
        // Validate before touching any state.
        let weightForm = !g.gradW.isEmpty
        if weightForm {
            // Only a sync task allows it (the φ it was computed from must still be ours), or an
            // external model's async task (whose φ is kept for it, TaskPayloads.keepVersions).
            guard g.gradPhi.isEmpty, mode == .sync ? lease.task.phiVersion == state.taskPhiVersion : config.external != nil else {
                return refuseResult(.badTensor, "grad_w sent for a task that did not accept it (send grad_phi)")
            }
            guard g.gradW.count == payloads.weightCount else {
                return refuseResult(.badTensor, "grad_w has \(g.gradW.count) values, expected \(payloads.weightCount)")
            }
        } else {
            guard g.gradPhi.count == state.phi.count else {
                return refuseResult(.badTensor, "grad_phi has \(g.gradPhi.count) values, expected \(state.phi.count)")
            }
        }
        // Answering a sync weight task, `lambda` may be left out: it is the λ the task carried.
        var g = g
        let echoed = !g.lambdas.isEmpty
        if !echoed, weightForm, mode == .sync, let carried = payloads.carriedLambda(task: k, step: roundStep, state) {
            g.lambdas = carried
        }
        guard g.lambdas.count == h else {
            return refuseResult(.badTensor, "lambda has \(g.lambdas.count) values, expected \(h) (it may be left out only answering a weight task)")
        }
        guard g.gradPhi.allFinite, g.gradW.allFinite, g.lambdas.allFinite, g.trainLoss.isFinite else {
            _ = leases.take(g.leaseID, from: peer)
            var after: [CoordinatorAction] = []
            if mode == .sync { requeue(k); failuresThisStep += 1; after = checkFailures() }
            return refuse(.nonFinite, "non-finite gradient or loss") + after
        }
        // An external model's trainer computes only the data term: the coordinator adds the
        // penalty, which needs the task's w (so only ∂L/∂w replies).
        if config.external != nil && !weightForm {
            return refuseResult(.badTensor, "an external model's trainer must answer with grad_w (∂L_pred/∂w)")
        }
        // The rows must be exactly the minibatch (seed, step, task) gives (§7): a worker with
        // another generator would otherwise drift the run silently. (An external model's data
        // are the workers' own: their rows cannot be checked here.)
        guard config.external != nil || g.indices == payloads.expectedRows(step: g.step, task: k) else {
            return refuseResult(.badTensor, "indices: \(g.indices.count) rows that are not the minibatch (seed, step, task) gives")
        }
        // Sync tasks were computed from the current λ̂, so their λ must be exactly what
        // (seed, step, task) gives; a peer with another config, build or libm is refused loudly
        // rather than silently breaking bit-identity. (Async tasks may be from an older λ̂.) A
        // ∂L/∂w reply is checked in full: the hypernetwork's backward pass runs at that λ.
        if mode == .sync && echoed {
            let m = weightForm ? h : min(h, Self.lambdaCheckLength)
            guard Self.sameBits(payloads.expectedLambda(task: k, step: roundStep, count: m, state), g.lambdas, count: m) else {
                return refuseResult(.badTensor, "lambda samples differ from (seed, step, task)'s — peer runs another config or build")
            }
        }
        _ = leases.take(g.leaseID, from: peer)
        var actions: [CoordinatorAction] = [send(peer, .ack(Ack(sequence: message.sequence)))]
        switch mode {
        case .sync:
            guard receivedGradients[k] == nil else { peers.reject("\(ErrorCode.duplicate)"); resultsRefused["\(ErrorCode.duplicate)", default: 0] += 1; return actions }
            trainLosses[k] = g.trainLoss
            if config.external != nil {
                // docs/protocol.md §12: the worker sent ∂L_pred/∂w; L_train adds the penalty.
                trainLosses[k] += payloads.addPenalty(gradW: &g.gradW, lambda: g.lambdas, task: (k, roundStep), state)
            }
            if weightForm {
                g.gradW.withUnsafeBufferPointer { gw in
                    g.lambdas.withUnsafeBufferPointer { l in
                        payloads.record(task: k, step: roundStep, lambda: l.baseAddress!, gradW: gw.baseAddress!, state)
                    }
                }
            }
            receivedGradients[k] = weightForm ? .weights(gradW: g.gradW, lambda: g.lambdas) : .phi(g.gradPhi)
            gradientsApplied += 1
            actions += completeRoundIfReady(now: now)
        case .async:
            let staleness = state.phiVersion - lease.task.phiVersion
            guard staleness <= maxStaleness else {
                return refuse(.stale, "computed from φ version \(lease.task.phiVersion), now \(state.phiVersion) (max staleness \(maxStaleness))")
            }
            let plan = StepPlan(step: state.step, config: config)
            guard plan.trainTasks > 0 else { return refuse(.stale, "no φ steps in this phase") }
            var trainLoss = g.trainLoss
            if weightForm {
                // An external model's reply: penalty and backward pass with the φ and λ̂ of its task.
                guard let at = payloads.kept(phiVersion: lease.task.phiVersion, lambdaVersion: lease.task.lambdaVersion) else {
                    return refuse(.stale, "computed from φ version \(lease.task.phiVersion), no longer kept")
                }
                trainLoss += payloads.addPenalty(gradW: &g.gradW, lambda: g.lambdas, state, phi: at.phi, lambdaHat: at.lambdaHat)
                g.gradW.withUnsafeBufferPointer { gw in
                    g.lambdas.withUnsafeBufferPointer { l in
                        state.beginStep()
                        state.accumulateTaskGradient { sum in
                            payloads.expander.accumulate(phi: at.phi, lambdaHat: at.lambdaHat, lambda: l.baseAddress!, gradW: gw.baseAddress!, into: sum)
                        }
                        state.applyPhiStep()
                    }
                }
                payloads.pruneVersions(state, maxStaleness: maxStaleness)
            } else {
                g.gradPhi.withUnsafeBufferPointer { gp in
                    state.beginStep()
                    state.addTaskGradient(gp.baseAddress!)
                    state.applyPhiStep()
                }
            }
            gradientsApplied += 1
            state.endStep()
            actions.append(.event(StepReport(step: state.step, lambdaHat: state.lambdaHat.array, trainLoss: trainLoss,
                                             validBatchLoss: nil, evaluation: nil)))
        }
        return actions
    }

    /// `true` when the first `count` elements of `a` and `b` have the same bits (a check of
    /// up to D values per result: a byte comparison, not an element-wise generic one).
    static func sameBits(_ a: [Float], _ b: [Float], count: Int) -> Bool {
        guard a.count >= count, b.count >= count else { return false }
        if count == 0 { return true }
        return a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in memcmp(pa.baseAddress!, pb.baseAddress!, count * 4) == 0 } }
    }

    func acceptHypergradient(peer: [UInt8], message: Message, _ g: Hypergradient, now: Double) -> [CoordinatorAction] {
        let who = peers[peer]?.workerID ?? "?"
        func refuse(_ code: ErrorCode, _ why: String) -> [CoordinatorAction] {
            resultsRefused["\(code)", default: 0] += 1
            return [.log("rejected hypergradient from \(who) (step \(g.step), \(g.gradLambda.count) floats): \(why)"),
             peers.refuse(peer, code, why, inReplyTo: message.sequence)]
        }
        guard let lease = leases.lease(g.leaseID, heldBy: peer), lease.task.kind == .valid, lease.task.step == g.step else {
            return refuse(.stale, "no open validation lease \(g.leaseID) for step \(g.step)")
        }
        /// A refused result closes its lease; in sync mode the validation task is handed out again.
        func refuseResult(_ code: ErrorCode, _ why: String) -> [CoordinatorAction] {
            _ = leases.take(g.leaseID, from: peer)
            if mode == .sync && validLoss == nil { validUnassigned = true }
            return refuse(code, why)
        }
        guard message.phiVersion == lease.task.phiVersion, message.lambdaVersion == lease.task.lambdaVersion else {
            return refuseResult(.unexpected, "echoed versions (φ \(message.phiVersion), λ̂ \(message.lambdaVersion)) are not the task's (φ \(lease.task.phiVersion), λ̂ \(lease.task.lambdaVersion))")
        }
        let weightForm = !g.gradW.isEmpty
        if weightForm {
            // The answer to a weight task: sync while w's φ and λ̂ are current, or an external
            // model's async task (its φ and λ̂ are kept).
            guard g.gradLambda.isEmpty, mode == .sync
                    ? lease.task.phiVersion == roundVersions.phi && lease.task.lambdaVersion == roundVersions.lambda
                    : config.external != nil else {
                return refuseResult(.badTensor, "grad_w sent for a validation task that did not carry w (send grad_lambda)")
            }
            guard g.gradW.count == payloads.weightCount else {
                return refuseResult(.badTensor, "grad_w has \(g.gradW.count) values, expected \(payloads.weightCount)")
            }
        } else {
            guard g.gradLambda.count == h else { return refuseResult(.badTensor, "grad_lambda has \(g.gradLambda.count) values, expected \(h)") }
        }
        guard g.gradLambda.allFinite, g.gradW.allFinite, g.validLoss.isFinite else {
            _ = leases.take(g.leaseID, from: peer)
            var after: [CoordinatorAction] = []
            if mode == .sync { validUnassigned = true; failuresThisStep += 1; after = checkFailures() }
            return refuse(.nonFinite, "non-finite hypergradient or loss") + after
        }
        _ = leases.take(g.leaseID, from: peer)
        var actions: [CoordinatorAction] = [send(peer, .ack(Ack(sequence: message.sequence)))]
        switch mode {
        case .sync:
            guard validLoss == nil else { peers.reject("\(ErrorCode.duplicate)"); resultsRefused["\(ErrorCode.duplicate)", default: 0] += 1; return actions }
            if isFinalValidation {
                // The loss at the final φ(λ̂) is all that is wanted; λ̂ does not move again.
                finalValidLoss = g.validLoss
                validLoss = g.validLoss
                return actions
            }
            if weightForm {
                g.gradW.withUnsafeBufferPointer { gw in
                    payloads.hypergradient(gradW: gw.baseAddress!, into: hypergradient.pointer, state)
                }
            } else {
                hypergradient.load(g.gradLambda)
            }
            validLoss = g.validLoss
            hypergradientsApplied += 1
            actions += completeRoundIfReady(now: now)
        case .async:
            // A hypergradient is stale when λ̂ has moved on since its task (another validator's
            // step), not when φ has: a validation pass takes longer than a training task, so
            // counted in φ versions most hypergradients would be refused and λ̂ would barely move.
            let staleness = state.lambdaVersion - lease.task.lambdaVersion
            guard staleness <= maxStaleness else {
                return refuse(.stale, "computed from λ̂ version \(lease.task.lambdaVersion), now \(state.lambdaVersion)")
            }
            if weightForm {
                guard let at = payloads.kept(phiVersion: lease.task.phiVersion, lambdaVersion: lease.task.lambdaVersion) else {
                    return refuse(.stale, "computed from λ̂ version \(lease.task.lambdaVersion), no longer kept")
                }
                g.gradW.withUnsafeBufferPointer { gw in
                    payloads.expander.hypergradient(phi: at.phi, lambdaHat: at.lambdaHat, gradW: gw.baseAddress!, into: hypergradient.pointer)
                }
                payloads.pruneVersions(state, maxStaleness: maxStaleness)
            } else {
                hypergradient.load(g.gradLambda)
            }
            state.applyLambdaStep(hypergradient.constPointer)
            hypergradientsApplied += 1
            let plan = StepPlan(step: state.step, config: config)
            if plan.trainTasks == 0 {
                // Phase 2 of the global algorithm: λ̂ steps are the steps.
                state.endStep()
                actions.append(.event(StepReport(step: state.step, lambdaHat: state.lambdaHat.array, trainLoss: nil,
                                                 validBatchLoss: g.validLoss, evaluation: nil)))
            } else {
                validLoss = g.validLoss
            }
        }
        return actions
    }

    func completeRoundIfReady(now: Double) -> [CoordinatorAction] {
        // Without a validator (after the last one was lost) the step goes on without λ̂'s step.
        let validating = plan.validate && (validLoss != nil || !validatorSeen || validatorsAlive)
        guard mode == .sync, !isFinished, !isFinalValidation, receivedGradients.count == plan.trainTasks, plan.trainTasks > 0 || validating,
              !validating || validLoss != nil else { return [] }
        // Exactly LocalRun.step's order of operations: the task gradients summed in task order
        // from zero, then the φ step, then the λ̂ step. What needs the task parameters is done
        // first: pipelined, they are then replaced by the current φ and λ̂ (what the next
        // step's tasks are made from) before the update.
        let started = Self.clock()
        let tasks = plan.trainTasks, stepValidLoss = validLoss
        let train: Double? = tasks > 0 ? trainLosses.reduce(0, +) / Double(tasks) : nil
        let sum = tasks > 0 ? prepareGradientSum(tasks: tasks) : nil
        state.publishTaskParameters()
        var actions: [CoordinatorAction] = []
        // Pipelined: the next step's tasks go out now, and the update below overlaps them.
        let overlap = state.pipelined && roundStep + 1 < UInt64(config.steps)
        if overlap {
            serialTime.update += Self.clock() - started
            startRound(step: roundStep + 1)
            actions += timedDispatch(now: now)
        }
        let updateStarted = overlap ? Self.clock() : started
        defer {
            serialTime.update += Self.clock() - updateStarted
            serialTime.updates += 1
        }
        let phiFinite = sum.map { applyPhiStep(tasks: tasks, $0) } ?? true
        if validating { state.applyLambdaStep(hypergradient.constPointer) }
        // φ's finiteness was checked as the update wrote it; without a φ step, check φ here.
        let finite = tasks > 0 ? phiFinite && state.lambdaHat.allFinite : state.parametersAreFinite
        if divergenceGuard == nil && !finite {
            fatalError = "step \(state.step): φ or λ̂ overflowed after the update (step size too large); the last checkpoint holds the last good state"
            return actions
        }
        state.endStep()
        guard let verdict = watch(validBatchLoss: validating ? stepValidLoss : nil, finite: finite) else { return actions + [.log(fatalError!)] }
        let rolledBack = !verdict.isEmpty || !finite
        let report = StepReport(step: state.step, lambdaHat: state.lambdaHat.array, trainLoss: rolledBack ? nil : train,
                                validBatchLoss: rolledBack || !validating ? nil : stepValidLoss, evaluation: nil)
        // (Pipelined, a roll-back leaves the next step's tasks as they went out: `LocalRun` too
        // makes them from the parameters published before the update.)
        if !overlap { startRound() }
        let takesWeights = { (role: Role) in self.peers.peers.values.contains { $0.role == role && $0.slot.weightTasks } }
        if overlap && state.step + 1 < UInt64(config.steps) && (takesWeights(.trainer) || takesWeights(.validator)) {
            // The step after the one now out is made from the parameters just computed: make
            // its weight tasks while the peers compute.
            let prepareStarted = Self.clock()
            let next = StepPlan(step: state.step + 1, config: config)
            payloads.prepare(step: state.step + 1, trainTasks: takesWeights(.trainer) ? next.trainTasks : 0,
                             validate: takesWeights(.validator) && next.validate, state)
            // Counted as dispatch (making tasks), not as the update the deferred clock counts.
            let preparing = Self.clock() - prepareStarted
            serialTime.dispatch += preparing
            serialTime.update -= preparing
        }
        return actions + verdict + [.event(report)]
    }

    /// Sync mode with the divergence guard: a step whose results stay non-finite ends as
    /// `LocalRun` ends it (the step counts, the guard rolls the state back) and the next round
    /// starts.
    private func abandonRound() -> [CoordinatorAction] {
        state.endStep()
        guard let verdict = watch(validBatchLoss: nil, finite: false) else { return [.log(fatalError!)] }
        // Pipelined: the next step's tasks are made from the parameters the guard left.
        state.publishTaskParameters()
        let report = StepReport(step: state.step, lambdaHat: state.lambdaHat.array, trainLoss: nil, validBatchLoss: nil, evaluation: nil)
        startRound()
        return verdict + [.event(report)]
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

    /// How a step's φ-gradient sum reaches Adam (`prepareGradientSum`).
    enum GradientSum {
        /// Streamed chunk by chunk from the recorded factors.
        case recorded
        /// Written into the state's sum.
        case stored
    }

    /// Readies the sum of the step's task gradients while the task parameters are still the
    /// ones the tasks were made from: a ∂L/∂w reply not recorded as factors is expanded here.
    private func prepareGradientSum(tasks: Int) -> GradientSum {
        let expander = payloads.expander
        let recorded = receivedGradients.values.allSatisfy { if case .weights = $0 { true } else { false } }
        if recorded && expander.recordedSumIsCertainlyFinite(tasks: tasks) { return .recorded }
        if recorded {
            // Not proven finite from the factors: write the sum (Adam's finiteness report then
            // catches an overflow, as for any sum).
            state.setGradientSum(tasks: tasks) { expander.writeRecordedSum(tasks: tasks, into: $0) }
        } else {
            state.beginStep()
            for k in 0..<tasks { add(receivedGradients[k]!) }
        }
        return .stored
    }

    /// The φ step on the mean of the step's task gradients; `true` when φ is finite after it.
    private func applyPhiStep(tasks: Int, _ sum: GradientSum) -> Bool {
        switch sum {
        case .recorded:
            let expander = payloads.expander
            return state.applyPhiStep(tasks: tasks) { expander.forEachRecordedSumChunk(tasks: tasks, $0) }
        case .stored:
            return state.applyPhiStep()
        }
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
                        payloads.expander.accumulate(phi: state.taskPhi.constPointer, lambdaHat: state.taskLambdaHat.constPointer,
                                                     lambda: l.baseAddress!, gradW: gw.baseAddress!, into: sum)
                    }
                }
            }
        }
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
}
