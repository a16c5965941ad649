import Linalg

/// How the hypernetwork's parameters φ are initialised.
public enum HypernetInit: String, Sendable, Codable, CaseIterable {
    /// Every parameter `scale·N(0,1)` (the authors' code; ``Hypernet/initialParameters(seed:scale:)``).
    case normal
    /// Fan-in aware (``Hypernet/fanInParameters(seed:scale:elementary:)``): the output bias `b`
    /// is a standard initialisation of the elementary MLP, the first layer is scaled by
    /// `1/√H`, so that `φ(λ̂)` starts as an ordinary He/LeCun-initialised network however many
    /// hyperparameters there are.
    case fanIn = "fan-in"
}

extension Hypernet {
    /// Fan-in-aware initial `φ`, drawn from the run's initialization stream (one normal per
    /// parameter in flat order, so the result depends only on the seed and the sizes):
    ///
    /// - `b` (the weights at a zero λ-term): the elementary MLP's own initialisation — weight
    ///   `[in, out]` of a layer feeding a ReLU `N(0, 2/in)` (He), of the linear output layer
    ///   `N(0, 1/in)` (LeCun); biases 0;
    /// - `C` (`mlp`/`factorized`, fan-in `H`): `N(0, 1/H)`, so `Cᵀx` has the scale of one
    ///   coordinate of `x` instead of growing as `√H`; `c`: 0;
    /// - `B` (fan-in `K`): `scale·N(0, 1/K)`, so the λ-dependent part `Bᵀz` starts `scale` times
    ///   the size of one component of `z`;
    /// - `A` (`linear`, fan-in `H`): `scale·N(0, 1/H)`.
    ///
    /// With the centred input (`w = φ(λ − λ̂)`) `φ(λ̂) = b` exactly at step 0.
    ///
    /// - Parameters:
    ///   - seed: the run seed.
    ///   - scale: the relative size of the λ-dependent part (`B`, or `A`).
    ///   - elementary: the elementary model; its `parameterCount` must be `D`.
    public func fanInParameters(seed: UInt64, scale: Double, elementary shape: MLPShape) -> [T] {
        precondition(shape.parameterCount == outputCount,
                     "fanInParameters: the model \(shape) has \(shape.parameterCount) weights, the hypernet outputs \(outputCount)")
        let hh = inputCount, d = outputCount
        // Per-parameter std, block by block in the flat layout.
        var std: [Double] = []
        std.reserveCapacity(parameterCount)
        if let k = kind.hidden {
            std += repeatElement(1 / Double(hh).squareRoot(), count: hh * k)         // C
            std += repeatElement(0, count: k)                                        // c
            std += repeatElement(scale / Double(k).squareRoot(), count: k * d)       // B
        } else {
            std += repeatElement(scale / Double(hh).squareRoot(), count: hh * d)     // A
        }
        std += Self.elementaryStd(shape)                                             // b
        precondition(std.count == parameterCount, "fanInParameters: \(std.count) stds for \(parameterCount) parameters")
        var rng = Philox(seed: seed, step: 0, task: 0, stream: RandomStream.initialization.rawValue)
        return std.map { s in
            let n = rng.nextNormal()
            return T(s * n)
        }
    }

    /// The std of each elementary weight under a standard initialisation: He (`√(2/in)`) for
    /// layers followed by a ReLU, LeCun (`√(1/in)`) for the linear output layer, 0 for biases.
    public static func elementaryStd(_ shape: MLPShape) -> [Double] {
        var std: [Double] = []
        std.reserveCapacity(shape.parameterCount)
        for l in 0..<shape.layerCount {
            let fanIn = shape.sizes[l], out = shape.sizes[l + 1]
            let gain: Double = l + 1 < shape.layerCount ? 2 : 1
            std += repeatElement((gain / Double(fanIn)).squareRoot(), count: fanIn * out)
            std += repeatElement(0, count: out)
        }
        return std
    }
}
