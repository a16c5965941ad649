/// Explicit 8-lane kernels for `Float` hot loops that the compiler does not vectorize on
/// its own (square roots, divisions, possible aliasing). Each has a scalar tail that computes
/// the same formula, so results do not depend on where the vector part ends.
public enum FloatKernels {
    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }
    @inline(__always) static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    /// One Adam update with the bias correction folded into `alpha` and `epsHat`:
    /// `g = grad·gradScale; m = β₁m + (1−β₁)g; v = β₂v + (1−β₂)g²; p −= α·m/(√v + ε̂)`.
    /// Returns `true` when every updated parameter is finite (`p·0` summed as in
    /// `Vec.allFinite`, on the values as they are stored).
    @discardableResult
    public static func adam(
        params: UnsafeMutablePointer<Float>, grad: UnsafePointer<Float>,
        m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, count: Int,
        gradScale: Float, beta1: Float, beta2: Float, alpha: Float, epsHat: Float,
        source: UnsafePointer<Float>? = nil
    ) -> Bool {
        // `source`: the parameters before the step when they are elsewhere than `params` (an
        // out-of-place update, the same operations); nil: in place (a loop of its own, compiled
        // as before the out-of-place form existed).
        if let source {
            return adam(params: params, grad: grad, m: m, v: v, count: count, gradScale: gradScale, beta1: beta1, beta2: beta2,
                        alpha: alpha, epsHat: epsHat, from: source, inPlace: false)
        }
        return adam(params: params, grad: grad, m: m, v: v, count: count, gradScale: gradScale, beta1: beta1, beta2: beta2,
                    alpha: alpha, epsHat: epsHat, from: UnsafePointer(params), inPlace: true)
    }

    @inline(__always)
    private static func adam(
        params: UnsafeMutablePointer<Float>, grad: UnsafePointer<Float>,
        m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, count: Int,
        gradScale: Float, beta1: Float, beta2: Float, alpha: Float, epsHat: Float,
        from: UnsafePointer<Float>, inPlace: Bool
    ) -> Bool {
        let s = SIMD8<Float>(repeating: gradScale)
        let b1 = SIMD8<Float>(repeating: beta1), c1 = SIMD8<Float>(repeating: 1 - beta1)
        let b2 = SIMD8<Float>(repeating: beta2), c2 = SIMD8<Float>(repeating: 1 - beta2)
        let a = SIMD8<Float>(repeating: alpha), e = SIMD8<Float>(repeating: epsHat)
        var finite = SIMD8<Float>.zero
        var i = 0
        while i + 8 <= count {
            let g = load(grad + i) * s
            let mi = b1 * load(m + i) + c1 * g
            let vi = b2 * load(v + i) + c2 * (g * g)
            store(mi, m + i)
            store(vi, v + i)
            let p = (inPlace ? load(params + i) : load(from + i)) - a * mi / (SIMDSquareRoot.of(vi) + e)
            store(p, params + i)
            finite += p * 0
            i += 8
        }
        var tail: Float = 0
        while i < count {
            let g = grad[i] * gradScale
            let mi = beta1 * m[i] + (1 - beta1) * g
            let vi = beta2 * v[i] + (1 - beta2) * (g * g)
            m[i] = mi
            v[i] = vi
            let p = (inPlace ? params[i] : from[i]) - alpha * mi / (vi.squareRoot() + epsHat)
            params[i] = p
            tail += p * 0
            i += 1
        }
        return finite.sum() == 0 && tail == 0
    }

    /// `dst[i] = 0 + src[i]`: the bits of adding `src` into a zeroed `dst`.
    public static func setSum(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) {
        let zero = SIMD8<Float>.zero
        var i = 0
        while i + 8 <= count {
            store(zero + load(src + i), dst + i)
            i += 8
        }
        while i < count { dst[i] = 0 + src[i]; i += 1 }
    }

    /// `dst[i] += src[i]`.
    public static func add(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count {
            store(load(dst + i) + load(src + i), dst + i)
            i += 8
        }
        while i < count { dst[i] = dst[i] + src[i]; i += 1 }
    }
}
