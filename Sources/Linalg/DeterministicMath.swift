/// Elementary functions written as fixed sequences of IEEE double operations, for the random
/// number transforms: their results depend on nothing but the input (not on the C library's
/// version or the CPU's vector units), which keeps λ samples identical across hosts.
/// Accuracy ≈ 1e-14 relative — ample for sampling.
public enum DeterministicMath {
    /// Natural logarithm of a positive, finite, normal `x`.
    @inlinable
    public static func log(_ x: Double) -> Double {
        precondition(x > 0 && x.isFinite && x.isNormal, "DeterministicMath.log: \(x)")
        let bits = x.bitPattern
        var e = Int((bits >> 52) & 0x7ff) - 1023
        var m = Double(bitPattern: (bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000)   // [1, 2)
        if m > 1.414_213_562_373_095_048_8 { m *= 0.5; e += 1 }                                  // [0.707, 1.414]
        // log m = 2·atanh(s), s = (m − 1)/(m + 1), |s| ≤ 0.1716.
        let s = (m - 1) / (m + 1)
        let z = s * s
        var p = 1.0 / 17
        p = p * z + 1.0 / 15
        p = p * z + 1.0 / 13
        p = p * z + 1.0 / 11
        p = p * z + 1.0 / 9
        p = p * z + 1.0 / 7
        p = p * z + 1.0 / 5
        p = p * z + 1.0 / 3
        p = p * z + 1
        return Double(e) * 0.693_147_180_559_945_309_4 + 2 * s * p
    }

    /// `(sin 2πt, cos 2πt)` for `t` in [0, 1).
    @inlinable
    public static func sinCosTurns(_ t: Double) -> (sin: Double, cos: Double) {
        let quarter = t * 4
        let q = Int(quarter)                                   // quadrant 0…3
        let x = (quarter - Double(q)) * 1.570_796_326_794_896_619_2   // [0, π/2)
        let z = x * x
        // Taylor series to x¹⁷ / x¹⁸ (error < 5e-14 on [0, π/2]), Horner in z = x².
        var sp = 1.0 / 355_687_428_096_000           // 1/17!
        sp = sp * z - 1.0 / 1_307_674_368_000        // 1/15!
        sp = sp * z + 1.0 / 6_227_020_800            // 1/13!
        sp = sp * z - 1.0 / 39_916_800               // 1/11!
        sp = sp * z + 1.0 / 362_880                  // 1/9!
        sp = sp * z - 1.0 / 5_040                    // 1/7!
        sp = sp * z + 1.0 / 120                      // 1/5!
        sp = sp * z - 1.0 / 6                        // 1/3!
        sp = sp * z + 1
        let sinX = x * sp
        var c = -1.0 / 6_402_373_705_728_000         // 1/18!
        c = c * z + 1.0 / 20_922_789_888_000         // 1/16!
        c = c * z - 1.0 / 87_178_291_200             // 1/14!
        c = c * z + 1.0 / 479_001_600                // 1/12!
        c = c * z - 1.0 / 3_628_800                  // 1/10!
        c = c * z + 1.0 / 40_320                     // 1/8!
        c = c * z - 1.0 / 720                        // 1/6!
        c = c * z + 1.0 / 24                         // 1/4!
        c = c * z - 1.0 / 2
        c = c * z + 1
        let cosX = c
        switch q {
        case 0: return (sinX, cosX)
        case 1: return (cosX, -sinX)
        case 2: return (-sinX, -cosX)
        default: return (-cosX, sinX)
        }
    }
}

extension DeterministicMath {
    /// Four `log`s at once: the same IEEE operations in the same order as the scalar `log`
    /// (lane by lane; no fused multiply-adds), so each lane has exactly the scalar result.
    /// Every lane must be positive, finite and normal (not checked here).
    @inlinable
    public static func log(_ x: SIMD4<Double>) -> SIMD4<Double> {
        let bits = unsafeBitCast(x, to: SIMD4<UInt64>.self)
        // The biased exponent (11 bits) as a Double, exactly, without a lane-by-lane conversion.
        var e = unsafeBitCast(((bits &>> 52) & 0x7ff) | 0x4330_0000_0000_0000, to: SIMD4<Double>.self) - (0x1p52 + 1023)
        var m = unsafeBitCast((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000, to: SIMD4<Double>.self)
        let big = m .> 1.414_213_562_373_095_048_8
        m = m.replacing(with: m * 0.5, where: big)
        e = e.replacing(with: e + 1, where: big)
        let s = (m - 1) / (m + 1)
        let z = s * s
        var p = SIMD4<Double>(repeating: 1.0 / 17)
        p = p * z + 1.0 / 15
        p = p * z + 1.0 / 13
        p = p * z + 1.0 / 11
        p = p * z + 1.0 / 9
        p = p * z + 1.0 / 7
        p = p * z + 1.0 / 5
        p = p * z + 1.0 / 3
        p = p * z + 1
        return e * 0.693_147_180_559_945_309_4 + 2 * s * p
    }

    /// Four `sinCosTurns` at once, lane for lane the scalar results. Lanes in [0, 1).
    @inlinable
    public static func sinCosTurns(_ t: SIMD4<Double>) -> (sin: SIMD4<Double>, cos: SIMD4<Double>) {
        let quarter = t * 4
        // Quadrant = Double(Int(quarter)) for quarter in [0, 4), by comparisons (exact).
        let zero = SIMD4<Double>.zero, one = SIMD4<Double>(repeating: 1)
        let q = zero.replacing(with: one, where: quarter .>= 1) + zero.replacing(with: one, where: quarter .>= 2)
            + zero.replacing(with: one, where: quarter .>= 3)
        let x = (quarter - q) * 1.570_796_326_794_896_619_2
        let z = x * x
        var sp = SIMD4<Double>(repeating: 1.0 / 355_687_428_096_000)
        sp = sp * z - 1.0 / 1_307_674_368_000
        sp = sp * z + 1.0 / 6_227_020_800
        sp = sp * z - 1.0 / 39_916_800
        sp = sp * z + 1.0 / 362_880
        sp = sp * z - 1.0 / 5_040
        sp = sp * z + 1.0 / 120
        sp = sp * z - 1.0 / 6
        sp = sp * z + 1
        let sinX = x * sp
        var c = SIMD4<Double>(repeating: -1.0 / 6_402_373_705_728_000)
        c = c * z + 1.0 / 20_922_789_888_000
        c = c * z - 1.0 / 87_178_291_200
        c = c * z + 1.0 / 479_001_600
        c = c * z - 1.0 / 3_628_800
        c = c * z + 1.0 / 40_320
        c = c * z - 1.0 / 720
        c = c * z + 1.0 / 24
        c = c * z - 1.0 / 2
        c = c * z + 1
        let cosX = c
        // Quadrants 0…3: (s, c), (c, −s), (−s, −c), (−c, s). Negation flips the sign bit, like
        // the scalar prefix minus (SIMD's prefix minus is 0 − x, which turns −0 into +0).
        let q1 = q .== 1, q2 = q .== 2, q3 = q .== 3
        let signBit = SIMD4<UInt64>(repeating: 0x8000_0000_0000_0000)
        let negSinX = unsafeBitCast(unsafeBitCast(sinX, to: SIMD4<UInt64>.self) ^ signBit, to: SIMD4<Double>.self)
        let negCosX = unsafeBitCast(unsafeBitCast(cosX, to: SIMD4<UInt64>.self) ^ signBit, to: SIMD4<Double>.self)
        var sinOut = sinX, cosOut = cosX
        sinOut.replace(with: cosX, where: q1); cosOut.replace(with: negSinX, where: q1)
        sinOut.replace(with: negSinX, where: q2); cosOut.replace(with: negCosX, where: q2)
        sinOut.replace(with: negCosX, where: q3); cosOut.replace(with: sinX, where: q3)
        return (sinOut, cosOut)
    }
}
