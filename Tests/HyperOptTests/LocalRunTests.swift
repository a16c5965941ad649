import HyperOpt
import Linalg
import Models
import Testing
import TestSupport

/// A small real-MNIST setting: 100 training points, minibatches of 50 (so sampling matters),
/// a 200-point validation batch drawn from 1,000.
private func smallConfig(_ algorithm: Algorithm = .joint, seed: UInt64 = 1) -> ExperimentConfig {
    var c = ExperimentConfig()
    c.algorithm = algorithm
    c.nTrain = 100; c.nValid = 1_000; c.nTest = 200
    c.batchSize = 50; c.validBatchSize = 200
    c.samplesPerStep = 2
    c.lambdaLearningRate = 0.01
    c.seed = seed
    c.steps = 50
    if algorithm == .globalBestResponse { c.phase1Steps = 25 }
    return c
}

private func steps(_ run: LocalRun, _ n: Int) throws {
    for _ in 0..<n { _ = try run.step() }
}

@Suite struct LocalRunTests {
    @Test("two runs of the same config give bit-identical φ, λ̂ and optimizer state after 50 steps",
          arguments: [Algorithm.joint, .simplifiedJoint, .globalBestResponse])
    func deterministic(algorithm: Algorithm) throws {
        let c = smallConfig(algorithm)
        let data = try RealData.data(for: c)
        let a = LocalRun(config: c, data: data), b = LocalRun(config: c, data: data)
        try steps(a, 50)
        try steps(b, 50)
        let sa = a.state.snapshot(), sb = b.state.snapshot()
        #expect(sa.step == 50)
        let finite = sa.allFinite, phiEqual = sa.phi == sb.phi, lambdaEqual = sa.lambdaHat == sb.lambdaHat, allEqual = sa == sb
        #expect(finite)
        #expect(phiEqual, "φ differs in \(zip(sa.phi, sb.phi).filter { $0 != $1 }.count) of \(sa.phi.count) values")
        #expect(lambdaEqual, "λ̂ \(sa.lambdaHat) vs \(sb.lambdaHat)")
        #expect(allEqual, "optimizer state or counters differ")
        #expect(sa.lambdaHat != [Float(c.lambdaInit)], "λ̂ did not move")
        #expect(a.evaluate() == b.evaluate())
    }

    @Test("a different seed gives a different φ and λ̂")
    func seedMatters() throws {
        let c1 = smallConfig(seed: 1), c2 = smallConfig(seed: 2)
        let data = try RealData.data(for: c1)
        let a = LocalRun(config: c1, data: data), b = LocalRun(config: c2, data: data)
        let initialDiffers = a.state.phi.array != b.state.phi.array
        #expect(initialDiffers, "initial φ comes from the seed")
        try steps(a, 50)
        try steps(b, 50)
        let finalDiffers = a.state.phi.array != b.state.phi.array
        #expect(finalDiffers)
        #expect(a.state.lambdaHat.array != b.state.lambdaHat.array)
    }

    @Test("a run restored from a snapshot after 30 steps continues bit-identically to the uninterrupted run",
          arguments: [Algorithm.joint, .globalBestResponse])
    func resume(algorithm: Algorithm) throws {
        var c = smallConfig(algorithm)
        if algorithm == .globalBestResponse { c.phase1Steps = 40 }   // the phase switch falls after the resume
        let data = try RealData.data(for: c)
        let original = LocalRun(config: c, data: data)
        try steps(original, 30)
        let checkpoint = original.state.snapshot()
        try steps(original, 20)
        let a = original.state.snapshot()

        let resumed = LocalRun(config: c, data: data)
        #expect(resumed.state.problems(restoring: checkpoint).isEmpty)
        resumed.state.restore(checkpoint)
        let restored = resumed.state.snapshot() == checkpoint
        #expect(restored)
        try steps(resumed, 20)
        let b = resumed.state.snapshot()
        #expect(b.step == 50)
        let phiEqual = b.phi == a.phi, lambdaEqual = b.lambdaHat == a.lambdaHat, allEqual = b == a
        #expect(phiEqual, "φ differs in \(zip(a.phi, b.phi).filter { $0 != $1 }.count) of \(a.phi.count) values")
        #expect(lambdaEqual, "λ̂ \(b.lambdaHat) vs uninterrupted \(a.lambdaHat)")
        #expect(allEqual, "optimizer moments, step counts or versions differ")
        #expect(resumed.evaluate() == original.evaluate())
    }

