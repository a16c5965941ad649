/// Watches a run for divergence and undoes it: when the smoothed validation batch loss rises
/// above `threshold` × its running minimum, or a loss, gradient or parameter is not finite,
/// the state goes back to the last good state it remembered and both step sizes are halved
/// (`HyperState.rollBack(to:)`). Pure logic over a `HyperState`: the single-process run and
/// the coordinator call it at the same point of a step, so sync mode stays bit-identical.
public final class DivergenceGuard {
    /// What happened at a step.
    public enum Verdict: Equatable, Sendable {
        /// Nothing to do.
        case fine
        /// The state was rolled back; the sentence says why and to where (for the log).
        case rolledBack(String)
        /// Too many roll-backs: the run cannot be saved by smaller steps.
        case gaveUp(String)
    }

    /// The settings.
    public let settings: DivergenceGuardSettings
    private var smoothed: Double?
    private var minimum = Double.infinity
    private var validationSteps = 0
    private var good: HyperState.Snapshot
    private var goodStep: UInt64
    private var goodSmoothed: Double?
    private var goodMinimum = Double.infinity

    /// Starts watching `state` (its current contents are the first good state).
    public init(settings: DivergenceGuardSettings, state: HyperState) {
        self.settings = settings
        good = state.snapshot(includingTaskParameters: false)
        goodStep = state.step
    }

    /// Call after each completed step (`HyperState.endStep()`), with the step's validation
    /// batch loss (nil without a λ̂ step) and whether everything computed was finite.
    public func observe(state: HyperState, validBatchLoss: Double?, finite: Bool) -> Verdict {
        let t = state.step
        if let v = validBatchLoss, finite, v.isFinite {
            validationSteps += 1
            let s = smoothed.map { $0 + settings.smoothing * (v - $0) } ?? v
            smoothed = s
            if validationSteps > settings.warmupSteps {
                if s > settings.threshold * minimum {
                    return rollBack(state, why: String(format: "smoothed validation batch loss %.5g > %.3g × its minimum %.5g", s, settings.threshold, minimum))
                }
                minimum = min(minimum, s)
            }
        } else if !finite || !(validBatchLoss?.isFinite ?? true) {
            return rollBack(state, why: "a non-finite loss, gradient or parameter")
        }
        let healthy = validationSteps <= settings.warmupSteps || (smoothed ?? .infinity) <= 1.25 * minimum
        if healthy && t % UInt64(settings.snapshotEvery) == 0 && t != goodStep {
            good = state.snapshot(includingTaskParameters: false)
            goodStep = t
            goodSmoothed = smoothed
            goodMinimum = minimum
        }
        return .fine
    }

    private func rollBack(_ state: HyperState, why: String) -> Verdict {
        let t = state.step
        guard state.rollbacks < settings.maxRollbacks else {
            return .gaveUp("step \(t): \(why), after \(state.rollbacks) roll-backs; the run diverges even at 1/\(1 << state.rollbacks) of its step sizes")
        }
        state.rollBack(to: good)
        smoothed = goodSmoothed
        minimum = goodMinimum
        return .rolledBack("divergence guard at step \(t): \(why); rolled back to the state of step \(goodStep) and halved the step sizes (now 1/\(1 << state.rollbacks) of the configured ones)")
    }
}
