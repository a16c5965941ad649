import Testing
import Linalg

/// An independent Philox4x32-10 block function written from Salmon et al. (SC'11) and the
/// Random123 reference (`philox.h`), used as the oracle for `Philox`. It is itself checked
/// against Random123's published known-answer vectors (`kat_vectors`) below.
enum ReferencePhilox {
    typealias Block = (UInt32, UInt32, UInt32, UInt32)

    static func block(counter: Block, key: (UInt32, UInt32)) -> Block {
        var (x0, x1, x2, x3) = counter
        var (k0, k1) = key
        for round in 0..<10 {
            if round > 0 { k0 = k0 &+ 0x9E37_79B9; k1 = k1 &+ 0xBB67_AE85 }
            let p0 = UInt64(0xD251_1F53) * UInt64(x0)
            let p1 = UInt64(0xCD9E_8D57) * UInt64(x2)
            let hi0 = UInt32(p0 >> 32), lo0 = UInt32(truncatingIfNeeded: p0)
            let hi1 = UInt32(p1 >> 32), lo1 = UInt32(truncatingIfNeeded: p1)
            (x0, x1, x2, x3) = (hi1 ^ x1 ^ k0, lo1, hi0 ^ x3 ^ k1, lo0)
        }
        return (x0, x1, x2, x3)
    }

    static func words(_ b: Block) -> [UInt32] { [b.0, b.1, b.2, b.3] }

    /// The counter block `Philox(seed:step:task:stream:)` is documented (in its `init`) to
    /// start from: key = the seed's two 32-bit halves, counter = (block index, low half of the
    /// step, high half of the step ^ task << 8, stream ^ task >> 24).
    static func counter(block: UInt32, step: UInt64, task: UInt32, stream: UInt32) -> Block {
        (block, UInt32(truncatingIfNeeded: step), UInt32(truncatingIfNeeded: step >> 32) ^ (task << 8), stream ^ (task >> 24))
    }

    static func key(seed: UInt64) -> (UInt32, UInt32) {
        (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
    }
}

/// Draws `n` 32-bit words from `Philox` in output order (`next()` yields word 0 in its high
/// half and word 1 in its low half).
func philoxWords(_ rng: inout Philox, _ n: Int) -> [UInt32] {
    precondition(n % 2 == 0)
    var out: [UInt32] = []
    for _ in 0..<(n / 2) {
        let x = rng.next()
        out.append(UInt32(x >> 32))
        out.append(UInt32(truncatingIfNeeded: x))
    }
    return out
}

@Suite struct PhiloxTests {
    /// Random123 `kat_vectors`, philox4x32 with 10 rounds: (counter, key, expected output).
    static let katVectors: [(counter: [UInt32], key: [UInt32], expected: [UInt32])] = [
        ([0, 0, 0, 0], [0, 0], [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]),
        ([0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff], [0xffff_ffff, 0xffff_ffff],
         [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]),
        ([0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344], [0xa409_3822, 0x299f_31d0],
         [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]),
    ]

    @Test("the reference block function reproduces Random123's three philox4x32-10 known answers")
    func referenceKnownAnswers() {
        for v in Self.katVectors {
            let out = ReferencePhilox.block(counter: (v.counter[0], v.counter[1], v.counter[2], v.counter[3]),
                                            key: (v.key[0], v.key[1]))
            #expect(ReferencePhilox.words(out) == v.expected, "counter \(v.counter) key \(v.key)")
        }
    }

    @Test("Philox(seed 0, step 0, task 0, stream 0) yields Random123's first known answer")
    func knownAnswerZero() {
        // key (0,0), counter (0,0,0,0): the only one of the three vectors the public API can
        // reach, because the first counter word (the block index) always starts at 0.
        var rng = Philox(seed: 0, step: 0, task: 0, stream: 0)
        #expect(rng.next() == 0x6627_e8d5_e169_c58d)
        #expect(rng.next() == 0xbc57_ac4c_9b00_dbd8)
    }

    @Test("Philox with all-ones key and counter words 1–3 matches the reference block function")
    func allOnesKeyAndCounter() {
        // The second known-answer vector needs counter word 0 = 0xffffffff as well, i.e. the
        // 2³²−1-th block of the stream; here words 1–3 are all ones (step = UInt64.max,
        // task = 0, stream = 0xffffffff) and blocks 0…3 are checked against the reference.
        var rng = Philox(seed: .max, step: .max, task: 0, stream: 0xffff_ffff)
        let got = philoxWords(&rng, 16)
        var want: [UInt32] = []
        for b in UInt32(0)..<4 {
            want += ReferencePhilox.words(ReferencePhilox.block(
                counter: (b, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff), key: (0xffff_ffff, 0xffff_ffff)))
        }
        #expect(got == want)
    }

