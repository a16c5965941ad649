import Foundation
import HyperOpt
import Models
import Testing
import TestSupport

/// A small real-MNIST setting (as LocalRunTests').
private func smallConfig(seed: UInt64 = 1) -> ExperimentConfig {
    var c = ExperimentConfig()
    c.nTrain = 100; c.nValid = 1_000; c.nTest = 200
    c.batchSize = 50; c.validBatchSize = 200
    c.lambdaLearningRate = 0.01
    c.seed = seed
    c.steps = 60
    return c
}

@Suite struct LearningRateScheduleTests {
    @Test("a schedule starts at 1, ends at its final fraction, falls monotonically, and the constant one is 1 everywhere",
          arguments: [LearningRateSchedule.Shape.cosine, .linear])
    func shape(shape: LearningRateSchedule.Shape) {
        let s = LearningRateSchedule(shape: shape, finalFraction: 0.1)
        #expect(s.factor(step: 0, total: 1_000) == 1)
        #expect(abs(s.factor(step: 999, total: 1_000) - 0.1) < 1e-12)
        #expect(abs(s.factor(step: 5_000, total: 1_000) - 0.1) < 1e-12, "past the end: the final factor")
        let f = (0..<1_000).map { s.factor(step: UInt64($0), total: 1_000) }
        #expect(zip(f, f.dropFirst()).allSatisfy { $0 >= $1 })
        #expect(LearningRateSchedule(shape: .constant).factor(step: 500, total: 1_000) == 1)
    }

    @Test("schedules parse from the command line's form and refuse a bad final fraction")
    func parsing() {
        #expect(LearningRateSchedule(parsing: "cosine") == LearningRateSchedule(shape: .cosine, finalFraction: 0.1))
        #expect(LearningRateSchedule(parsing: "linear:0.05") == LearningRateSchedule(shape: .linear, finalFraction: 0.05))
        #expect(LearningRateSchedule(parsing: "exponential") == nil)
        #expect(LearningRateSchedule(parsing: "cosine:x") == nil)
        #expect(!LearningRateSchedule(shape: .cosine, finalFraction: 0).problems().isEmpty)
        #expect(!LearningRateSchedule(shape: .cosine, finalFraction: 2).problems().isEmpty)
        #expect(LearningRateSchedule(parsing: "cosine:0.05")!.description == "cosine:0.05")
    }

    @Test("a run with a schedule takes smaller φ and λ̂ steps late in the run than the constant run at the same state")
    func scheduleShrinksSteps() throws {
        var c = smallConfig()
        c.learningRateSchedule = LearningRateSchedule(shape: .linear, finalFraction: 0.5)
        c.steps = 2
        let data = try RealData.data(for: c)
        let a = LocalRun(config: c, data: data)
        _ = try a.step()
        #expect(a.state.stepSizeFactor == 0.5, "at the last step of two the linear factor is its final fraction")
        var constant = c
        constant.learningRateSchedule = nil
        let b = LocalRun(config: constant, data: data)
        _ = try b.step()
        #expect(a.state.snapshot() == b.state.snapshot(), "the first step is taken at factor 1: the same bits as without a schedule")
        let before = a.state.lambdaHat.array
        _ = try a.step()
        _ = try b.step()
        let movedA = abs(a.state.lambdaHat.array[0] - before[0]), movedB = abs(b.state.lambdaHat.array[0] - before[0])
        #expect(abs(movedA - movedB / 2) <= movedB * 1e-3, "λ̂ moved \(movedA) with the schedule, \(movedB) without")
    }
}

@Suite struct RecipeTests {
    @Test("the paper's recipe changes nothing but its label; the stable recipe fills every setting the user did not give")
    func resolve() {
        var c = StandardConfigs.fig5
        let paper = Recipe.paper.resolve(c)
        var expected = c
        expected.recipe = .paper
        #expect(paper == expected)
        let stable = Recipe.stable.resolve(c)
        #expect(stable.recipe == .stable)
        #expect(stable.hypernetInput == .centred)
        #expect(stable.hypernetInit == .fanIn)
        #expect(abs(stable.sigma - 0.5 / Double(7_850).squareRoot()) < 1e-15)
        #expect(stable.lambdaInit == -9.21, "−ln(10,000) to two decimals")
        #expect(stable.divergenceGuard != nil)
        #expect(stable.learningRateSchedule?.shape == .cosine)
        #expect(stable.phiLearningRate == 3e-4)
        #expect(abs(stable.lambdaLearningRate - 0.003 / Double(7_850).squareRoot()) < 1e-15)
        #expect(stable.validBatchSize == 1_000)
        #expect(stable.problems().isEmpty)
        c.sigma = 0.2
        c.lambdaInit = -3.5
        let kept = Recipe.stable.resolve(c, given: [.sigma, .lambdaInit])
        #expect(kept.sigma == 0.2 && kept.lambdaInit == -3.5, "given settings stay")
        #expect(kept.hypernetInput == .centred)
    }

    @Test("a resolved configuration survives a JSON round trip (checkpoints and the cluster's spec carry it)")
    func codable() throws {
        var c = Recipe.stable.resolve(StandardConfigs.deep)
        c.retrainSteps = 100
        c.answer = .retrained
        c.lambdaWarmupSteps = 7
        let back = try JSONDecoder().decode(ExperimentConfig.self, from: JSONEncoder().encode(c))
        #expect(back == c)
    }

