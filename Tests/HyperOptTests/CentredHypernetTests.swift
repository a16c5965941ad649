import HyperOpt
import Linalg
import Models
import Testing
import TestSupport

/// `hypernetInput: .centred` (w = φ(λ − λ̂)): the same computation as the raw input shifted
/// by λ̂, and λ̂'s hypergradient is the derivative at λ̂ with the centre held fixed.
@Suite struct CentredHypernetTests {
    static func config(_ input: HypernetInput?) -> ExperimentConfig {
        var c = StandardConfigs.fig7
        c.nTrain = 200; c.nValid = 300; c.nTest = 100
        c.batchSize = 50; c.validBatchSize = 300
        c.hypernetInput = input
        return c
    }

    @Test("the φ initialisation: unset and normal are the authors' scale·N(0,1) bit for bit, fan-in is Hypernet.fanInParameters")
    func initialisationChoice() throws {
        var c = StandardConfigs.fig5
        c.layers = [784, 20, 10]
        c.nTrain = 100; c.nValid = 100; c.nTest = 0
        c.hypernetInput = .centred
        let data = try RealData.data(for: c)
        let unset = HyperTrainer(config: c, data: data)
        #expect(unset.initialPhi() == unset.hypernet.initialParameters(seed: c.seed, scale: c.initScale))
        c.hypernetInit = .normal
        #expect(HyperTrainer(config: c, data: data).initialPhi() == unset.initialPhi())
        c.hypernetInit = .fanIn
        let t = HyperTrainer(config: c, data: data)
        let phi = t.initialPhi()
        #expect(phi == t.hypernet.fanInParameters(seed: c.seed, scale: c.initScale, elementary: t.mlp.shape))
        // Centred: the weights at λ̂ are the elementary initialisation b, whatever λ̂₀.
        #expect(t.weights(phi: phi, lambda: t.initialLambdaHat()) == Array(phi.suffix(t.weightCount)))
    }

    @Test("with λ̂ = 0 a centred run is bit for bit the raw run (the input is λ − 0)")
    func zeroCentreEqualsRaw() throws {
        var raw = Self.config(nil)
        raw.lambdaInit = 0
        var centred = raw
        centred.hypernetInput = .centred
        let data = try RealData.data(for: raw)
        let a = HyperTrainer(config: raw, data: data), b = HyperTrainer(config: centred, data: data)
        let phi = AlignedBuffer(a.initialPhi())
        let lambdaHat = AlignedBuffer([Float](repeating: 0, count: a.hyperparameterCount))
        let ga = AlignedBuffer<Float>(count: a.phiCount), gb = AlignedBuffer<Float>(count: b.phiCount)
        let la = a.trainTask(phi: phi.constPointer, lambdaHat: lambdaHat.constPointer, step: 3, task: 1, gradPhi: ga.pointer)
        let lb = b.trainTask(phi: phi.constPointer, lambdaHat: lambdaHat.constPointer, step: 3, task: 1, gradPhi: gb.pointer)
        #expect(la == lb)
        #expect(ga.array == gb.array)
    }

    @Test("the centred hypergradient matches central differences with the centre fixed")
    func hypergradientMatchesFiniteDifferences() throws {
        let c = Self.config(.centred)
        let data = try RealData.data(for: c)
        let t = HyperTrainer(config: c, data: data)
        // φ with a real slope: a few steps of training around λ̂.
        let run = LocalRun(config: { var k = c; k.steps = 30; k.evalEvery = 0; return k }(), data: data)
        _ = try run.run()
        let phi = run.state.phi
        let lambdaHat = run.state.lambdaHat
        let g = AlignedBuffer<Float>(count: t.hyperparameterCount)
        let loss = t.validTask(phi: phi.constPointer, lambdaHat: lambdaHat.constPointer, step: 0, gradLambda: g.pointer)
        let atCentre = t.evaluate(phi: phi.constPointer, lambda: lambdaHat.constPointer)
        // The validation batch is the whole split here, so the task loss is the full loss.
        #expect(abs(loss - atCentre.validLoss) < 1e-5 * abs(loss))
        let h: Float = 0.05
        for i in [0, 4, 9] {
            var plus = lambdaHat.array, minus = lambdaHat.array
            plus[i] += h; minus[i] -= h
            let lp = t.evaluate(phi: phi.constPointer, lambda: plus, center: lambdaHat.constPointer).validLoss
            let lm = t.evaluate(phi: phi.constPointer, lambda: minus, center: lambdaHat.constPointer).validLoss
            let fd = (lp - lm) / Double(2 * h)
            #expect(abs(fd - Double(g[i])) <= 0.02 * abs(fd) + 1e-7, "component \(i): FD \(fd) vs analytic \(g[i])")
        }
    }

    @Test("Algorithm 2 centres on its prior mean: with mean 0 it is the raw computation, whatever λ̂")
    func globalCentresOnPriorMean() throws {
        var raw = Self.config(nil)
        raw.algorithm = .globalBestResponse
        raw.steps = 10; raw.phase1Steps = 10
        raw.priorMean = 0
        var centred = raw
        centred.hypernetInput = .centred
        #expect(centred.problems().isEmpty)
        let data = try RealData.data(for: raw)
        let a = HyperTrainer(config: raw, data: data), b = HyperTrainer(config: centred, data: data)
        let phi = AlignedBuffer(a.initialPhi())
        let lambdaHat = AlignedBuffer([Float](repeating: -2.5, count: a.hyperparameterCount))
        let ga = AlignedBuffer<Float>(count: a.phiCount), gb = AlignedBuffer<Float>(count: b.phiCount)
        let la = a.trainTask(phi: phi.constPointer, lambdaHat: lambdaHat.constPointer, step: 2, task: 0, gradPhi: ga.pointer)
        let lb = b.trainTask(phi: phi.constPointer, lambdaHat: lambdaHat.constPointer, step: 2, task: 0, gradPhi: gb.pointer)
        #expect(la == lb && ga.array == gb.array)
        #expect(a.evaluate(phi: phi.constPointer, lambda: lambdaHat.constPointer) == b.evaluate(phi: phi.constPointer, lambda: lambdaHat.constPointer))
    }
}
