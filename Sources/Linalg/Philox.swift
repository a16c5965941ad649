/// Philox4x32-10, the counter-based generator of Salmon et al. (SC'11), as used by
/// numpy, JAX and cuRAND.
///
/// Hypertrain draws every random number from `Philox(key: seed, counter: (step, task, stream))`,
/// so the λ samples and minibatch of task `k` at step `t` are a pure function of
/// `(seed, t, k)` — never of which process computes them. That is what lets a distributed
/// run in sync mode reproduce the single-process run bit for bit.
public struct Philox: RandomNumberGenerator, Sendable {
    private let k0: UInt32
    private let k1: UInt32
    private var c0: UInt32 = 0      // block counter within the stream
    private let c1: UInt32
    private let c2: UInt32
    private let c3: UInt32
    private var buffer: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
    private var used = 4
    private var spareNormal: Double? = nil

    /// A stream identified by the run seed and a three-part counter prefix.
    /// - Parameters:
    ///   - seed: the run seed (64 bits of key).
    ///   - step: the optimisation step.
    ///   - task: the task index within the step.
    ///   - stream: what the numbers are for (λ samples, minibatch, init, …), see `RandomStream`.
    public init(seed: UInt64, step: UInt64, task: UInt32, stream: UInt32) {
        k0 = UInt32(truncatingIfNeeded: seed)
        k1 = UInt32(truncatingIfNeeded: seed >> 32)
        c1 = UInt32(truncatingIfNeeded: step)
        c2 = UInt32(truncatingIfNeeded: step >> 32) ^ (task << 8)
        c3 = stream ^ (task >> 24)
    }

    @inline(__always)
    private static func mulhilo(_ a: UInt32, _ b: UInt32) -> (hi: UInt32, lo: UInt32) {
        let p = UInt64(a) &* UInt64(b)
        return (UInt32(truncatingIfNeeded: p >> 32), UInt32(truncatingIfNeeded: p))
    }

    private mutating func refill() {
        var x0 = c0, x1 = c1, x2 = c2, x3 = c3
        var key0 = k0, key1 = k1
        for _ in 0..<10 {
            let (hi0, lo0) = Self.mulhilo(0xD251_1F53, x0)
            let (hi1, lo1) = Self.mulhilo(0xCD9E_8D57, x2)
            let n0 = hi1 ^ x1 ^ key0
            let n1 = lo1
            let n2 = hi0 ^ x3 ^ key1
            let n3 = lo0
            x0 = n0; x1 = n1; x2 = n2; x3 = n3
            key0 &+= 0x9E37_79B9
            key1 &+= 0xBB67_AE85
        }
        buffer = (x0, x1, x2, x3)
        c0 &+= 1
        used = 0
    }

    @inline(__always)
    private mutating func next32() -> UInt32 {
        if used == 4 { refill() }
        defer { used += 1 }
        switch used {
        case 0: return buffer.0
        case 1: return buffer.1
        case 2: return buffer.2
        default: return buffer.3
        }
    }

    /// Next 64 random bits.
    public mutating func next() -> UInt64 {
        UInt64(next32()) << 32 | UInt64(next32())
    }

    /// A uniform `Double` in [0, 1) with 53 random bits.
    public mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// A standard normal `Double` (Box–Muller; each pair of uniforms gives two normals,
    /// `r·cos θ` first, then `r·sin θ`). The logarithm and sine/cosine are evaluated by
    /// `DeterministicMath` (plain IEEE arithmetic, no libm), so every host draws the same bits.
    public mutating func nextNormal() -> Double {
        if let n = spareNormal {
            spareNormal = nil
            return n
        }
        var u1 = nextUnit()
        if u1 < 1e-300 { u1 = 1e-300 }
        let u2 = nextUnit()
        let r = (-2 * DeterministicMath.log(u1)).squareRoot()
        let (sine, cosine) = DeterministicMath.sinCosTurns(u2)
        spareNormal = r * sine
        return r * cosine
    }

