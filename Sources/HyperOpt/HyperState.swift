import Linalg
import Models

/// What the parameter server holds: φ, λ̂, both optimizers, the step and version counters.
///
/// Both the single-process run and the coordinator update it through the same methods, in
/// the same order, which is what makes sync mode bit-identical to one process:
/// `beginStep()`, `addTaskGradient` for tasks 0, 1, … in task order, then `applyPhiStep()`
/// and/or `applyLambdaStep(_:)`, then `endStep()`.
public final class HyperState {
    /// Hypernetwork parameters. (Pipelined, the buffer changes at updates: read it through
    /// the state each time.)
    public private(set) var phi: AlignedBuffer<Float>
    /// Current hyperparameters (the buffer may change as `phi`'s).
    public private(set) var lambdaHat: AlignedBuffer<Float>
    /// φ optimizer state.
    public let phiOptimizer: Optimizer<Float>
    /// λ̂ optimizer state.
    public let lambdaOptimizer: Optimizer<Float>
    /// Steps completed.
    public private(set) var step: UInt64 = 0
    /// Number of φ updates applied.
    public private(set) var phiVersion: UInt64 = 0
    /// Number of λ̂ updates applied.
    public private(set) var lambdaVersion: UInt64 = 0

    /// Times the divergence guard rolled the run back; each halves both step sizes.
    public private(set) var rollbacks = 0

    /// The pipelined schedule (`ExperimentConfig.pipelined`): a step's tasks are made from the
    /// parameters before the previous step's update, so a cluster hands out step t + 1's tasks
    /// while it applies step t's update (docs/protocol.md §5).
    public let pipelined: Bool
    /// φ the current step's tasks are made from: pipelined, the φ before the previous step's
    /// update (`publishTaskParameters()` sets it); otherwise `phi` itself.
    public var taskPhi: AlignedBuffer<Float> { phiPublishPending ? phi : publishedPhi }
    /// λ̂ the current step's tasks are made from (see `taskPhi`).
    public var taskLambdaHat: AlignedBuffer<Float> { lambdaPublishPending ? lambdaHat : publishedLambdaHat }
    // Pipelined, the published parameters live in a second pair of buffers. Publishing does not
    // copy: it marks the current values published (the `task…` accessors then return the
    // current buffers), and the next update writes the new values into the other buffer
    // (`Optimizer.step(source:)`, the same operations as in place) and swaps the two. Anything
    // else that would change a published current value copies it over first (`settle`).
    private var publishedPhi: AlignedBuffer<Float>
    private var publishedLambdaHat: AlignedBuffer<Float>
    private var phiPublishPending = false
    private var lambdaPublishPending = false
    private var publishedVersions: (phi: UInt64, lambda: UInt64) = (0, 0)
    /// The φ version of `taskPhi`.
    public var taskPhiVersion: UInt64 { pipelined ? publishedVersions.phi : phiVersion }
    /// The λ̂ version of `taskLambdaHat`.
    public var taskLambdaVersion: UInt64 { pipelined ? publishedVersions.lambda : lambdaVersion }

    private let gradSum: AlignedBuffer<Float>
    private var summed = 0
    private let schedule: LearningRateSchedule?
    private let totalSteps: Int

    /// Fresh state at the run's initial φ and λ̂ (pipelined, the first step's tasks are made
    /// from them too).
    public init(config: ExperimentConfig, phi: [Float], lambdaHat: [Float]) {
        schedule = config.learningRateSchedule
        totalSteps = config.steps
        self.phi = AlignedBuffer(phi)
        self.lambdaHat = AlignedBuffer(lambdaHat)
        pipelined = config.pipelined ?? false
        publishedPhi = pipelined ? AlignedBuffer(phi) : self.phi
        publishedLambdaHat = pipelined ? AlignedBuffer(lambdaHat) : self.lambdaHat
        phiOptimizer = Optimizer(kind: config.phiOptimizer, count: phi.count, learningRate: config.phiLearningRate)
        lambdaOptimizer = Optimizer(kind: config.lambdaOptimizer, count: lambdaHat.count, learningRate: config.lambdaLearningRate)
        gradSum = AlignedBuffer(count: phi.count)
    }

    /// Starts accumulating a step's φ-gradients. (The sum is not cleared here: the first
    /// gradient is written as `0 + g`, the bits of adding it to zeros, without a pass over a
    /// zeroed φ-sized buffer.)
    public func beginStep() {
        summed = 0
    }

