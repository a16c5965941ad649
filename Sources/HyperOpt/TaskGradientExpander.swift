import Linalg
import Models

/// The hypernetwork's share of the tasks, for a coordinator that ships weights instead of φ:
/// turns a training task's `∂L/∂w` (what a trainer sends when the task allows it) into its
/// `∂L/∂φ`, added to a running sum — the same floating-point operations as the trainer's own
/// `HyperTrainer.trainTask(…, gradPhi:, accumulate: true)`, so the sum has the same bits — and
/// for the validation task computes `w = φ(λ̂)` and turns the validator's `∂L_valid/∂w` into
/// `∂L_valid/∂λ̂`, the bits of `HyperTrainer.validTask(phi:…)`.
///
/// For every hypernetwork kind one task's `∂L/∂φ` is a function of `λ`, `∂L/∂w` and φ itself
/// (its rank-one outer products), so shipping `∂L/∂w` (D values) instead of `∂L/∂φ` (`|φ|`,
/// e.g. 164,860 vs 7,850 for per-weight L2 with `factorized:10`) loses nothing, as long as the
/// receiver still holds the φ the task was computed from (sync mode). No data, no I/O; not
/// thread-safe (one instance per thread).
public final class TaskGradientExpander {
    /// `D`, the length of `∂L/∂w`.
    public let weightCount: Int
    /// `H`, the length of λ.
    public let hyperparameterCount: Int
    private let hypernet: Hypernet<Float>
    private let input: HypernetInputMap
    /// The step's recorded task gradients (`record`).
    private let factors: PhiGradientFactors

    /// - Parameter config: the run configuration.
    public init(config: ExperimentConfig) {
        let h = config.hyperparameterCount
        weightCount = config.weightCount
        hyperparameterCount = h
        hypernet = Hypernet(kind: config.hypernet, inputCount: h, outputCount: weightCount)
        input = HypernetInputMap(config: config, count: h)
        factors = PhiGradientFactors(for: hypernet, capacity: max(config.samplesPerStep, 1))
    }

    /// Records the `∂L/∂φ` of the step's task `slot` as its factors (slots in any order, φ
    /// and λ̂ unchanged until the step's sum is used): `forEachRecordedSumChunk` and
    /// `writeRecordedSum` then give the bits of `accumulate` for the tasks in order from zero,
    /// without a φ-sized sum (what `LocalRun` does with the trainer's own factors).
    /// `hidden`: the `hiddenState` of the `weights` call that made the task's w (at the same φ,
    /// λ̂ and λ), which spares the pass over the hypernetwork's first layer; nil: computed.
    public func record(
        phi: UnsafePointer<Float>, lambdaHat: UnsafePointer<Float>, lambda: UnsafePointer<Float>,
        gradW: UnsafePointer<Float>, slot: Int, hidden: [Float]? = nil
    ) {
        let x = input.map(lambda, center: lambdaHat)
        prepareBackward(phi: phi, x: x, hidden: hidden)
        hypernet.backward(phi: phi, lambda: x, gradW: gradW, recordingInto: factors, slot: slot)
    }

    /// `true` when the sum of recorded slots `0..<tasks` is certainly finite (false: not proven;
    /// write it with `writeRecordedSum` and check it).
    public func recordedSumIsCertainlyFinite(tasks: Int) -> Bool { factors.sumIsCertainlyFinite(tasks: tasks) }

    /// The sum of recorded slots `0..<tasks` in consecutive pieces (`HyperState.applyPhiStep(tasks:chunks:)`).
    public func forEachRecordedSumChunk(tasks: Int, _ body: (_ offset: Int, _ count: Int, _ values: UnsafePointer<Float>) -> Void) {
        hypernet.forEachGradientSumChunk(factors, tasks: tasks, body)
    }

    /// Writes the sum of recorded slots `0..<tasks` into `sum` (`|φ|` values).
    public func writeRecordedSum(tasks: Int, into sum: UnsafeMutablePointer<Float>) {
        hypernet.writeGradientSum(factors, tasks: tasks, into: sum)
    }

