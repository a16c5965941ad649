import Linalg

/// The form of the hypernetwork `w = φ(λ)` (`--hypernet linear|mlp:K|factorized:K`).
public enum HypernetKind: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    /// `w = b + Aᵀλ` with `A` of shape `[H, D]`.
    case linear
    /// `w = b + Bᵀ relu(c + Cᵀλ)`, `C: [H, K]`, `B: [K, D]`.
    case mlp(hidden: Int)
    /// `w = b + Bᵀ(c + Cᵀλ)`: a linear map through a rank-`K` bottleneck.
    case factorized(hidden: Int)

    /// Parses `linear`, `mlp:K`, `factorized:K`.
    public init?(parsing text: String) {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        switch (parts.first, parts.count) {
        case ("linear", 1): self = .linear
        case ("mlp", 2): guard let k = Int(parts[1]), k > 0 else { return nil }; self = .mlp(hidden: k)
        case ("factorized", 2): guard let k = Int(parts[1]), k > 0 else { return nil }; self = .factorized(hidden: k)
        default: return nil
        }
    }

    /// `linear`, `mlp:K`, `factorized:K`.
    public var description: String {
        switch self {
        case .linear: "linear"
        case .mlp(let k): "mlp:\(k)"
        case .factorized(let k): "factorized:\(k)"
        }
    }

    /// Width of the hidden layer, if any.
    public var hidden: Int? {
        switch self {
        case .linear: nil
        case .mlp(let k), .factorized(let k): k
        }
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let k = HypernetKind(parsing: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad hypernet \(text)"))
        }
        self = k
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// A hypernetwork `φ: R^H → R^D` with its forward pass and hand-derived backward pass.
///
/// Parameter layout (flat `φ`): `linear`: `A [H, D]`, then `b [D]`.
/// `mlp:K` / `factorized:K`: `C [H, K]`, `c [K]`, `B [K, D]`, `b [D]`.
/// `forward` records the hidden activations that the next `backward` (at the same λ) uses.
public final class Hypernet<T: BLASScalar> {
    /// Linear, MLP or factorized.
    public let kind: HypernetKind
    /// `H`.
    public let inputCount: Int
    /// `D`.
    public let outputCount: Int
    /// Length of `φ`.
    public let parameterCount: Int

    let hiddenCount: Int
    let z: AlignedBuffer<T>     // hidden pre-activation
    let h: AlignedBuffer<T>     // hidden activation
    let gz: AlignedBuffer<T>    // ∂/∂z

    /// - Parameters:
    ///   - kind: the form.
    ///   - inputCount: `H`.
    ///   - outputCount: `D`.
    public init(kind: HypernetKind, inputCount: Int, outputCount: Int) {
        precondition(inputCount > 0 && outputCount > 0, "Hypernet: H=\(inputCount) D=\(outputCount)")
        self.kind = kind
        self.inputCount = inputCount
        self.outputCount = outputCount
        hiddenCount = kind.hidden ?? 0
        parameterCount = Self.parameterCount(kind: kind, inputCount: inputCount, outputCount: outputCount)
        z = AlignedBuffer(count: hiddenCount)
        h = AlignedBuffer(count: hiddenCount)
        gz = AlignedBuffer(count: hiddenCount)
    }

    /// Length of `φ` for a kind and sizes (e.g. `mlp:50`, H=1, D=7,850 → 400,450).
    public static func parameterCount(kind: HypernetKind, inputCount h: Int, outputCount d: Int) -> Int {
        if let k = kind.hidden { return h * k + k + k * d + d }
        return h * d + d
    }

    /// Initial `φ`: every parameter `0.01·N(0,1)` from the run's initialization stream.
    public func initialParameters(seed: UInt64, scale: Double = 0.01) -> [T] {
        var rng = Philox(seed: seed, step: 0, task: 0, stream: RandomStream.initialization.rawValue)
        return (0..<parameterCount).map { _ in T(scale * rng.nextNormal()) }
    }

    /// `w ← φ(λ)`.
    public func forward(phi: UnsafePointer<T>, lambda: UnsafePointer<T>, w: UnsafeMutablePointer<T>) {
        let hh = inputCount, d = outputCount
        if hiddenCount == 0 {
            w.update(from: phi + hh * d, count: d)
            Vec.addRowCombination(rows: hh, cols: d, phi, lambda, into: w)
            return
        }
        let k = hiddenCount
        let (bOff, bBiasOff) = (hh * k + k, hh * k + k + k * d)
        prepareBackward(phi: phi, lambda: lambda)
        w.update(from: phi + bBiasOff, count: d)
        Vec.addRowCombination(rows: k, cols: d, phi + bOff, h.constPointer, into: w)
    }

    /// The part of `forward` that `backward` needs (the hidden layer at `lambda`), without
    /// computing `w`: lets a caller that only holds `∂L/∂w` (the coordinator expanding a
    /// trainer's weight gradient) run `backward` for that λ. Nothing to do for `linear`.
    public func prepareBackward(phi: UnsafePointer<T>, lambda: UnsafePointer<T>) {
        let k = hiddenCount
        guard k > 0 else { return }
        z.pointer.update(from: phi + inputCount * k, count: k)
        Vec.addRowCombination(rows: inputCount, cols: k, phi, lambda, into: z.pointer)
        if case .mlp = kind {
            for i in 0..<k { h.pointer[i] = max(z.pointer[i], 0) }
        } else {
            h.pointer.update(from: z.pointer, count: k)
        }
    }

    /// The hidden layer the last `forward` or `prepareBackward` left (pre-activation then
    /// activation, 2k values; empty for `linear`): `restoreHidden` of it instead of
    /// `prepareBackward` at the same φ and λ gives `backward` the same bits without the pass
    /// over the first layer (H·k values of φ).
    public var hiddenState: [T] { hiddenCount == 0 ? [] : z.array + h.array }

    /// Puts back a `hiddenState` (of the φ and λ the next `backward` is at).
    public func restoreHidden(_ state: [T]) {
        let k = hiddenCount
        precondition(state.count == 2 * k, "Hypernet.restoreHidden: \(state.count) values, expected \(2 * k)")
        guard k > 0 else { return }
        state.withUnsafeBufferPointer { s in
            z.pointer.update(from: s.baseAddress!, count: k)
            h.pointer.update(from: s.baseAddress! + k, count: k)
        }
    }

    /// Back-propagates `gradW = ∂L/∂w` at the λ of the last `forward` (or `prepareBackward`):
    /// writes `∂L/∂φ` into `gradPhi` (overwriting, or adding to it when `accumulate`) and/or
    /// `∂L/∂λ` into `gradLambda` (overwriting).
    ///
    /// Accumulating adds each rounded product (`g[i] + round(x·y)`, never a fused multiply-add),
    /// so it gives exactly the bits of writing the gradient and adding it afterwards — the
    /// single process accumulates, the coordinator adds the workers' gradients, and both agree.
    public func backward(
        phi: UnsafePointer<T>, lambda: UnsafePointer<T>, gradW: UnsafePointer<T>,
        gradPhi: UnsafeMutablePointer<T>?, gradLambda: UnsafeMutablePointer<T>?, accumulate: Bool = false
    ) {
        let hh = inputCount, d = outputCount
        if hiddenCount == 0 {
            if let gradPhi {
                Self.outer(lambda, hh, gradW, d, into: gradPhi, accumulate: accumulate)
                Self.copy(gradW, d, into: gradPhi + hh * d, accumulate: accumulate)
            }
            if let gradLambda {
                Vec.rowDots(rows: hh, cols: d, phi, gradW, into: gradLambda)
            }
            return
        }
        let k = hiddenCount
        let (cOff, bOff, bBiasOff) = (hh * k, hh * k + k, hh * k + k + k * d)
        // ∂h = B·∂w, then through the activation.
        Vec.rowDots(rows: k, cols: d, phi + bOff, gradW, into: gz.pointer)
        if case .mlp = kind {
            for i in 0..<k where z.pointer[i] <= 0 { gz.pointer[i] = 0 }
        }
        if let gradPhi {
            Self.outer(lambda, hh, gz.constPointer, k, into: gradPhi, accumulate: accumulate)       // ∂C
            Self.copy(gz.constPointer, k, into: gradPhi + cOff, accumulate: accumulate)             // ∂c
            Self.outer(h.constPointer, k, gradW, d, into: gradPhi + bOff, accumulate: accumulate)   // ∂B
            Self.copy(gradW, d, into: gradPhi + bBiasOff, accumulate: accumulate)                   // ∂b
        }
        if let gradLambda {
            Vec.rowDots(rows: hh, cols: k, phi, gz.constPointer, into: gradLambda)
        }
    }

    /// `out[i, j] = x[i]·y[j]`, or `out[i, j] + x[i]·y[j]` with the product rounded first.
    private static func outer(_ x: UnsafePointer<T>, _ m: Int, _ y: UnsafePointer<T>, _ n: Int,
                              into out: UnsafeMutablePointer<T>, accumulate: Bool) {
        for i in 0..<m {
            let xi = x[i]
            let row = out + i * n
            if accumulate {
                for j in 0..<n { let p = xi * y[j]; row[j] = row[j] + p }
            } else {
                for j in 0..<n { row[j] = xi * y[j] }
            }
        }
    }

    /// `out = x`, or `out += x`.
    private static func copy(_ x: UnsafePointer<T>, _ n: Int, into out: UnsafeMutablePointer<T>, accumulate: Bool) {
        if accumulate {
            for j in 0..<n { out[j] = out[j] + x[j] }
        } else {
            out.update(from: x, count: n)
        }
    }
}
