import Linalg
import Models

/// Turns a training task's `∂L/∂w` (what a trainer sends when the task allows it) into its
/// `∂L/∂φ`, added to a running sum — the same floating-point operations as the trainer's own
/// `HyperTrainer.trainTask(…, gradPhi:, accumulate: true)`, so the sum has the same bits.
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

    /// - Parameter config: the run configuration.
    public init(config: ExperimentConfig) {
        let shape = config.shape
        let h = Regularizer(shape: shape, scope: config.scope, norm: config.norm).groupCount
        weightCount = shape.parameterCount
        hyperparameterCount = h
        hypernet = Hypernet(kind: config.hypernet, inputCount: h, outputCount: shape.parameterCount)
        input = HypernetInputMap(config: config, count: h)
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
}