    /// Adds the task's `∂L/∂φ` to `sum` (`|φ|` values).
    /// - Parameters:
    ///   - phi: the φ the task was computed from.
    ///   - lambdaHat: the λ̂ the task was computed from (the centre of a centred input).
    ///   - lambda: the task's λ sample (`H` values).
    ///   - gradW: the task's `∂L/∂w` (`D` values).
    ///   - sum: the running gradient sum.
    public func accumulate(
        phi: UnsafePointer<Float>, lambdaHat: UnsafePointer<Float>, lambda: UnsafePointer<Float>,
        gradW: UnsafePointer<Float>, into sum: UnsafeMutablePointer<Float>
    ) {
        let x = input.map(lambda, center: lambdaHat)
        hypernet.prepareBackward(phi: phi, lambda: x)
        hypernet.backward(phi: phi, lambda: x, gradW: gradW, gradPhi: sum, gradLambda: nil, accumulate: true)
    }

    /// A training task's weights `w = φ(λ)` for its λ sample (`D` values into `w`): the bits of
    /// the trainer's own forward pass.
    public func weights(
        phi: UnsafePointer<Float>, lambdaHat: UnsafePointer<Float>, lambda: UnsafePointer<Float>,
        into w: UnsafeMutablePointer<Float>
    ) {
        hypernet.forward(phi: phi, lambda: input.map(lambda, center: lambdaHat), w: w)
    }

    /// The hypernetwork's hidden layer after the last `weights` call (`Hypernet.hiddenState`):
    /// pass it to `record` or `hypergradient` for the same φ, λ̂ and λ.
    public var hiddenState: [Float] { hypernet.hiddenState }

    private func prepareBackward(phi: UnsafePointer<Float>, x: UnsafePointer<Float>, hidden: [Float]?) {
        if let hidden { hypernet.restoreHidden(hidden) } else { hypernet.prepareBackward(phi: phi, lambda: x) }
    }

    /// The validation task's weights `w = φ(λ̂)` (`D` values into `w`).
    public func weights(phi: UnsafePointer<Float>, lambdaHat: UnsafePointer<Float>, into w: UnsafeMutablePointer<Float>) {
        weights(phi: phi, lambdaHat: lambdaHat, lambda: lambdaHat, into: w)
    }

    /// φ₀ for an external model (docs/protocol.md §12.4): every parameter `initScale·N(0,1)`
    /// from the run's initialization stream (as `Hypernet.initialParameters`), then the output
    /// bias `b` (φ's last `D` values) set to `w₀ − φ_{b=0}(λ̂₀)`, so that `φ(λ̂₀) = w₀` — exactly
    /// for `linear` with the centred input (the λ-term is then 0), up to rounding otherwise.
    public func initialPhi(initialWeights w0: [Float], lambdaHat: [Float], seed: UInt64, scale: Double) -> [Float] {
        precondition(w0.count == weightCount && lambdaHat.count == hyperparameterCount,
                     "initialPhi: \(w0.count) weights for D = \(weightCount), \(lambdaHat.count) λ̂ for H = \(hyperparameterCount)")
        let phi = AlignedBuffer<Float>(hypernet.initialParameters(seed: seed, scale: scale))
        let bias = phi.pointer + (hypernet.parameterCount - weightCount)
        bias.update(repeating: 0, count: weightCount)
        let lam = AlignedBuffer<Float>(lambdaHat)
        let w = AlignedBuffer<Float>(count: weightCount)
        weights(phi: phi.constPointer, lambdaHat: lam.constPointer, into: w.pointer)
        for i in 0..<weightCount { bias[i] = w0[i] - w.pointer[i] }
        return phi.array
    }

    /// `∂L_valid/∂λ̂` (`H` values into `gradLambda`) from the validation task's `∂L_valid/∂w`
    /// at `w = φ(λ̂)`.
    /// `hidden`: as for `record`, of the `weights` call that made w = φ(λ̂).
    public func hypergradient(
        phi: UnsafePointer<Float>, lambdaHat: UnsafePointer<Float>, gradW: UnsafePointer<Float>,
        into gradLambda: UnsafeMutablePointer<Float>, hidden: [Float]? = nil
    ) {
        let x = input.map(lambdaHat, center: lambdaHat)
        prepareBackward(phi: phi, x: x, hidden: hidden)
        hypernet.backward(phi: phi, lambda: x, gradW: gradW, gradPhi: nil, gradLambda: gradLambda)
    }
}