    /// The next eight normals, exactly what eight calls of `nextNormal()` would return (in
    /// the order `first[0], second[0], first[1], second[1], …`), computed four Box–Muller
    /// pairs at a time: four Philox blocks in SIMD lanes, then the vector `DeterministicMath`
    /// functions, which repeat the scalar operations lane by lane. Falls back to the scalar
    /// path when a spare normal is pending or the current block is partly used.
    public mutating func nextNormals8() -> (first: SIMD4<Double>, second: SIMD4<Double>) {
        guard used == 4, spareNormal == nil else {
            var a = SIMD4<Double>(), b = SIMD4<Double>()
            for j in 0..<4 { a[j] = nextNormal(); b[j] = nextNormal() }
            return (a, b)
        }
        // Philox4x32-10 on the counters c0 … c0+3 (one block per Box–Muller pair).
        var x0 = SIMD4<UInt32>(repeating: c0) &+ SIMD4<UInt32>(0, 1, 2, 3)
        var x1 = SIMD4<UInt32>(repeating: c1), x2 = SIMD4<UInt32>(repeating: c2), x3 = SIMD4<UInt32>(repeating: c3)
        var key0 = k0, key1 = k1
        for _ in 0..<10 {
            let p0 = SIMD4<UInt64>(truncatingIfNeeded: x0) &* 0xD251_1F53
            let p1 = SIMD4<UInt64>(truncatingIfNeeded: x2) &* 0xCD9E_8D57
            let hi0 = SIMD4<UInt32>(truncatingIfNeeded: p0 &>> 32), lo0 = SIMD4<UInt32>(truncatingIfNeeded: p0)
            let hi1 = SIMD4<UInt32>(truncatingIfNeeded: p1 &>> 32), lo1 = SIMD4<UInt32>(truncatingIfNeeded: p1)
            let n0 = hi1 ^ x1 ^ SIMD4(repeating: key0)
            let n2 = hi0 ^ x3 ^ SIMD4(repeating: key1)
            x0 = n0; x1 = lo1; x2 = n2; x3 = lo0
            key0 &+= 0x9E37_79B9
            key1 &+= 0xBB67_AE85
        }
        c0 &+= 4
        return Self.boxMuller(x0, x1, x2, x3)
    }

    /// The next sixteen normals, exactly what two calls of `nextNormals8()` (sixteen of
    /// `nextNormal()`) would return: `(first, second)` of blocks c0 … c0+3, then of c0+4 … c0+7.
    /// The eight Philox blocks run in the eight 32-bit lanes of one AVX2 register: each
    /// round's 32×32→64-bit products are formed for the even and the odd lanes separately
    /// (`vpmuludq`) and split back into high and low words.
    public mutating func nextNormals16() -> (SIMD4<Double>, SIMD4<Double>, SIMD4<Double>, SIMD4<Double>) {
        guard used == 4, spareNormal == nil else {
            let (a, b) = nextNormals8()
            let (c, d) = nextNormals8()
            return (a, b, c, d)
        }
        var x0 = SIMD8<UInt32>(repeating: c0) &+ SIMD8<UInt32>(0, 1, 2, 3, 4, 5, 6, 7)
        var x1 = SIMD8<UInt32>(repeating: c1), x2 = SIMD8<UInt32>(repeating: c2), x3 = SIMD8<UInt32>(repeating: c3)
        var key0 = SIMD8<UInt32>(repeating: k0), key1 = SIMD8<UInt32>(repeating: k1)
        for _ in 0..<10 {
            let (hi0, lo0) = Self.mulhilo8(0xD251_1F53, x0)
            let (hi1, lo1) = Self.mulhilo8(0xCD9E_8D57, x2)
            let n0 = hi1 ^ x1 ^ key0
            let n2 = hi0 ^ x3 ^ key1
            x0 = n0; x1 = lo1; x2 = n2; x3 = lo0
            key0 &+= SIMD8(repeating: 0x9E37_79B9)
            key1 &+= SIMD8(repeating: 0xBB67_AE85)
        }
        c0 &+= 8
        let (a, b) = Self.boxMuller(x0.lowHalf, x1.lowHalf, x2.lowHalf, x3.lowHalf)
        let (c, d) = Self.boxMuller(x0.highHalf, x1.highHalf, x2.highHalf, x3.highHalf)
        return (a, b, c, d)
    }

