import HyperOpt
import Models
import Testing
import TestSupport

/// The exact bits of short runs, recorded with the code before the step-throughput work of
/// 2026-11-29 (commit 4d02ba5): kernels may be restructured (fused passes, other loop orders,
/// more SIMD lanes), but every element must still see the same floating-point operations in
/// the same order, because sync mode must equal the single process and the recorded results
/// (README, EXPERIMENTS.md) depend on the bits. A changed hash here means changed numbers.
@Suite struct BitIdentityTests {
    struct Case: Sendable, CustomStringConvertible {
        let name: String
        let hash: UInt64
        var description: String { name }
    }

    static func config(_ name: String) -> ExperimentConfig {
        var c = ExperimentConfig()
        c.nTrain = 100; c.nValid = 1_000; c.nTest = 100
        c.batchSize = 50; c.validBatchSize = 200
        c.lambdaLearningRate = 0.01
        c.steps = 12
        switch name {
        case "linear-global": c.nTrain = 10; c.batchSize = 1000
        case "linear-per-class": c.scope = .perClass; c.batchSize = 100
        case "factorized-per-weight": c.scope = .perWeight; c.hypernet = .factorized(hidden: 10)
        case "factorized-deep":
            c.layers = [784, 100, 100, 10]; c.scope = .perWeight; c.hypernet = .factorized(hidden: 10)
        case "mlp-hidden-centred":
            c.layers = [784, 20, 10]; c.scope = .perWeight; c.hypernet = .mlp(hidden: 5); c.hypernetInput = .centred
            c.samplesPerStep = 3
        case "factorized-odd-width":
            c.layers = [784, 13, 10]; c.scope = .perLayer; c.hypernet = .factorized(hidden: 7); c.samplesPerStep = 1
        case "global-best-response":
            c.algorithm = .globalBestResponse; c.phase1Steps = 6; c.scope = .perWeight; c.hypernet = .factorized(hidden: 10)
        case "simplified-sgd":
            c.algorithm = .simplifiedJoint; c.phiOptimizer = .sgd; c.scope = .perLayer; c.hypernet = .mlp(hidden: 4)
            c.layers = [784, 30, 10]
        default: fatalError(name)
        }
        return c
    }

    /// 64-bit FNV-1a over the bit patterns of φ, λ̂ and both optimizers' moments.
    static func hash(_ s: HyperState.Snapshot) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for array in [s.phi, s.lambdaHat, s.phiM, s.phiV, s.lambdaM, s.lambdaV] {
            for x in array { h = (h ^ UInt64(x.bitPattern)) &* 0x0000_0100_0000_01b3 }
        }
        for n in [s.step, s.phiVersion, s.lambdaVersion, UInt64(s.phiOptimizerSteps), UInt64(s.lambdaOptimizerSteps)] {
            h = (h ^ n) &* 0x0000_0100_0000_01b3
        }
        return h
    }

    static let cases: [Case] = [
        Case(name: "linear-global", hash: 0xd767c585cbb1fc0),
        Case(name: "linear-per-class", hash: 0xd56d23e7d3705622),
        Case(name: "factorized-per-weight", hash: 0xb858afb539a7e38d),
        Case(name: "factorized-deep", hash: 0xf142c7fb4b6167ef),
        Case(name: "mlp-hidden-centred", hash: 0xc80d01eca333715),
        Case(name: "factorized-odd-width", hash: 0xa1010d8c308d2c7b),
        Case(name: "global-best-response", hash: 0xec874f1982077395),
        Case(name: "simplified-sgd", hash: 0xa91d6e8d946ace80),
    ]

    @Test("12 steps of LocalRun give the recorded bits of φ, λ̂ and the optimizer state", arguments: cases)
    func recordedBits(_ c: Case) throws {
        let config = Self.config(c.name)
        let run = LocalRun(config: config, data: try RealData.data(for: config))
        for _ in 0..<config.steps { _ = try run.step() }
        let s = run.state.snapshot()
        #expect(s.allFinite)
        let h = Self.hash(s)
        #expect(h == c.hash, "\(c.name): hash 0x\(String(h, radix: 16))")
    }
}
