import Linalg
import Models

/// What a run reports after a step.
public struct StepReport: Sendable {
    /// Steps completed.
    public let step: UInt64
    /// λ̂ after the step.
    public let lambdaHat: [Float]
    /// Mean `L_train` over the step's tasks (nil without a φ step).
    public let trainLoss: Double?
    /// `L_valid` on the step's validation batch (nil without a λ̂ step).
    public let validBatchLoss: Double?
    /// Full-split evaluation, at `evalEvery` and at the end.
    public let evaluation: Evaluation?

    /// A report of step `step` (the evaluation only at `evalEvery` and at the end).
    public init(step: UInt64, lambdaHat: [Float], trainLoss: Double?, validBatchLoss: Double?, evaluation: Evaluation?) {
        self.step = step
        self.lambdaHat = lambdaHat
        self.trainLoss = trainLoss
        self.validBatchLoss = validBatchLoss
        self.evaluation = evaluation
    }
}

/// A failure during hyper-training.
public enum HyperTrainingError: Error, Sendable, CustomStringConvertible {
    /// A gradient or loss was NaN/Inf.
    case nonFinite(step: UInt64, what: String)
    /// The divergence guard rolled back as often as it may and the run still diverges.
    case diverged(String)

    public var description: String {
        switch self {
        case .nonFinite(let step, let what):
            "non-finite \(what) at step \(step): the run diverged (lower the step sizes or check λ̂'s range); state before the step is kept"
        case .diverged(let why):
            "the run diverged: \(why)"
        }
    }
}

/// Algorithms 2–4 in one process: the reference the cluster must agree with bit for bit.
public final class LocalRun {
    /// The trainer (compute).
    public let trainer: HyperTrainer
    /// The state (φ, λ̂, optimizers).
    public let state: HyperState
    private let lambdaGrad: AlignedBuffer<Float>
    /// The divergence guard (when the configuration asks for one).
    public private(set) var divergenceGuard: DivergenceGuard?
    /// Where the guard's roll-backs are reported.
    public var log: (String) -> Void = { _ in }

    /// A fresh run at the configuration's initial φ and λ̂.
    public init(config: ExperimentConfig, data: ExperimentData) {
        trainer = HyperTrainer(config: config, data: data)
        state = HyperState(config: config, phi: trainer.initialPhi(), lambdaHat: trainer.initialLambdaHat())
        lambdaGrad = AlignedBuffer(count: trainer.hyperparameterCount)
        divergenceGuard = config.divergenceGuard.map { DivergenceGuard(settings: $0, state: state) }
    }

    /// Runs one step; returns the mean train loss and the validation batch loss. With the
    /// divergence guard, a step that diverges (or yields a non-finite value) rolls the state
    /// back instead of failing, and returns no losses.
    public func step() throws(HyperTrainingError) -> (train: Double?, valid: Double?) {
        guard let watcher = divergenceGuard else { return try unguardedStep() }
        var result: (train: Double?, valid: Double?) = (nil, nil)
        var finite = true
        published = false
        do {
            result = try unguardedStep()
        } catch {
            // The step stopped before its end: count it, so the run goes on with new samples.
            state.endStep()
            finite = false
        }
        let verdict = watcher.observe(state: state, validBatchLoss: result.valid, finite: finite)
        // Pipelined, a step abandoned before its tasks' results were all in publishes the
        // parameters the guard left (the coordinator does the same in `abandonRound`).
        if !published { state.publishTaskParameters() }
        switch verdict {
        case .fine: return result
        case .rolledBack(let why): log(why); return (nil, nil)
        case .gaveUp(let why): throw .diverged(why)
        }
    }

    /// Whether this step has published its parameters for the next step's tasks (pipelined).
    private var published = false

    private func unguardedStep() throws(HyperTrainingError) -> (train: Double?, valid: Double?) {
        let t = state.step
        let plan = StepPlan(step: t, config: trainer.config)
        var trainLoss: Double? = nil
        var validLoss: Double? = nil
        // The tasks are made from the task parameters: the current φ and λ̂, or pipelined the
        // ones before the previous step's update (`HyperState.taskPhi`).
        let phi = state.taskPhi.constPointer, lambdaHat = state.taskLambdaHat.constPointer
        // Each task's φ-gradient is kept as its factors; the φ step rebuilds their sum piece by
        // piece (the bits of adding the written gradients in task order, which is what the
        // coordinator does) instead of accumulating it in a φ-sized buffer.
        var sumIsStored = false
        if plan.trainTasks > 0 {
            state.beginStep()
            var total = 0.0
            for k in 0..<plan.trainTasks {
                let loss = trainer.trainTaskRecordingFactors(phi: phi, lambdaHat: lambdaHat, step: t, task: k)
                guard loss.isFinite else { throw .nonFinite(step: t, what: "training loss (task \(k))") }
                total += loss
            }
            trainLoss = total / Double(plan.trainTasks)
        }
        if plan.validate {
            let v = trainer.validTask(phi: phi, lambdaHat: lambdaHat, step: t, gradLambda: lambdaGrad.pointer)
            guard v.isFinite, lambdaGrad.allFinite else { throw .nonFinite(step: t, what: "hypergradient") }
            validLoss = v
        }
        // Every result is in and finite: where a pipelined coordinator hands out the next step's
        // tasks, made from the parameters as they are now, before it updates them.
        state.publishTaskParameters()
        published = true
        if plan.trainTasks > 0 && !trainer.phiGradientSumIsCertainlyFinite(tasks: plan.trainTasks) {
            // Not proven finite from the factors: write the sum and check every element.
            state.setGradientSum(tasks: plan.trainTasks) { trainer.writePhiGradientSum(tasks: plan.trainTasks, into: $0) }
            sumIsStored = true
            guard state.gradientSumIsFinite else { throw .nonFinite(step: t, what: "training gradient") }
        }
        var phiFinite = true
        if plan.trainTasks > 0 {
            if sumIsStored {
                phiFinite = state.applyPhiStep()
            } else {
                phiFinite = state.applyPhiStep(tasks: plan.trainTasks) { trainer.forEachPhiGradientSumChunk(tasks: plan.trainTasks, $0) }
            }
        }
        if plan.validate { state.applyLambdaStep(lambdaGrad.constPointer) }
        // A finite gradient times a huge step can still overflow; the run cannot continue
        // from such a state (and checkpoints refuse to store it, so the last good one stays).
        // φ's check happened as the update wrote it; without a φ step, check φ here.
        let parametersFinite = plan.trainTasks > 0 ? phiFinite && state.lambdaHat.allFinite : state.parametersAreFinite
        guard parametersFinite else { throw .nonFinite(step: t, what: "parameters after the update") }
        state.endStep()
        return (trainLoss, validLoss)
    }

    /// Full-split evaluation at the current λ̂.
    public func evaluate() -> Evaluation {
        trainer.evaluate(phi: state.phi.constPointer, lambda: state.lambdaHat.constPointer)
    }

    /// Runs until `config.steps` steps are done (or `observer` returns false), reporting each step.
    public func run(observer: (StepReport) -> Bool = { _ in true }) throws(HyperTrainingError) -> Evaluation {
        let config = trainer.config
        while state.step < UInt64(config.steps) {
            let (train, valid) = try step()
            let s = state.step
            let evaluation = (config.evalEvery > 0 && s % UInt64(config.evalEvery) == 0) ? evaluate() : nil
            let report = StepReport(step: s, lambdaHat: state.lambdaHat.array, trainLoss: train,
                                    validBatchLoss: valid, evaluation: evaluation)
            if !observer(report) { break }
        }
        return evaluate()
    }
}