    /// Adds one task's `∂L/∂φ` (call in task order).
    public func addTaskGradient(_ g: UnsafePointer<Float>) {
        let s = gradSum.pointer
        if summed == 0 {
            FloatKernels.setSum(g, into: s, count: gradSum.count)
        } else {
            FloatKernels.add(g, into: s, count: gradSum.count)
        }
        summed += 1
    }

    /// Lets `body` add one task's gradient directly into the running sum (it must add exactly
    /// what `addTaskGradient` would: see `Hypernet.backward(accumulate:)`); call in task order.
    public func accumulateTaskGradient<R>(_ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        if summed == 0 { gradSum.zero() }
        defer { summed += 1 }
        return try body(gradSum.pointer)
    }

    /// Lets `body` write the sum of `tasks` task gradients at once (it must write exactly what
    /// adding them in task order would: see `Hypernet.writeGradientSum`); replaces any sum.
    public func setGradientSum(tasks: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) {
        precondition(tasks > 0, "setGradientSum: \(tasks) tasks")
        body(gradSum.pointer)
        summed = tasks
    }

    /// `true` when the running gradient sum is finite.
    public var gradientSumIsFinite: Bool { summed == 0 || gradSum.allFinite }

    /// Number of task gradients added since `beginStep()`.
    public var pendingGradients: Int { summed }

    /// φ step on the mean of the added task gradients; returns `true` when φ is finite after it.
    @discardableResult
    public func applyPhiStep() -> Bool {
        precondition(summed > 0, "applyPhiStep without gradients")
        phiOptimizer.learningRateScale = stepSizeFactor
        let (target, source) = phiUpdateTarget()
        let finite = phiOptimizer.step(params: target.pointer, grad: gradSum.constPointer, count: phi.count, gradScale: 1 / Float(summed),
                                       source: source)
        finishPhiUpdate(target)
        phiVersion += 1
        return finite
    }

    /// φ step on the mean of `tasks` task gradients whose sum `chunks` hands over in pieces:
    /// `chunks` must call its argument with `(offset, count, values)` covering φ exactly once,
    /// `values` holding the sum's elements (as `Hypernet.forEachGradientSumChunk` does). Gives
    /// the bits of `applyPhiStep()` on the same sum without storing it; the added-gradient sum
    /// is left untouched. Returns `true` when φ is finite after the step.
    @discardableResult
    public func applyPhiStep(tasks: Int, chunks: ((_ offset: Int, _ count: Int, _ values: UnsafePointer<Float>) -> Void) -> Void) -> Bool {
        precondition(tasks > 0, "applyPhiStep without gradients")
        phiOptimizer.learningRateScale = stepSizeFactor
        let update = phiOptimizer.beginUpdate(gradScale: 1 / Float(tasks))
        let (target, source) = phiUpdateTarget()
        var finite = true
        var covered = 0
        chunks { offset, count, values in
            precondition(offset == covered, "applyPhiStep: chunk at \(offset), expected \(covered)")
            if !phiOptimizer.apply(update, params: target.pointer, grad: values, offset: offset, count: count, source: source) { finite = false }
            covered += count
        }
        precondition(covered == phi.count, "applyPhiStep: chunks covered \(covered) of \(phi.count)")
        finishPhiUpdate(target)
        phiVersion += 1
        return finite
    }

    /// λ̂ step on `∂L_valid/∂λ̂`.
    public func applyLambdaStep(_ g: UnsafePointer<Float>) {
        lambdaOptimizer.learningRateScale = stepSizeFactor
        if lambdaPublishPending {
            // Out of place into the other buffer; the current values stay as the published ones.
            let target = publishedLambdaHat
            lambdaOptimizer.step(params: target.pointer, grad: g, count: lambdaHat.count, source: lambdaHat.constPointer)
            (publishedLambdaHat, lambdaHat) = (lambdaHat, target)
            lambdaPublishPending = false
        } else {
            lambdaOptimizer.step(params: lambdaHat.pointer, grad: g, count: lambdaHat.count)
        }
        lambdaVersion += 1
    }

    /// Where a φ update writes: in place, or (published values pending) into the other buffer
    /// from the current one.
    private func phiUpdateTarget() -> (target: AlignedBuffer<Float>, source: UnsafePointer<Float>?) {
        phiPublishPending ? (publishedPhi, phi.constPointer) : (phi, nil)
    }

    /// After a φ update into `target`: an out-of-place one swaps the buffers.
    private func finishPhiUpdate(_ target: AlignedBuffer<Float>) {
        guard target !== phi else { return }
        (publishedPhi, phi) = (phi, target)
        phiPublishPending = false
    }

