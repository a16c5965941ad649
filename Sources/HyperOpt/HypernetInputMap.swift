import Linalg

/// What the hypernetwork sees for hyperparameters λ: λ itself, or λ minus a centre when the
/// configuration centres the input (`--hypernet-input centred`: the centre is λ̂, or
/// Algorithm 2's fixed prior mean). One instance per thread (it owns a workspace).
final class HypernetInputMap {
    private let count: Int
    private let centred: Bool
    /// Algorithm 2's fixed centre, the prior mean (nil: the centre is the caller's λ̂).
    private let priorCentre: AlignedBuffer<Float>?
    private let workspace: AlignedBuffer<Float>

    init(config: ExperimentConfig, count: Int) {
        self.count = count
        centred = config.hypernetInput == .centred
        priorCentre = centred && config.algorithm == .globalBestResponse
            ? AlignedBuffer([Float](repeating: Float(config.priorMean), count: count)) : nil
        workspace = AlignedBuffer(count: count)
    }

    /// `lambda` itself, or `lambda − centre` (in the workspace, valid until the next call)
    /// when the input is centred; `given` is the centre unless the configuration fixes one.
    func map(_ lambda: UnsafePointer<Float>, center given: UnsafePointer<Float>) -> UnsafePointer<Float> {
        guard centred else { return lambda }
        let center = priorCentre?.constPointer ?? given
        let x = workspace.pointer
        for i in 0..<count { x[i] = lambda[i] - center[i] }
        return UnsafePointer(x)
    }
}