    @Test("every (seed, step, task, stream) stream is the reference block sequence at its documented counter",
          arguments: [
            (UInt64(0), UInt64(0), UInt32(0), UInt32(0)),
            (1, 0, 0, RandomStream.lambdaSample.rawValue),
            (0x299f_31d0_a409_3822, 0x0370_7344_1319_8a2e, 0, 0x85a3_08d3),
            (42, 12_345, 3, RandomStream.trainBatch.rawValue),
            (7, 1 << 40, 0x00ab_cdef, RandomStream.validBatch.rawValue),
            (.max, 99, 0xffff_ffff, RandomStream.trial.rawValue),
          ])
    func matchesReference(seed: UInt64, step: UInt64, task: UInt32, stream: UInt32) {
        var rng = Philox(seed: seed, step: step, task: task, stream: stream)
        let blocks: UInt32 = 40
        let got = philoxWords(&rng, Int(blocks) * 4)
        var want: [UInt32] = []
        for b in 0..<blocks {
            want += ReferencePhilox.words(ReferencePhilox.block(
                counter: ReferencePhilox.counter(block: b, step: step, task: task, stream: stream),
                key: ReferencePhilox.key(seed: seed)))
        }
        #expect(got == want)
    }

    @Test("the same (seed, step, task, stream) always gives the same sequence, and a copy continues identically")
    func reproducible() {
        var a = Philox(seed: 9, step: 100, task: 2, stream: RandomStream.lambdaSample.rawValue)
        var b = Philox(seed: 9, step: 100, task: 2, stream: RandomStream.lambdaSample.rawValue)
        let xa = (0..<1000).map { _ in a.next() }
        let xb = (0..<1000).map { _ in b.next() }
        #expect(xa == xb)
        // Value semantics: a copy taken mid-block (two of four words used) and mid-pair of
        // Box–Muller normals continues with the same numbers.
        _ = a.nextUnit()
        _ = a.nextNormal()
        var c = a
        #expect((0..<50).map { _ in a.nextNormal() } == (0..<50).map { _ in c.nextNormal() })
    }

    @Test("changing any one of seed, step, task or stream gives a different, uncorrelated sequence")
    func streamIndependence() {
        let base = (seed: UInt64(5), step: UInt64(17), task: UInt32(1), stream: UInt32(2))
        let variants: [(String, UInt64, UInt64, UInt32, UInt32)] = [
            ("seed", base.seed + 1, base.step, base.task, base.stream),
            ("seed high half", base.seed | 1 << 40, base.step, base.task, base.stream),
            ("step", base.seed, base.step + 1, base.task, base.stream),
            ("step high half", base.seed, base.step | 1 << 33, base.task, base.stream),
            ("task", base.seed, base.step, base.task + 1, base.stream),
            ("stream", base.seed, base.step, base.task, base.stream + 1),
        ]
        let n = 20_000
        var r0 = Philox(seed: base.seed, step: base.step, task: base.task, stream: base.stream)
        let u0 = (0..<n).map { _ in r0.nextUnit() }
        for (name, seed, step, task, stream) in variants {
            var r = Philox(seed: seed, step: step, task: task, stream: stream)
            let u = (0..<n).map { _ in r.nextUnit() }
            let equal = zip(u0, u).filter { $0 == $1 }.count
            #expect(equal == 0, "\(name): \(equal) equal draws")
            // Pearson correlation of two independent uniform samples: sd ≈ 1/√n ≈ 0.007.
            let c = correlation(u0, u)
            #expect(abs(c) < 0.04, "\(name): correlation \(c)")
        }
    }

    @Test("tasks and steps used by a run (≤ 4096 tasks, ≤ 10⁹ steps) map to distinct streams")
    func noCounterCollisions() {
        // The counter packs (step, task) into two words; within realistic ranges no two
        // (step, task) pairs may share a counter prefix.
        var seen = Set<[UInt32]>()
        for step in [UInt64(0), 1, 255, 256, 65_536, 1 << 31, 1_000_000_000] {
            for task in [UInt32(0), 1, 2, 255, 256, 4095] {
                var r = Philox(seed: 3, step: step, task: task, stream: RandomStream.lambdaSample.rawValue)
                let w = philoxWords(&r, 4)
                #expect(seen.insert(w).inserted, "step \(step) task \(task) repeats another stream")
            }
        }
    }