    @Test("bad recipe settings are refused with a sentence each")
    func problems() {
        var c = ExperimentConfig()
        c.answer = .retrained
        #expect(c.problems().contains { $0.contains("retrain-steps") })
        c.retrainSteps = -1
        #expect(c.problems().contains { $0.contains("retrain-steps must be") })
        c = ExperimentConfig()
        c.lambdaWarmupSteps = -2
        #expect(c.problems().contains { $0.contains("lambda-warmup-steps") })
        c = ExperimentConfig()
        var g = DivergenceGuardSettings()
        g.threshold = 1
        c.divergenceGuard = g
        #expect(c.problems().contains { $0.contains("threshold") })
    }

    @Test("during the λ̂ warm-up a step trains φ only; λ̂ moves from the first step after it")
    func warmup() throws {
        var c = smallConfig()
        c.lambdaWarmupSteps = 5
        #expect(!StepPlan(step: 4, config: c).validate && StepPlan(step: 5, config: c).validate)
        let data = try RealData.data(for: c)
        let run = LocalRun(config: c, data: data)
        for _ in 0..<5 {
            let (train, valid) = try run.step()
            #expect(train != nil && valid == nil)
        }
        #expect(run.state.lambdaHat.array == [Float(c.lambdaInit)])
        #expect(run.state.phiVersion == 5 && run.state.lambdaVersion == 0)
        _ = try run.step()
        #expect(run.state.lambdaHat.array != [Float(c.lambdaInit)])
    }
}

@Suite struct DivergenceGuardTests {
    @Test("a blow-up of the validation loss rolls φ, λ̂ and both optimizers back to the last good state, halves the step sizes and advances the versions")
    func rollBack() throws {
        let c = smallConfig()
        let data = try RealData.data(for: c)
        let run = LocalRun(config: c, data: data)
        var s = DivergenceGuardSettings()
        s.warmupSteps = 2; s.snapshotEvery = 3; s.smoothing = 1; s.threshold = 2; s.maxRollbacks = 1
        let watcher = DivergenceGuard(settings: s, state: run.state)
        var good: HyperState.Snapshot? = nil
        for step in 1...6 {
            _ = try run.step()
            #expect(watcher.observe(state: run.state, validBatchLoss: 0.1, finite: true) == .fine)
            if step == 6 { good = run.state.snapshot() }
        }
        _ = try run.step()
        let (phiVersion, lambdaVersion) = (run.state.phiVersion, run.state.lambdaVersion)
        guard case .rolledBack(let why) = watcher.observe(state: run.state, validBatchLoss: 0.5, finite: true) else {
            Issue.record("no roll-back at 5× the minimum"); return
        }
        #expect(why.contains("step 6"), "\(why)")
        let now = run.state.snapshot(), g = try #require(good)
        #expect(now.phi == g.phi && now.lambdaHat == g.lambdaHat && now.phiM == g.phiM && now.phiV == g.phiV
                && now.lambdaM == g.lambdaM && now.phiOptimizerSteps == g.phiOptimizerSteps)
        #expect(run.state.step == 7, "the step count goes on")
        #expect(run.state.phiVersion == phiVersion + 1 && run.state.lambdaVersion == lambdaVersion + 1)
        #expect(run.state.rollbacks == 1 && run.state.stepSizeFactor == 0.5)
        _ = try run.step()
        guard case .gaveUp = watcher.observe(state: run.state, validBatchLoss: .nan, finite: true) else {
            Issue.record("no give-up past maxRollbacks"); return
        }
    }

    @Test("a run whose φ is blown up (×1,000) and later poisoned with a NaN rolls back each time, logs it, and ends as good as before the damage")
    func guardSavesARun() throws {
        var c = smallConfig()
        c.steps = 900
        c.divergenceGuard = DivergenceGuardSettings()
        let data = try RealData.data(for: c)
        let run = LocalRun(config: c, data: data)
        var logged: [String] = []
        run.log = { logged.append($0) }
        for _ in 0..<400 { _ = try run.step() }
        let before = run.evaluate().validLoss
        #expect(before < 0.09)
        for i in 0..<run.state.phi.count { run.state.phi.pointer[i] *= 1_000 }
        #expect(run.evaluate().validLoss > 100 * before, "the damage must show in the loss")
        for _ in 0..<250 { _ = try run.step() }
        #expect(run.state.rollbacks == 1 && logged.count == 1, "\(logged)")
        run.state.phi.pointer[0] = .nan
        _ = try run.step()
        #expect(run.state.rollbacks == 2 && logged.count == 2, "a NaN rolls back at once: \(logged)")
        _ = try run.run()
        let e = run.evaluate()
        #expect(logged.allSatisfy { $0.hasPrefix("divergence guard at step") })
        #expect(e.validLoss.isFinite && e.validLoss < before * 1.05, "valid \(e.validLoss) vs \(before) before the damage")
        #expect(run.state.step == 900 && run.state.stepSizeFactor == 0.25)
    }

    @Test("Retraining at λ̂ is deterministic and trains with φ's optimizer settings")
    func retraining() throws {
        var c = smallConfig()
        c.retrainSteps = 50
        c.phiLearningRate = 3e-3
        let data = try RealData.data(for: c)
        let a = try Retraining.run(config: c, data: data, lambda: [-3])
        let b = try Retraining.run(config: c, data: data, lambda: [-3])
        #expect(a.weights == b.weights && a.outcome == b.outcome)
        #expect(a.outcome.steps == 50 && a.weights.count == c.shape.parameterCount)
        #expect(a.outcome.evaluation.validLoss < 0.09)
    }
}
