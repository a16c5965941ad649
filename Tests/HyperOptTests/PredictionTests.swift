import Foundation
import HyperOpt
import Linalg
import Models
import Testing
import TestSupport

/// What `predict` and `export` compute: predictions `φ(λ)` at any λ from a φ centred on the
/// checkpoint's λ̂, the losses of given weights, the run's answer and the file that holds it.
@Suite struct PredictionTests {
    static func config(_ input: HypernetInput?) -> ExperimentConfig {
        var c = StandardConfigs.fig7
        c.nTrain = 200; c.nValid = 300; c.nTest = 100
        c.batchSize = 50; c.validBatchSize = 300
        c.steps = 30; c.evalEvery = 0
        c.hypernetInput = input
        return c
    }

    /// φ and λ̂ after a short run (so φ has a slope in λ).
    static func trained(_ c: ExperimentConfig, data: ExperimentData) throws -> (phi: [Float], lambdaHat: [Float], evaluation: Evaluation) {
        let run = LocalRun(config: c, data: data)
        let evaluation = try run.run()
        return (run.state.phi.array, run.state.lambdaHat.array, evaluation)
    }

    @Test("centred: the prediction at λ is the hypernetwork at λ − λ̂ of the checkpoint; at λ̂ it is weights(phi:lambda:)")
    func centredPredictionUsesTheCheckpointCentre() throws {
        let centred = Self.config(.centred)
        let data = try RealData.data(for: centred)
        let (phi, lambdaHat, _) = try Self.trained(centred, data: data)
        let t = HyperTrainer(config: centred, data: data)
        let raw = HyperTrainer(config: Self.config(nil), data: data)     // the same network, fed its input as is
        let p = AlignedBuffer(phi)
        #expect(t.weights(phi: p.constPointer, lambda: lambdaHat, center: lambdaHat) == t.weights(phi: p.constPointer, lambda: lambdaHat))
        let lambda = lambdaHat.enumerated().map { $1 + 0.25 * Float($0 % 3) - 0.3 }
        let offset = zip(lambda, lambdaHat).map { $0 - $1 }
        #expect(t.weights(phi: p.constPointer, lambda: lambda, center: lambdaHat) == raw.weights(phi: p.constPointer, lambda: offset))
        #expect(t.weights(phi: p.constPointer, lambda: lambda, center: lambdaHat) != t.weights(phi: p.constPointer, lambda: lambda),
                "centring on λ itself would predict φ(0) for every λ")
    }

    @Test("raw input: the centre is ignored")
    func rawIgnoresTheCentre() throws {
        let c = Self.config(.raw)
        let data = try RealData.data(for: c)
        let t = HyperTrainer(config: c, data: data)
        let phi = AlignedBuffer(t.initialPhi())
        let lambda = [Float](repeating: -2, count: t.hyperparameterCount)
        let elsewhere = [Float](repeating: 5, count: t.hyperparameterCount)
        #expect(t.weights(phi: phi.constPointer, lambda: lambda, center: elsewhere) == t.weights(phi: phi.constPointer, lambda: lambda))
    }

    @Test("evaluate(weights:lambda:) of the predicted weights is evaluate(phi:lambda:center:) bit for bit", arguments: [HypernetInput.raw, .centred])
    func evaluateGivenWeights(input: HypernetInput) throws {
        let c = Self.config(input)
        let data = try RealData.data(for: c)
        let (phi, lambdaHat, _) = try Self.trained(c, data: data)
        let t = HyperTrainer(config: c, data: data)
        let p = AlignedBuffer(phi)
        let lambda = lambdaHat.map { $0 - 0.5 }
        let (l, centre) = (AlignedBuffer(lambda), AlignedBuffer(lambdaHat))
        let viaPhi = t.evaluate(phi: p.constPointer, lambda: l.constPointer, center: centre.constPointer)
        let viaWeights = t.evaluate(weights: t.weights(phi: p.constPointer, lambda: lambda, center: lambdaHat), lambda: lambda)
        #expect(viaPhi == viaWeights)
    }

    @Test("the hypernetwork answer's losses are the run's final evaluation bit for bit")
    func hypernetworkAnswerIsTheRunsEvaluation() throws {
        let c = Self.config(.centred)
        let data = try RealData.data(for: c)
        let (phi, lambdaHat, evaluation) = try Self.trained(c, data: data)
        let answer = AnswerModel.hypernetwork(config: c, data: data, phi: phi, lambdaHat: lambdaHat)
        #expect(answer.answer == .hypernetwork)
        #expect(answer.evaluation == evaluation)
        #expect(HyperTrainer(config: c, data: data).evaluate(weights: answer.weights, lambda: lambdaHat) == evaluation)
    }

    @Test("the retrained answer is Retraining.run's model, the same on every call")
    func retrainedAnswerIsDeterministic() throws {
        var c = Self.config(nil)
        c.retrainSteps = 20
        c.answer = .retrained
        let data = try RealData.data(for: c)
        let lambdaHat = [Float](repeating: -3, count: c.hyperparameterCount)
        let a = try AnswerModel.resolve(config: c, data: data, phi: [], lambdaHat: lambdaHat)
        let b = try Retraining.run(config: c, data: data, lambda: lambdaHat)
        #expect(a.answer == .retrained)
        #expect(a.weights == b.weights)
        #expect(a.evaluation == b.outcome.evaluation)
        let again = HyperTrainer(config: c, data: data).evaluate(weights: a.weights, lambda: lambdaHat)
        #expect(abs(again.validLoss - a.evaluation.validLoss) <= 1e-9 * a.evaluation.validLoss)
    }

    @Test("the model file holds the weights as nn.Linear tensors, λ̂ and the metadata")
    func modelFileContents() throws {
        let c = Self.config(.centred)
        let data = try RealData.data(for: c)
        let (phi, lambdaHat, _) = try Self.trained(c, data: data)
        let answer = AnswerModel.hypernetwork(config: c, data: data, phi: phi, lambdaHat: lambdaHat)
        let file = try SafeTensors(decoding: ModelFile.contents(
            config: c, weights: answer.weights, lambdaHat: lambdaHat, answer: answer.answer, evaluation: answer.evaluation, step: 30).encoded())
        #expect(c.shape.flatWeights(from: file) == answer.weights)
        #expect(file["lambda_hat"]?.values == lambdaHat)
        #expect(file["lambda"] == nil)
        let m = file.metadata
        #expect(m["format"] == "hypertrain-mlp-v1")
        #expect(m["layers"] == c.shape.description)
        #expect(m["answer"] == "hypernetwork")
        #expect(m["scope"] == c.scope.rawValue)
        #expect(m["step"] == "30")
        #expect(m["valid_loss"].flatMap(Double.init) == answer.evaluation.validLoss)
        #expect(m["test_loss"].flatMap(Double.init) == answer.evaluation.testLoss)
        let config = try #require(m["config"])
        #expect(try JSONDecoder().decode(ExperimentConfig.self, from: Data(config.utf8)) == c)
    }
}

