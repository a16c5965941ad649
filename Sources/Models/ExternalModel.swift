/// A model the coordinator does not know (docs/sdk.md, docs/protocol.md §12): only its named
/// tensors and how λ regularizes them. Workers own the model's code, data and prediction loss;
/// the coordinator owns φ, λ̂, the penalty `Σ_g exp(λ_g)·‖w_g‖²` and both optimizers.
///
/// Flat layout of `w`: the tensors in `tensors` order, each row-major (C order) — exactly
/// PyTorch's `torch.cat([p.flatten() for p in module.parameters()])`.
public struct ExternalModel: Sendable, Codable, Equatable {
    /// One named tensor of the model.
    public struct TensorSpec: Sendable, Codable, Equatable {
        /// The name in the user's model (`conv1.weight`), used again by `export`.
        public var name: String
        /// The shape, outermost dimension first (torch's `[out, in, …]` for weights).
        public var shape: [Int]
        /// - Parameters: see the properties.
        public init(name: String, shape: [Int]) {
            self.name = name
            self.shape = shape
        }
        /// Number of elements (1 for a scalar of shape `[]`).
        public var count: Int { shape.reduce(1, *) }
    }

    /// Which weights share a hyperparameter over the external layout.
    public enum Scope: String, Sendable, Codable, CaseIterable {
        /// One λ for every weight, biases included.
        case global
        /// One λ per tensor (per `conv1.weight`, `conv1.bias`, …).
        case perTensor = "per-tensor"
        /// One λ per weight (D hyperparameters).
        case perWeight = "per-weight"
        /// For each tensor of rank ≥ 2, one λ per index of its dimension 0 (torch's output
        /// unit / output channel); every tensor of rank < 2 (biases, scalars) gets one λ per
        /// element too, sharing the λ of its output unit when it is the bias right after a
        /// weight whose dim 0 it matches (`fc.weight [10, 64]`, `fc.bias [10]`: λ_c covers row c
        /// and bias c, like the built-in per-class scope). Other rank-1 tensors: one λ per element.
        case perOutputUnit = "per-output-unit"
    }

    /// The tensors in flat-layout order.
    public var tensors: [TensorSpec]
    /// The grouping of the penalty.
    public var scope: Scope

    /// - Parameters: see the properties.
    public init(tensors: [TensorSpec], scope: Scope) {
        self.tensors = tensors
        self.scope = scope
    }

    /// `D`, the length of `w`.
    public var parameterCount: Int { tensors.reduce(0) { $0 + $1.count } }

    /// Offset of each tensor in `w`.
    public var offsets: [Int] {
        var o: [Int] = [], off = 0
        for t in tensors { o.append(off); off += t.count }
        return o
    }

    /// Problems with the layout, each a sentence; empty when usable.
    public func problems() -> [String] {
        var p: [String] = []
        if tensors.isEmpty { p.append("the model has no tensors") }
        var seen = Set<String>()
        var total = 0
        for t in tensors {
            // Overflow-checked before anything multiplies shapes (a checkpoint's config is input).
            var n = 1, overflow = false
            for dim in t.shape where dim > 0 {
                let (m, o) = n.multipliedReportingOverflow(by: dim)
                n = m
                overflow = overflow || o || n > 100_000_000
            }
            let (sum, o) = total.addingReportingOverflow(n)
            total = overflow || o ? Int.max : sum
            if overflow { p.append("tensor '\(t.name)' has too many elements (\(t.shape))") }
            if t.name.isEmpty { p.append("a tensor has an empty name") }
            if !seen.insert(t.name).inserted { p.append("tensor name '\(t.name)' appears twice") }
            if t.shape.contains(where: { $0 <= 0 }) { p.append("tensor '\(t.name)' has a bad shape \(t.shape) (every dimension must be ≥ 1)") }
        }
        if p.isEmpty && total > 100_000_000 { p.append("the model has \(parameterCount) weights; at most 100,000,000 are supported") }
        return p
    }

    /// The group of each weight (all regularized, none −1) and the number of groups `H`.
    public func groups() -> (groupOf: [Int32], count: Int) {
        let d = parameterCount
        var g = [Int32](repeating: 0, count: d)
        switch scope {
        case .global:
            return (g, 1)
        case .perWeight:
            for i in 0..<d { g[i] = Int32(i) }
            return (g, d)
        case .perTensor:
            var off = 0
            for (k, t) in tensors.enumerated() {
                for i in off..<(off + t.count) { g[i] = Int32(k) }
                off += t.count
            }
            return (g, tensors.count)
        case .perOutputUnit:
            var off = 0, next = 0
            var previous: (first: Int, rows: Int)? = nil   // the last weight's groups
            for t in tensors {
                if t.shape.count >= 2 {
                    let rows = t.shape[0], per = t.count / rows
                    for r in 0..<rows { for j in 0..<per { g[off + r * per + j] = Int32(next + r) } }
                    previous = (next, rows)
                    next += rows
                } else if let prev = previous, t.count == prev.rows {
                    for i in 0..<t.count { g[off + i] = Int32(prev.first + i) }
                    previous = nil
                } else {
                    for i in 0..<t.count { g[off + i] = Int32(next + i) }
                    next += t.count
                    previous = nil
                }
                off += t.count
            }
            return (g, next)
        }
    }
}

extension Regularizer {
    /// The penalty over an external model's layout: every weight is in exactly one group.
    public init(external model: ExternalModel, norm: RegularizationNorm = .squared) {
        let (g, h) = model.groups()
        self.init(scope: model.scope == .perWeight ? .perWeight : .perLayer, norm: norm, groupOf: g, groupCount: h)
    }
}
