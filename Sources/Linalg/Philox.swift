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