    @Test("pipelined: step t's gradients are taken at the parameters before step t − 1's update and applied to the current ones (an independent lockstep state fed those gradients gives the same bits)")
    func pipelinedMath() throws {
        var c = smallConfig()
        c.pipelined = true
        let data = try RealData.data(for: c)
        let run = LocalRun(config: c, data: data)
        var lockstep = c
        lockstep.pipelined = nil
        let trainer = HyperTrainer(config: lockstep, data: data)
        let reference = HyperState(config: lockstep, phi: trainer.initialPhi(), lambdaHat: trainer.initialLambdaHat())
        // θ_{t−1}: the parameters the next step's gradients are taken at (θ_{−1} = θ₀).
        var previous = (phi: reference.phi.array, lambdaHat: reference.lambdaHat.array)
        let g = AlignedBuffer<Float>(count: trainer.phiCount), gl = AlignedBuffer<Float>(count: trainer.hyperparameterCount)
        for t in 0..<8 {
            let p = AlignedBuffer(previous.phi), l = AlignedBuffer(previous.lambdaHat)
            reference.beginStep()
            for k in 0..<c.samplesPerStep {
                _ = trainer.trainTask(phi: p.constPointer, lambdaHat: l.constPointer, step: UInt64(t), task: k, gradPhi: g.pointer)
                reference.addTaskGradient(g.constPointer)
            }
            _ = trainer.validTask(phi: p.constPointer, lambdaHat: l.constPointer, step: UInt64(t), gradLambda: gl.pointer)
            previous = (reference.phi.array, reference.lambdaHat.array)
            reference.applyPhiStep()
            reference.applyLambdaStep(gl.constPointer)
            reference.endStep()

            _ = try run.step()
            #expect(run.state.phi.array.map(\.bitPattern) == reference.phi.array.map(\.bitPattern), "φ differs after step \(t)")
            #expect(run.state.lambdaHat.array == reference.lambdaHat.array, "λ̂ differs after step \(t)")
            // The next step's tasks are made from the parameters before this update.
            #expect(run.state.taskPhi.array == previous.phi && run.state.taskLambdaHat.array == previous.lambdaHat)
        }
        // Step 0 is a lockstep step (θ₋₁ = θ₀); later ones are not.
        let plain = LocalRun(config: lockstep, data: data)
        try steps(plain, 8)
        #expect(plain.state.phi.array != run.state.phi.array)
    }

    @Test("a pipelined run restored from a snapshot after 30 steps continues bit-identically (its task parameters are part of the snapshot)")
    func pipelinedResume() throws {
        var c = smallConfig()
        c.pipelined = true
        let data = try RealData.data(for: c)
        let original = LocalRun(config: c, data: data)
        try steps(original, 30)
        let checkpoint = original.state.snapshot()
        #expect(checkpoint.taskParameters != nil)
        try steps(original, 20)
        let resumed = LocalRun(config: c, data: data)
        #expect(resumed.state.problems(resuming: checkpoint).isEmpty)
        var withoutTask = checkpoint
        withoutTask.taskParameters = nil
        #expect(!resumed.state.problems(resuming: withoutTask).isEmpty, "a pipelined run cannot continue without its task parameters")
        resumed.state.restore(checkpoint)
        try steps(resumed, 20)
        #expect(resumed.state.snapshot() == original.state.snapshot())
    }

    @Test("restoring rejects snapshots of the wrong sizes or with non-finite parameters")
    func restoreProblems() throws {
        let c = smallConfig()
        let run = LocalRun(config: c, data: try RealData.data(for: c))
        let good = run.state.snapshot()
        #expect(run.state.problems(restoring: good).isEmpty)
        var s = good; s.phi.removeLast()
        #expect(run.state.problems(restoring: s).contains { $0.contains("phi") })
        s = good; s.lambdaHat.append(0)
        #expect(run.state.problems(restoring: s).contains { $0.contains("lambda") })
        s = good; s.phiM.removeLast()
        #expect(!run.state.problems(restoring: s).isEmpty)
        s = good; s.lambdaV = []
        #expect(!run.state.problems(restoring: s).isEmpty)
        s = good; s.phi[17] = .nan
        #expect(run.state.problems(restoring: s).contains { $0.contains("non-finite") })
        s = good; s.lambdaHat[0] = .infinity
        #expect(!run.state.problems(restoring: s).isEmpty)
    }

