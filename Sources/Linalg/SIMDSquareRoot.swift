private import CKernels

/// Lane-wise square roots in one vector instruction where the target has AVX. The result is
/// the correctly rounded square root of every lane, bit for bit what `squareRoot()` gives;
/// `SIMD.squareRoot()` itself calls libm's `sqrtf` once per lane on Linux (errno semantics).
enum SIMDSquareRoot {
    @inline(__always)
    static func of(_ v: SIMD8<Float>) -> SIMD8<Float> {
        var x = v, y = SIMD8<Float>()
        withUnsafePointer(to: &x) { px in
            withUnsafeMutablePointer(to: &y) { py in
                hypertrain_sqrt8f(UnsafeRawPointer(px).assumingMemoryBound(to: Float.self),
                                  UnsafeMutableRawPointer(py).assumingMemoryBound(to: Float.self))
            }
        }
        return y
    }

    @inline(__always)
    static func of(_ v: SIMD4<Double>) -> SIMD4<Double> {
        var x = v, y = SIMD4<Double>()
        withUnsafePointer(to: &x) { px in
            withUnsafeMutablePointer(to: &y) { py in
                hypertrain_sqrt4d(UnsafeRawPointer(px).assumingMemoryBound(to: Double.self),
                                  UnsafeMutableRawPointer(py).assumingMemoryBound(to: Double.self))
            }
        }
        return y
    }
}