    /// Copies published values still held by the current buffers into the published ones, before
    /// something other than an update changes the current values.
    private func settle() {
        if phiPublishPending { publishedPhi.load(phi); phiPublishPending = false }
        if lambdaPublishPending { publishedLambdaHat.load(lambdaHat); lambdaPublishPending = false }
    }

    /// Marks the step done.
    public func endStep() { step += 1 }

    /// Pipelined: the current φ and λ̂ (and their versions) become the ones the next step's
    /// tasks are made from. Called once per step — before its update when the step's results
    /// were all in (the coordinator hands the next tasks out before updating), after the
    /// divergence guard when the step was abandoned — identically by the single-process run
    /// and the coordinator. Without pipelining there is nothing to do.
    public func publishTaskParameters() {
        guard pipelined else { return }
        phiPublishPending = true
        lambdaPublishPending = true
        publishedVersions = (phiVersion, lambdaVersion)
    }

    /// What multiplies both configured step sizes at the current step: the schedule's factor
    /// times ½ per roll-back of the divergence guard (exactly 1 without either).
    public var stepSizeFactor: Double {
        let scheduled = schedule?.factor(step: step, total: totalSteps) ?? 1
        return rollbacks == 0 ? scheduled : scheduled * Double(sign: .plus, exponent: -rollbacks, significand: 1)
    }

    /// The divergence guard's roll-back: φ, λ̂ and both optimizers' state return to `s`, the
    /// step count stays (the run goes on with new minibatches), both versions advance (so a
    /// cluster's workers fetch the restored φ), and the step sizes are halved from now on.
    public func rollBack(to s: Snapshot) {
        precondition(problems(restoring: s).isEmpty, "HyperState.rollBack: \(problems(restoring: s))")
        settle()
        phi.load(s.phi)
        lambdaHat.load(s.lambdaHat)
        phiOptimizer.restore(stepCount: s.phiOptimizerSteps, m: s.phiM, v: s.phiV)
        lambdaOptimizer.restore(stepCount: s.lambdaOptimizerSteps, m: s.lambdaM, v: s.lambdaV)
        phiVersion += 1
        lambdaVersion += 1
        rollbacks += 1
    }

    /// Sets the roll-back count (a resumed run's, from its checkpoint).
    public func restoreRollbacks(_ n: Int) {
        precondition(n >= 0, "restoreRollbacks: \(n)")
        rollbacks = n
    }

    /// `true` when φ and λ̂ are finite (checked after updates: a finite gradient with a huge
    /// step size can still overflow).
    public var parametersAreFinite: Bool { phi.allFinite && lambdaHat.allFinite }

    /// A pipelined run's task parameters (`taskPhi`, `taskLambdaHat` and their versions).
    public struct TaskParameters: Sendable, Equatable {
        public var phi: [Float]
        public var lambdaHat: [Float]
        public var phiVersion: UInt64
        public var lambdaVersion: UInt64

        /// Task parameters holding exactly these values.
        public init(phi: [Float], lambdaHat: [Float], phiVersion: UInt64, lambdaVersion: UInt64) {
            self.phi = phi; self.lambdaHat = lambdaHat; self.phiVersion = phiVersion; self.lambdaVersion = lambdaVersion
        }
    }

    /// Everything needed to continue exactly (checkpoint contents).
    public struct Snapshot: Sendable, Equatable {
        public var step: UInt64
        public var phiVersion: UInt64
        public var lambdaVersion: UInt64
        public var phi: [Float]
        public var lambdaHat: [Float]
        public var phiOptimizerSteps: Int
        public var phiM: [Float]
        public var phiV: [Float]
        public var lambdaOptimizerSteps: Int
        public var lambdaM: [Float]
        public var lambdaV: [Float]
        /// A pipelined run's task parameters (nil otherwise; a roll-back leaves them alone).
        public var taskParameters: TaskParameters?

        /// A snapshot holding exactly these values (a checkpoint read back, or a test's state).
        public init(step: UInt64, phiVersion: UInt64, lambdaVersion: UInt64, phi: [Float], lambdaHat: [Float],
                    phiOptimizerSteps: Int, phiM: [Float], phiV: [Float],
                    lambdaOptimizerSteps: Int, lambdaM: [Float], lambdaV: [Float], taskParameters: TaskParameters? = nil) {
            self.step = step; self.phiVersion = phiVersion; self.lambdaVersion = lambdaVersion
            self.phi = phi; self.lambdaHat = lambdaHat
            self.phiOptimizerSteps = phiOptimizerSteps; self.phiM = phiM; self.phiV = phiV
            self.lambdaOptimizerSteps = lambdaOptimizerSteps; self.lambdaM = lambdaM; self.lambdaV = lambdaV
            self.taskParameters = taskParameters
        }
    }