    @Test("restoring rejects optimizer state no run can produce: non-finite or negative moments, negative step counts")
    func restoreRejectsCorruptOptimizerState() throws {
        let c = smallConfig()
        let run = LocalRun(config: c, data: try RealData.data(for: c))
        try steps(run, 2)
        let good = run.state.snapshot()
        var s = good; s.phiM[3] = .nan
        #expect(!run.state.problems(restoring: s).isEmpty, "NaN in φ's first moment")
        s = good; s.lambdaV[0] = .infinity
        #expect(!run.state.problems(restoring: s).isEmpty, "∞ in λ̂'s second moment")
        s = good; s.phiV[0] = -1
        #expect(!run.state.problems(restoring: s).isEmpty, "negative second moment (√v is NaN)")
        s = good; s.phiOptimizerSteps = -3
        #expect(!run.state.problems(restoring: s).isEmpty, "negative Adam step count")
    }

    @Test("each step advances the step counter and the φ/λ̂ versions as its plan says",
          arguments: [Algorithm.joint, .globalBestResponse])
    func versions(algorithm: Algorithm) throws {
        let c = smallConfig(algorithm)
        let run = LocalRun(config: c, data: try RealData.data(for: c))
        for t in 0..<30 {
            let plan = StepPlan(step: UInt64(t), config: c)
            let before = run.state.snapshot()
            let (train, valid) = try run.step()
            let after = run.state.snapshot()
            #expect(after.step == before.step + 1)
            #expect(after.phiVersion == before.phiVersion + (plan.trainTasks > 0 ? 1 : 0))
            #expect(after.lambdaVersion == before.lambdaVersion + (plan.validate ? 1 : 0))
            #expect((train != nil) == (plan.trainTasks > 0) && (valid != nil) == plan.validate)
            let phiMoved = after.phi != before.phi, lambdaMoved = after.lambdaHat != before.lambdaHat
            #expect(phiMoved == (plan.trainTasks > 0), "step \(t)")
            #expect(lambdaMoved == plan.validate, "step \(t)")
        }
    }

    // MARK: non-finite handling

    /// Steps until `step()` throws (at most `limit` steps); checks that the failing step left
    /// the state exactly as it was, and that every step that returned normally left it finite.
    private func expectNonFiniteFailure(_ run: LocalRun, limit: Int) -> UInt64? {
        for _ in 0..<limit {
            let before = run.state.snapshot()
            do {
                _ = try run.step()
            } catch {
                guard case .nonFinite(let step, let what) = error else { Issue.record("unexpected \(error)"); return nil }
                #expect(step == before.step)
                #expect(!what.isEmpty)
                #expect(error.description.contains("non-finite"))
                let after = run.state.snapshot()
                let phiSame = after.phi == before.phi, lambdaSame = after.lambdaHat == before.lambdaHat, allSame = after == before
                #expect(after.step == before.step, "the failing step must not count")
                #expect(phiSame, "φ changed by the failing step")
                #expect(lambdaSame, "λ̂ changed by the failing step: \(before.lambdaHat) → \(after.lambdaHat)")
                #expect(allSame, "optimizer state or versions changed by the failing step")
                return step
            }
            let s = run.state.snapshot()
            let finite = s.allFinite
            #expect(finite, "step \(before.step) returned normally but left non-finite state: φ has \(s.phi.filter { !$0.isFinite }.count) non-finite values, λ̂ = \(s.lambdaHat)")
            if !finite { return nil }
        }
        Issue.record("no non-finite failure within \(limit) steps")
        return nil
    }