    /// `mulhilo` of `m` (below 2³²) and each lane of `x`.
    @inline(__always)
    private static func mulhilo8(_ m: UInt64, _ x: SIMD8<UInt32>) -> (hi: SIMD8<UInt32>, lo: SIMD8<UInt32>) {
        let w = unsafeBitCast(x, to: SIMD4<UInt64>.self)
        let even = (w & 0xffff_ffff) &* m          // lanes 0, 2, 4, 6 (the low words)
        let odd = (w &>> 32) &* m                   // lanes 1, 3, 5, 7
        let lo = (even & 0xffff_ffff) | (odd &<< 32)
        let hi = (even &>> 32) | (odd & 0xffff_ffff_0000_0000)
        return (unsafeBitCast(hi, to: SIMD8<UInt32>.self), unsafeBitCast(lo, to: SIMD8<UInt32>.self))
    }

    /// Box–Muller on four Philox blocks' outputs (one pair of normals per block), as
    /// `nextNormal()` computes it.
    @inline(__always)
    private static func boxMuller(_ x0: SIMD4<UInt32>, _ x1: SIMD4<UInt32>, _ x2: SIMD4<UInt32>, _ x3: SIMD4<UInt32>)
        -> (first: SIMD4<Double>, second: SIMD4<Double>) {
        // nextUnit() twice per block: (w0 << 32 | w1) >> 11 and (w2 << 32 | w3) >> 11, below 2⁵³,
        // so the conversions are exact.
        let v1 = SIMD4<UInt64>(truncatingIfNeeded: x0) &<< 21 | SIMD4<UInt64>(truncatingIfNeeded: x1 &>> 11)
        let v2 = SIMD4<UInt64>(truncatingIfNeeded: x2) &<< 21 | SIMD4<UInt64>(truncatingIfNeeded: x3 &>> 11)
        var u1 = Self.exactDouble(v1) * 0x1p-53
        let u2 = Self.exactDouble(v2) * 0x1p-53
        u1.replace(with: 1e-300, where: u1 .< 1e-300)
        let r = SIMDSquareRoot.of(-2 * DeterministicMath.log(u1))
        let (sine, cosine) = DeterministicMath.sinCosTurns(u2)
        return (r * cosine, r * sine)
    }

    /// `Double(v)` for lanes below 2⁵³ (exact), in vector operations: each 26/27-bit half is
    /// placed in the significand of 2⁵² and the two exact parts are combined exactly.
    @inline(__always)
    private static func exactDouble(_ v: SIMD4<UInt64>) -> SIMD4<Double> {
        let magic: UInt64 = 0x4330_0000_0000_0000                // 2⁵²
        let hi = unsafeBitCast((v &>> 26) | magic, to: SIMD4<Double>.self) - 0x1p52
        let lo = unsafeBitCast((v & 0x3ff_ffff) | magic, to: SIMD4<Double>.self) - 0x1p52
        return hi * 0x1p26 + lo
    }

    /// Moves the block counter `n` blocks ahead, dropping any buffered words or spare normal
    /// (tests: reaching the counter's wrap-around).
    mutating func skipBlocks(_ n: UInt32) {
        c0 &+= n
        used = 4
        spareNormal = nil
    }

    /// A uniform integer in `0..<n` (Lemire's unbiased method via the standard library).
    public mutating func nextInt(below n: Int) -> Int {
        Int.random(in: 0..<n, using: &self)
    }
}



/// The purposes random numbers are drawn for; each gets its own Philox stream.
public enum RandomStream: UInt32, Sendable {
    case initialization = 1
    case lambdaSample = 2
    case trainBatch = 3
    case validBatch = 4
    case testBatch = 5
    case proposal = 6
    case trial = 7
}
