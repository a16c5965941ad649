import HyperOpt
import Models
import Testing

/// One invalid field: how to break a valid config and a word the problem must mention.
struct BadField: Sendable, CustomTestStringConvertible {
    let name: String
    let mentions: String
    let apply: @Sendable (inout ExperimentConfig) -> Void
    var testDescription: String { name }

    init(_ name: String, mentions: String, _ apply: @escaping @Sendable (inout ExperimentConfig) -> Void) {
        self.name = name
        self.mentions = mentions
        self.apply = apply
    }
}

@Suite struct ExperimentConfigTests {
    @Test("the defaults and every standard configuration have no problems and no warnings")
    func validConfigs() {
        #expect(ExperimentConfig().problems().isEmpty)
        #expect(ExperimentConfig().warnings().isEmpty)
        for (name, c) in StandardConfigs.benchmarks {
            #expect(c.problems().isEmpty, "\(name): \(c.problems())")
            #expect(c.warnings().isEmpty, "\(name): \(c.warnings())")
        }
        var global = ExperimentConfig()
        global.algorithm = .globalBestResponse
        global.phase1Steps = 5_000
        #expect(global.problems().isEmpty)
    }

    @Test("the Fig. 4 configuration is the paper's setting with σ = 0.5 and λ̂₀ = −3.5")
    func fig4Setting() {
        let c = StandardConfigs.fig4
        #expect(c.algorithm == .joint && c.layers == [784, 10] && c.scope == .global && c.hypernet == .linear)
        #expect(c.nTrain == 10 && c.sigma == 0.5 && c.lambdaInit == -3.5 && c.samplesPerStep == 2)
        #expect(c.norm == .squared && c.loss == .mse)
        #expect(c.phiOptimizer == .adam && c.phiLearningRate == 1e-3 && c.lambdaOptimizer == .adam && c.lambdaLearningRate == 0.003)
        #expect(c.hyperparameterCount == 1 && c.phiCount == 15_700)
        #expect(StandardConfigs.fig7.hyperparameterCount == 10 && StandardConfigs.fig7.phiCount == 86_350)
        #expect(StandardConfigs.fig5.hyperparameterCount == 7_850 && StandardConfigs.fig5.phiCount == 164_860)
    }

    static let badFields: [BadField] = [
        BadField("one layer", mentions: "layers") { $0.layers = [784] },
        BadField("zero-width hidden layer", mentions: "layers") { $0.layers = [784, 0, 10] },
        BadField("wrong input width", mentions: "784") { $0.layers = [783, 10] },
        BadField("wrong output width", mentions: "10") { $0.layers = [784, 9] },
        BadField("nTrain 0", mentions: "n-train") { $0.nTrain = 0 },
        BadField("nValid 0", mentions: "n-valid") { $0.nValid = 0 },
        BadField("nTest negative", mentions: "n-test") { $0.nTest = -1 },
        BadField("nTest past the test set", mentions: "n-test") { $0.nTest = 10_001 },
        BadField("nTrain + nValid past the training set", mentions: "60000") { $0.nTrain = 50_001; $0.nValid = 10_000 },
        BadField("batchSize 0", mentions: "batch-size") { $0.batchSize = 0 },
        BadField("validBatchSize 0", mentions: "valid-batch-size") { $0.validBatchSize = 0 },
        BadField("samplesPerStep 0", mentions: "samples-per-step") { $0.samplesPerStep = 0 },
        BadField("samplesPerStep too many", mentions: "samples-per-step") { $0.samplesPerStep = 4097 },
        BadField("sigma negative", mentions: "sigma") { $0.sigma = -0.1 },
        BadField("sigma NaN", mentions: "sigma") { $0.sigma = .nan },
        BadField("sigma infinite", mentions: "sigma") { $0.sigma = .infinity },
        BadField("steps negative", mentions: "steps") { $0.steps = -1 },
        BadField("global phase1Steps negative", mentions: "phase1-steps") { $0.algorithm = .globalBestResponse; $0.phase1Steps = -1 },
        BadField("global phase1Steps past steps", mentions: "phase1-steps") { $0.algorithm = .globalBestResponse; $0.steps = 10; $0.phase1Steps = 11 },
        BadField("phi lr 0", mentions: "phi-lr") { $0.phiLearningRate = 0 },
        BadField("phi lr negative", mentions: "phi-lr") { $0.phiLearningRate = -1e-3 },
        BadField("phi lr NaN", mentions: "phi-lr") { $0.phiLearningRate = .nan },
        BadField("phi lr infinite", mentions: "phi-lr") { $0.phiLearningRate = .infinity },
        BadField("lambda lr 0", mentions: "lambda-lr") { $0.lambdaLearningRate = 0 },
        BadField("lambda lr NaN", mentions: "lambda-lr") { $0.lambdaLearningRate = .nan },
        BadField("lambda lr infinite", mentions: "lambda-lr") { $0.lambdaLearningRate = .infinity },
        BadField("lambdaInit NaN", mentions: "lambda-init") { $0.lambdaInit = .nan },
        BadField("lambdaInit infinite", mentions: "lambda-init") { $0.lambdaInit = -.infinity },
        BadField("prior std negative", mentions: "prior") { $0.priorStd = -1 },
        BadField("prior std NaN", mentions: "prior") { $0.priorStd = .nan },
        BadField("prior min above max", mentions: "prior") { $0.priorMin = 5; $0.priorMax = 4 },
        BadField("evalEvery negative", mentions: "eval-every") { $0.evalEvery = -1 },
        BadField("huge hypernet", mentions: "hypernet") { $0.hypernet = .mlp(hidden: 100_001) },
    ]

