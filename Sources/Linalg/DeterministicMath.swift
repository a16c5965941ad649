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