    @Test("uniform draws over 10⁵ samples have mean 1/2 and variance 1/12 and lie in [0, 1)")
    func uniformMoments() {
        var rng = Philox(seed: 11, step: 0, task: 0, stream: 0)
        let n = 100_000
        let u = (0..<n).map { _ in rng.nextUnit() }
        #expect(u.allSatisfy { $0 >= 0 && $0 < 1 })
        let m = mean(u)
        let v = variance(u, mean: m)
        // Standard errors: mean 0.0009, variance 0.0002.
        #expect(abs(m - 0.5) < 0.005, "mean \(m)")
        #expect(abs(v - 1.0 / 12) < 0.0015, "variance \(v)")
        // Decile histogram: each bin 10 % ± 0.5 %.
        var bins = [Int](repeating: 0, count: 10)
        for x in u { bins[Int(x * 10)] += 1 }
        for (i, b) in bins.enumerated() { #expect(abs(Double(b) / Double(n) - 0.1) < 0.005, "bin \(i): \(b)") }
    }

    @Test("normal draws over 10⁵ samples have mean 0, variance 1 and kurtosis 3")
    func normalMoments() {
        var rng = Philox(seed: 12, step: 3, task: 1, stream: RandomStream.lambdaSample.rawValue)
        let n = 100_000
        let z = (0..<n).map { _ in rng.nextNormal() }
        #expect(z.allSatisfy { $0.isFinite })
        let m = mean(z)
        let v = variance(z, mean: m)
        let k = z.reduce(0.0) { $0 + pow4($1 - m) } / Double(n) / (v * v)
        let skew = z.reduce(0.0) { $0 + pow3($1 - m) } / Double(n) / pow3(v.squareRoot())
        // Standard errors: mean 0.003, variance 0.0045, skewness 0.008, kurtosis 0.015.
        #expect(abs(m) < 0.02, "mean \(m)")
        #expect(abs(v - 1) < 0.025, "variance \(v)")
        #expect(abs(skew) < 0.05, "skewness \(skew)")
        #expect(abs(k - 3) < 0.1, "kurtosis \(k)")
        // Tail mass beyond ±1.96 is 5 %.
        let tail = Double(z.filter { abs($0) > 1.959964 }.count) / Double(n)
        #expect(abs(tail - 0.05) < 0.004, "tail \(tail)")
    }

    @Test("the two normals of a Box–Muller pair are uncorrelated and x² + y² has the Exp(½) mean 2")
    func normalPairs() {
        var rng = Philox(seed: 14, step: 0, task: 0, stream: RandomStream.lambdaSample.rawValue)
        let n = 50_000
        var first: [Double] = [], second: [Double] = [], r2 = 0.0
        for _ in 0..<n {
            let x = rng.nextNormal(), y = rng.nextNormal()
            first.append(x); second.append(y); r2 += x * x + y * y
        }
        let c = correlation(first, second)
        let c2 = correlation(first.map { $0 * $0 }, second.map { $0 * $0 })
        #expect(abs(c) < 0.02, "correlation \(c)")
        #expect(abs(c2) < 0.02, "correlation of squares \(c2)")
        // x² + y² ~ Exp with mean 2 (sd 2): standard error of the mean 0.009.
        #expect(abs(r2 / Double(n) - 2) < 0.04, "mean x² + y² = \(r2 / Double(n))")
        // A uniform drawn between the two halves of a pair does not disturb the pair.
        var a = Philox(seed: 15, step: 1, task: 0, stream: 2), b = a
        let a1 = a.nextNormal(), a2 = a.nextNormal()
        let b1 = b.nextNormal()
        _ = b.nextUnit()
        #expect(b1 == a1 && b.nextNormal() == a2)
    }

    @Test("nextInt(below:) stays in range and is uniform over small ranges", arguments: [1, 3, 10, 1000])
    func integers(n: Int) {
        var rng = Philox(seed: 13, step: 0, task: 0, stream: RandomStream.trainBatch.rawValue)
        let draws = 50_000
        var counts = [Int](repeating: 0, count: n)
        for _ in 0..<draws {
            let k = rng.nextInt(below: n)
            #expect(k >= 0 && k < n)
            counts[k] += 1
        }
        // Chi-squared with n−1 degrees of freedom: mean n−1, sd √(2(n−1)); allow 6 sd.
        let e = Double(draws) / Double(n)
        let chi2 = counts.reduce(0.0) { $0 + (Double($1) - e) * (Double($1) - e) / e }
        let dof = Double(n - 1)
        #expect(chi2 <= dof + 6 * (2 * dof).squareRoot() + 1e-9, "chi² \(chi2) with \(n - 1) dof")
    }
}

func mean(_ x: [Double]) -> Double { x.reduce(0, +) / Double(x.count) }
func variance(_ x: [Double], mean m: Double) -> Double { x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count - 1) }
func pow3(_ x: Double) -> Double { x * x * x }
func pow4(_ x: Double) -> Double { let y = x * x; return y * y }
func correlation(_ a: [Double], _ b: [Double]) -> Double {
    let ma = mean(a), mb = mean(b)
    var sab = 0.0, saa = 0.0, sbb = 0.0
    for (x, y) in zip(a, b) { sab += (x - ma) * (y - mb); saa += (x - ma) * (x - ma); sbb += (y - mb) * (y - mb) }
    return sab / (saa * sbb).squareRoot()
}