    @Test("problems() reports each bad field in a sentence that names it", arguments: badFields)
    func badField(_ bad: BadField) {
        var c = ExperimentConfig()
        bad.apply(&c)
        let p = c.problems()
        #expect(!p.isEmpty, "\(bad.name) was accepted")
        #expect(p.contains { $0.contains(bad.mentions) }, "\(bad.name): \(p)")
    }

    /// Fields that make the run produce NaN or read out of bounds but that `problems()` does
    /// not check (found while writing these tests; see the report).
    static let uncheckedBadFields: [BadField] = [
        BadField("initScale NaN", mentions: "init") { $0.initScale = .nan },
        BadField("initScale infinite", mentions: "init") { $0.initScale = .infinity },
        BadField("global prior mean NaN", mentions: "prior") { $0.algorithm = .globalBestResponse; $0.priorMean = .nan },
        BadField("global prior min NaN", mentions: "prior") { $0.algorithm = .globalBestResponse; $0.priorMin = .nan },
        BadField("phi lr beyond Float range", mentions: "phi-lr") { $0.phiLearningRate = 1e39 },
        BadField("lambda lr beyond Float range", mentions: "lambda-lr") { $0.lambdaLearningRate = 1e39 },
        BadField("hypernet width 0", mentions: "hypernet") { $0.hypernet = .mlp(hidden: 0) },
    ]

    @Test("problems() also rejects non-finite scales, NaN prior bounds, learning rates Float cannot hold and empty hypernets",
          arguments: uncheckedBadFields)
    func uncheckedBadField(_ bad: BadField) {
        var c = ExperimentConfig()
        bad.apply(&c)
        #expect(!c.problems().isEmpty, "\(bad.name) was accepted")
    }

    @Test("every problem is reported, not just the first")
    func allProblems() {
        var c = ExperimentConfig()
        c.nTrain = 0; c.batchSize = 0; c.sigma = -1; c.evalEvery = -1
        #expect(c.problems().count == 4, "\(c.problems())")
    }

    @Test("a tiny σ for the joint algorithm is warned about; σ ≥ 0.05 is not", arguments: [0, 1e-5, 0.003, 0.049])
    func tinySigmaWarns(sigma: Double) {
        var c = StandardConfigs.fig4
        c.sigma = sigma
        #expect(c.problems().isEmpty)
        #expect(c.warnings().count == 1 && c.warnings()[0].contains("sigma"), "\(c.warnings())")
    }

    @Test("σ of 0.05 and above, and algorithms that do not sample around λ̂ with σ, get no σ warning")
    func noSigmaWarning() {
        var c = StandardConfigs.fig4
        for s in [0.05, 0.5, 3] {
            c.sigma = s
            #expect(c.warnings().isEmpty, "σ = \(s)")
        }
        c.sigma = 0
        c.algorithm = .globalBestResponse
        #expect(c.warnings().isEmpty)
    }

    @Test("a configuration survives a Codable round trip unchanged")
    func codable() throws {
        var c = StandardConfigs.fig5
        c.seed = 0xDEAD_BEEF_1234; c.sigma = 0.25; c.algorithm = .simplifiedJoint
        let data = try JSONEncoder().encode(c)
        #expect(try JSONDecoder().decode(ExperimentConfig.self, from: data) == c)
    }

    @Test("the φ initialisation is in the resolved configuration when chosen, and absent (normal) by default")
    func hypernetInitCodable() throws {
        var c = StandardConfigs.fig5
        c.hypernetInit = .fanIn
        let data = try JSONEncoder().encode(c)
        #expect(String(decoding: data, as: UTF8.self).contains(#""hypernetInit":"fan-in""#))
        #expect(try JSONDecoder().decode(ExperimentConfig.self, from: data) == c)
        let plain = String(decoding: try JSONEncoder().encode(StandardConfigs.fig5), as: UTF8.self)
        #expect(!plain.contains("hypernetInit"))
    }

    @Test("with thousands of hyperparameters σ = 1/√H (offset norm ≈ 1) is not warned about; σ·√H < 0.05 is")
    func sigmaWarningScalesWithH() {
        var c = StandardConfigs.fig5
        c.layers = [784, 100, 10]
        let h = Double(c.hyperparameterCount)
        c.sigma = 1 / h.squareRoot()
        #expect(c.warnings().isEmpty, "\(c.warnings())")
        c.sigma = 0.01 / h.squareRoot()
        #expect(c.warnings().count == 1 && c.warnings()[0].contains("sigma"), "\(c.warnings())")
    }
}

import Foundation
