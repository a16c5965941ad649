import Linalg

/// A step's summed `∂L/∂φ` kept as the factors it is made of, so the φ step can stream φ and
/// the optimizer state once instead of also writing, re-reading and checking a φ-sized sum.
///
/// Every block of the hypernetwork's gradient is an outer product or a copy of small vectors
/// (`Hypernet.backward`): `∂A = x ⊗ ∂w`, `∂C = x ⊗ ∂z`, `∂B = h ⊗ ∂w`, `∂c = ∂z`, `∂b = ∂w`.
/// Slot `t` holds task `t`'s `x` (the hypernetwork input), `h`, `∂z` and `∂w`; `Hypernet`
/// rebuilds any stretch of the sum on demand (`forEachGradientSumChunk`), element by element
/// `((0 + p₀) + p₁) + …` with each product `pₜ` rounded — exactly what zeroing a buffer and
/// accumulating the tasks' gradients into it in task order gives (see `Hypernet.backward`).
public final class PhiGradientFactors {
    /// Number of slots (tasks per step).
    public let capacity: Int
    let inputCount: Int
    let outputCount: Int
    let hiddenCount: Int
    /// `∂z` slots are padded to whole 8-lane blocks (zeros past `hiddenCount`).
    let hiddenStride: Int
    let x: AlignedBuffer<Float>
    let h: AlignedBuffer<Float>
    let gz: AlignedBuffer<Float>
    let gw: AlignedBuffer<Float>
    /// One chunk of the rebuilt sum (plus 8 lanes of slack for whole-block stores).
    let chunk: AlignedBuffer<Float>
    static let chunkTarget = 2048

    /// - Parameters:
    ///   - hypernet: the hypernetwork whose gradients will be recorded.
    ///   - capacity: tasks per step.
    public init(for hypernet: Hypernet<Float>, capacity: Int) {
        precondition(capacity > 0, "PhiGradientFactors: capacity \(capacity)")
        self.capacity = capacity
        inputCount = hypernet.inputCount
        outputCount = hypernet.outputCount
        hiddenCount = hypernet.hiddenCount
        hiddenStride = (hiddenCount + 7) / 8 * 8
        x = AlignedBuffer(count: capacity * inputCount)
        h = AlignedBuffer(count: capacity * hiddenCount)
        gz = AlignedBuffer(count: capacity * hiddenStride)
        gw = AlignedBuffer(count: capacity * outputCount)
        chunk = AlignedBuffer(count: max(Self.chunkTarget, hiddenStride) + 8)
    }

    /// Slot `t`'s `∂L/∂w` (`D` values): pass it as the elementary model's gradient buffer,
    /// then record the task with `Hypernet.backward(phi:lambda:gradW:recordingInto:slot:)`.
    public func gradW(slot t: Int) -> UnsafeMutablePointer<Float> {
        precondition(t >= 0 && t < capacity, "PhiGradientFactors: slot \(t) of \(capacity)")
        return gw.pointer + t * outputCount
    }

    /// `true` when the sum of slots `0..<tasks` is certainly finite: a bound on every
    /// element's magnitude (per block Σₜ ‖uₜ‖₁·‖vₜ‖₁ ≥ Σₜ max|uₜ|·max|vₜ|, with room for
    /// rounding) is below the largest `Float`; a non-finite factor makes the bound NaN or ∞.
    /// `false` means "not proven": materialize the sum (`Hypernet.writeGradientSum`) and check
    /// it element by element.
    public func sumIsCertainlyFinite(tasks: Int) -> Bool {
        precondition(tasks > 0 && tasks <= capacity, "PhiGradientFactors: \(tasks) tasks of \(capacity)")
        var boundOuter = 0.0, boundHidden = 0.0, boundW = 0.0
        for t in 0..<tasks {
            let sx = Self.magnitudeSum(x.constPointer + t * inputCount, inputCount)
            let sw = Self.magnitudeSum(gw.constPointer + t * outputCount, outputCount)
            let sh = Self.magnitudeSum(h.constPointer + t * hiddenCount, hiddenCount)
            let sz = Self.magnitudeSum(gz.constPointer + t * hiddenStride, hiddenCount)
            boundW += max(sw, sz)
            if hiddenCount == 0 {
                boundOuter += sx * sw
            } else {
                boundOuter += sx * sz
                boundHidden += sh * sw
            }
        }
        // Each rounded product or sum is within a factor 1 + 2⁻²⁴ of the exact one; a factor
        // of two covers any realistic number of tasks. (NaN compares false.)
        let limit = Double(Float.greatestFiniteMagnitude) / 2
        return boundOuter < limit && boundHidden < limit && boundW < limit
    }

    /// `Σ |p[i]|` in `Double` (∞ or NaN when a value is not finite).
    static func magnitudeSum(_ p: UnsafePointer<Float>, _ n: Int) -> Double {
        var acc0 = SIMD8<Float>.zero, acc1 = acc0
        var i = 0
        while i + 16 <= n {
            acc0 += Self.abs(UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self))
            acc1 += Self.abs(UnsafeRawPointer(p + i + 8).loadUnaligned(as: SIMD8<Float>.self))
            i += 16
        }
        var s = Double((acc0 + acc1).sum())
        while i < n { s += Double(Swift.abs(p[i])); i += 1 }
        // A Float sum that overflowed is ∞ and fails the bound, as it should (conservative).
        return s
    }

    @inline(__always) static func abs(_ v: SIMD8<Float>) -> SIMD8<Float> {
        unsafeBitCast(unsafeBitCast(v, to: SIMD8<UInt32>.self) & 0x7fff_ffff, to: SIMD8<Float>.self)
    }
}