    /// The current state as plain arrays (with the task parameters of a pipelined run, unless
    /// `includingTaskParameters` is false: a roll-back point does not need them).
    public func snapshot(includingTaskParameters: Bool = true) -> Snapshot {
        Snapshot(step: step, phiVersion: phiVersion, lambdaVersion: lambdaVersion,
                 phi: phi.array, lambdaHat: lambdaHat.array,
                 phiOptimizerSteps: phiOptimizer.stepCount, phiM: phiOptimizer.m.array, phiV: phiOptimizer.v.array,
                 lambdaOptimizerSteps: lambdaOptimizer.stepCount, lambdaM: lambdaOptimizer.m.array, lambdaV: lambdaOptimizer.v.array,
                 taskParameters: pipelined && includingTaskParameters
                    ? TaskParameters(phi: taskPhi.array, lambdaHat: taskLambdaHat.array,
                                     phiVersion: publishedVersions.phi, lambdaVersion: publishedVersions.lambda)
                    : nil)
    }

    /// Problems that make `s` unusable for this state's sizes; empty when it fits.
    public func problems(restoring s: Snapshot) -> [String] {
        var p: [String] = []
        if s.phi.count != phi.count { p.append("phi has \(s.phi.count) values, expected \(phi.count)") }
        if s.lambdaHat.count != lambdaHat.count { p.append("lambda_hat has \(s.lambdaHat.count) values, expected \(lambdaHat.count)") }
        if s.phiM.count != phiOptimizer.m.count || s.phiV.count != phiOptimizer.v.count { p.append("phi optimizer state has the wrong size") }
        if s.lambdaM.count != lambdaOptimizer.m.count || s.lambdaV.count != lambdaOptimizer.v.count { p.append("lambda optimizer state has the wrong size") }
        if !(s.phi.allFinite && s.lambdaHat.allFinite) { p.append("non-finite parameters") }
        if !(s.phiM.allFinite && s.phiV.allFinite && s.lambdaM.allFinite && s.lambdaV.allFinite) { p.append("non-finite optimizer moments") }
        if s.phiV.contains(where: { $0 < 0 }) || s.lambdaV.contains(where: { $0 < 0 }) { p.append("negative second moments") }
        if s.phiOptimizerSteps < 0 || s.lambdaOptimizerSteps < 0 { p.append("negative optimizer step counts") }
        return p
    }

    /// Problems that make `s` unusable to continue this run exactly: `problems(restoring:)`, and
    /// for a pipelined run its task parameters (which a roll-back point need not have).
    public func problems(resuming s: Snapshot) -> [String] {
        var p = problems(restoring: s)
        switch (pipelined, s.taskParameters) {
        case (true, nil): p.append("the run is pipelined but the state has no task parameters (task_phi, task_lambda_hat)")
        case (false, _?): p.append("the state has task parameters but the run is not pipelined")
        case (true, let t?):
            if t.phi.count != phi.count { p.append("task_phi has \(t.phi.count) values, expected \(phi.count)") }
            if t.lambdaHat.count != lambdaHat.count { p.append("task_lambda_hat has \(t.lambdaHat.count) values, expected \(lambdaHat.count)") }
            if !(t.phi.allFinite && t.lambdaHat.allFinite) { p.append("non-finite task parameters") }
        case (false, nil): break
        }
        return p
    }

    /// Restores a snapshot (a checkpoint's, to resume); call `problems(resuming:)` first.
    public func restore(_ s: Snapshot) {
        precondition(problems(resuming: s).isEmpty, "HyperState.restore: \(problems(resuming: s))")
        step = s.step
        phiVersion = s.phiVersion
        lambdaVersion = s.lambdaVersion
        phi.load(s.phi)
        lambdaHat.load(s.lambdaHat)
        phiOptimizer.restore(stepCount: s.phiOptimizerSteps, m: s.phiM, v: s.phiV)
        lambdaOptimizer.restore(stepCount: s.lambdaOptimizerSteps, m: s.lambdaM, v: s.lambdaV)
        if let t = s.taskParameters {
            phiPublishPending = false
            lambdaPublishPending = false
            publishedPhi.load(t.phi)
            publishedLambdaHat.load(t.lambdaHat)
            publishedVersions = (t.phiVersion, t.lambdaVersion)
        }
    }
}
