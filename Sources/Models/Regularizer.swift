import Linalg

/// Which weights share a hyperparameter (`--scope`).
public enum RegularizationScope: String, Sendable, Codable, CaseIterable {
    /// One λ for every weight and bias.
    case global
    /// Ten λs: the last layer's weights and bias feeding output class c; hidden layers unregularized.
    case perClass = "per-class"
    /// One λ per layer (its weights and bias).
    case perLayer = "per-layer"
    /// One λ per weight and bias.
    case perWeight = "per-weight"
}

/// How a group's weights enter the penalty.
public enum RegularizationNorm: String, Sendable, Codable, CaseIterable {
    /// `exp(λ_g)·Σ_{i∈g} wᵢ²` (default).
    case squared
    /// `exp(λ_g)·‖w_g‖₂`, the authors' code for the global scope.
    case unsquared
}

/// `L_reg(w, λ) = Σ_g exp(λ_g)·N(w_g)` with `N` the squared or unsquared L2 norm.
public struct Regularizer: Sendable {
    /// Group structure.
    public let scope: RegularizationScope
    /// Squared or unsquared L2 norm of each group.
    public let norm: RegularizationNorm
    /// `D`.
    public let parameterCount: Int
    /// `H`, the number of hyperparameters.
    public let groupCount: Int
    /// Group of each weight, −1 when unregularized.
    public let groupOf: [Int32]

    /// - Parameters:
    ///   - shape: the elementary model.
    ///   - scope: the grouping.
    ///   - norm: squared (default) or unsquared.
    public init(shape: MLPShape, scope: RegularizationScope, norm: RegularizationNorm = .squared) {
        self.scope = scope
        self.norm = norm
        parameterCount = shape.parameterCount
        var g = [Int32](repeating: -1, count: shape.parameterCount)
        switch scope {
        case .global:
            for i in g.indices { g[i] = 0 }
            groupCount = 1
        case .perWeight:
            for i in g.indices { g[i] = Int32(i) }
            groupCount = shape.parameterCount
        case .perLayer:
            for l in 0..<shape.layerCount {
                let end = shape.biasOffset[l] + shape.sizes[l + 1]
                for i in shape.weightOffset[l]..<end { g[i] = Int32(l) }
            }
            groupCount = shape.layerCount
        case .perClass:
            let l = shape.layerCount - 1
            let nIn = shape.sizes[l], nOut = shape.sizes[l + 1]
            for r in 0..<nIn { for c in 0..<nOut { g[shape.weightOffset[l] + r * nOut + c] = Int32(c) } }
            for c in 0..<nOut { g[shape.biasOffset[l] + c] = Int32(c) }
            groupCount = nOut
        }
        groupOf = g
    }

    /// A regularizer with an explicit grouping (`Regularizer(external:)`). `scope` only selects
    /// the per-weight fast path (`.perWeight` requires `groupOf[i] == i`).
    init(scope: RegularizationScope, norm: RegularizationNorm, groupOf: [Int32], groupCount: Int) {
        precondition(scope != .perWeight || groupOf.enumerated().allSatisfy { Int($0.element) == $0.offset },
                     "Regularizer: the per-weight fast path needs group i = weight i")
        self.scope = scope
        self.norm = norm
        parameterCount = groupOf.count
        self.groupCount = groupCount
        self.groupOf = groupOf
    }

    /// Adds `∂L_reg/∂w` into `gradW` (and `∂L_reg/∂λ` into `gradLambda` if given) and returns
    /// `L_reg`. `scratch` must hold `2·groupCount` values.
    @discardableResult
    public func addGradient<T: BLASScalar>(
        w: UnsafePointer<T>, lambda: UnsafePointer<T>,
        gradW: UnsafeMutablePointer<T>?, gradLambda: UnsafeMutablePointer<T>?,
        scratch: UnsafeMutablePointer<T>
    ) -> Double {
        let h = groupCount
        let coef = scratch            // exp(λ_g)
        let sums = scratch + h        // Σ w² per group (unsquared, or for ∂λ)
        for k in 0..<h { coef[k] = T.exp(lambda[k]) }
        let needSums = norm == .unsquared || gradLambda != nil
        if needSums {
            sums.update(repeating: 0, count: h)
            groupOf.withUnsafeBufferPointer { groups in
                for i in 0..<parameterCount {
                    let k = Int(groups[i])
                    if k >= 0 { sums[k] += w[i] * w[i] }
                }
            }
        }
        var value = 0.0
        switch norm {
        case .squared:
            if let gradW, scope == .perWeight {
                // Group i is weight i: the same loop without the group lookup (vectorizes).
                for i in 0..<parameterCount { gradW[i] += 2 * coef[i] * w[i] }
            } else if let gradW {
                groupOf.withUnsafeBufferPointer { groups in
                    for i in 0..<parameterCount {
                        let k = Int(groups[i])
                        if k >= 0 { gradW[i] += 2 * coef[k] * w[i] }
                    }
                }
            }
            if needSums {
                for k in 0..<h { value += Double(coef[k] * sums[k]) }
            } else {
                groupOf.withUnsafeBufferPointer { groups in
                    var acc = T(0)
                    for i in 0..<parameterCount {
                        let k = Int(groups[i])
                        if k >= 0 { acc += coef[k] * w[i] * w[i] }
                    }
                    value = Double(acc)
                }
            }
            if let gradLambda { for k in 0..<h { gradLambda[k] += coef[k] * sums[k] } }
        case .unsquared:
            // ‖w_g‖ and ∂/∂w = exp(λ)·w/‖w_g‖ (zero where the group is exactly zero).
            for k in 0..<h { sums[k] = sums[k].squareRoot() }
            for k in 0..<h { value += Double(coef[k] * sums[k]) }
            if let gradW {
                groupOf.withUnsafeBufferPointer { groups in
                    for i in 0..<parameterCount {
                        let k = Int(groups[i])
                        if k >= 0 && sums[k] > 0 { gradW[i] += coef[k] * w[i] / sums[k] }
                    }
                }
            }
            if let gradLambda { for k in 0..<h { gradLambda[k] += coef[k] * sums[k] } }
        }
        return value
    }
}