    @Test("a λ̂₀ large enough to overflow exp(λ) makes step() throw nonFinite and leaves the state untouched",
          arguments: [Algorithm.joint, .simplifiedJoint])
    func overflowingLambdaInit(algorithm: Algorithm) throws {
        var c = smallConfig(algorithm)
        c.lambdaInit = 100          // exp(100) overflows Float
        // The CLI refuses it up front; forced through anyway, the run still fails cleanly.
        #expect(c.problems().contains { $0.contains("lambda-init") })
        let run = LocalRun(config: c, data: try RealData.data(for: c))
        let failed = expectNonFiniteFailure(run, limit: 1)
        #expect(failed == 0)
        // It keeps failing the same way without corrupting anything.
        #expect(expectNonFiniteFailure(run, limit: 1) == 0)
    }

    @Test("a huge λ̂ learning rate makes a later step throw nonFinite, leaving the state as before that step")
    func hugeLambdaLearningRate() throws {
        var c = smallConfig()
        c.lambdaLearningRate = 1e6
        c.lambdaOptimizer = .sgd
        let run = LocalRun(config: c, data: try RealData.data(for: c))
        let failed = expectNonFiniteFailure(run, limit: 20)
        #expect(failed != nil)
        print("huge λ̂ learning rate: step() threw at step \(failed.map(String.init) ?? "-"), λ̂ = \(run.state.lambdaHat.array)")
    }

    @Test("a learning rate beyond Float's range never leaves non-finite φ or λ̂ behind a step that returned normally",
          arguments: [(1e39, 0.003), (1e-3, 1e39)])
    func learningRateBeyondFloat(phiLR: Double, lambdaLR: Double) throws {
        var c = smallConfig()
        c.phiLearningRate = phiLR
        c.lambdaLearningRate = lambdaLR
        // Refused up front by the configuration check …
        #expect(c.problems().contains { $0.contains("-lr") })
        // … and forced through anyway, the first step throws instead of returning with
        // non-finite parameters (the in-memory state is then abandoned: a run does not continue
        // after a non-finite error, and checkpoints refuse non-finite state).
        let run = LocalRun(config: c, data: try RealData.data(for: c))
        #expect(throws: HyperTrainingError.self) { _ = try run.step() }
        #expect(run.state.step == 0, "the failing step must not count")
    }

    // MARK: Algorithm 2

    @Test("Algorithm 2 on real MNIST: phase 1 trains only φ, phase 2 moves only λ̂, and the end is finite")
    func globalSmoke() throws {
        var c = StandardConfigs.fig4
        c.algorithm = .globalBestResponse
        c.hypernet = .mlp(hidden: 10)
        c.nValid = 1_000; c.nTest = 1_000
        c.samplesPerStep = 10
        c.steps = 700; c.phase1Steps = 400
        c.lambdaLearningRate = 0.01
        c.evalEvery = 0
        #expect(c.problems().isEmpty)
        let run = LocalRun(config: c, data: try RealData.data(for: c))
        let phi0 = run.state.phi.array
        try steps(run, 400)
        let afterPhase1 = run.state.snapshot()
        #expect(afterPhase1.phiVersion == 400 && afterPhase1.lambdaVersion == 0)
        #expect(afterPhase1.lambdaHat == [-3.5], "λ̂ must not move in phase 1")
        let phiMoved = afterPhase1.phi != phi0
        #expect(phiMoved)
        let start = run.evaluate()
        var reports: [StepReport] = []
        let end = try run.run { reports.append($0); return true }
        let s = run.state.snapshot()
        #expect(s.step == 700 && reports.count == 300)
        let phiFrozen = s.phi == afterPhase1.phi
        #expect(phiFrozen, "φ must not move in phase 2")
        #expect(s.lambdaVersion == 300)
        #expect(abs(s.lambdaHat[0] - afterPhase1.lambdaHat[0]) > 0.2, "λ̂ stayed at \(s.lambdaHat)")
        #expect(end.validLoss.isFinite && end.testLoss.isFinite && end.trainLoss.isFinite)
        #expect(reports.allSatisfy { $0.trainLoss == nil && $0.validBatchLoss?.isFinite == true })
        #expect(end.validLoss <= start.validLoss, "phase 2 should lower L_valid(φ(λ̂)): \(start.validLoss) → \(end.validLoss)")
        print("Algorithm 2 smoke: λ̂ \(afterPhase1.lambdaHat[0]) → \(s.lambdaHat[0]), L_valid \(start.validLoss) → \(end.validLoss), test error \(end.testError)")
    }
}
