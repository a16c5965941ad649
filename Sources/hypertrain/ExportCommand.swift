import ArgumentParser
import Foundation
import HyperOpt
import Linalg
import Models
import RunState
import Telemetry

/// `hypertrain export`: the run's answer as a safetensors file a user keeps — `φ(λ̂)`, or for
/// a run whose answer is `retrained`, the model retrained from scratch at λ̂.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a run's answer (its elementary model's weights) as a safetensors file.",
        discussion: """
            Reads the checkpoint and the run's data (their fingerprints must match), computes the \
            answer — w = φ(λ̂), or, when the run's answer is 'retrained', the model trained from \
            scratch at λ̂ (deterministic: the run's own retraining) — and writes its layers as \
            PyTorch nn.Linear tensors (for an external model, `coordinator --model-spec`: w = φ(λ̂) \
            under the model's own tensor names and shapes, so `load_state_dict` takes them after \
            "lambda_hat" is removed; no data needed), "0.weight" [out, in], "0.bias", "2.weight", … (nn.Sequential \
            with ReLUs between), plus "lambda_hat" and metadata (format, layers, answer, scope, \
            config, step, train/valid/test loss, test error).
            """)

    @Option(help: "The run's checkpoint (`hypertrain run --checkpoint F`).")
    var checkpoint: String
    @Option(help: "The safetensors file to write (replaced atomically; never a directory).")
    var out: String
    @OptionGroup var data: DataOption

    func validate() throws {
        if let problem = ModelFileOutput.problem(writingFileAt: out) { throw ValidationError("--out: \(problem)") }
    }

    func run() throws {
        if let ckpt = try? Checkpoint.read(from: checkpoint), let model = ckpt.config.external {
            return try exportExternal(ckpt, model)
        }
        let run = try CheckpointedRun.load(checkpoint: checkpoint, dataDirectory: self.data.directory)
        let (config, snapshot) = (run.config, run.checkpoint.snapshot)
        if config.answer == .retrained {
            Console.error("export: the run's answer is the retrained model: retraining at λ̂ for \(config.retrainSteps ?? 0) steps")
        }
        let model = try AnswerModel.resolve(config: config, data: run.data, phi: snapshot.phi, lambdaHat: snapshot.lambdaHat)
        var extra: [String: String] = [:]
        if model.answer == .retrained { extra["retrain_steps"] = String(config.retrainSteps ?? 0) }
        let contents = ModelFile.contents(config: config, weights: model.weights, lambdaHat: snapshot.lambdaHat,
                                          answer: model.answer, evaluation: model.evaluation, step: snapshot.step, extra: extra)
        try ModelFileOutput.write(contents, to: out)
        let e = model.evaluation
        print("wrote \(out): \(config.shape) \(model.answer.rawValue) at step \(snapshot.step), \(LambdaSummary.describe(snapshot.lambdaHat.map(Double.init)))  valid \(String(format: "%.5f", e.validLoss))  test \(String(format: "%.5f", e.testLoss))  test error \(String(format: "%.4f", e.testError))")
    }

    /// An external model's answer: `w = φ(λ̂)` under the user's tensor names, and `lambda_hat`.
    private func exportExternal(_ ckpt: Checkpoint, _ model: ExternalModel) throws {
        let (config, snapshot) = (ckpt.config, ckpt.snapshot)
        let expander = TaskGradientExpander(config: config)
        let phi = AlignedBuffer<Float>(snapshot.phi), lambda = AlignedBuffer<Float>(snapshot.lambdaHat)
        let w = AlignedBuffer<Float>(count: config.weightCount)
        expander.weights(phi: phi.constPointer, lambdaHat: lambda.constPointer, into: w.pointer)
        let all = w.array
        var tensors: [(name: String, tensor: SafeTensors.Tensor)] = []
        for (t, offset) in zip(model.tensors, model.offsets) {
            tensors.append((t.name, .init(shape: t.shape, values: Array(all[offset..<(offset + t.count)]))))
        }
        tensors.append(("lambda_hat", .init(shape: [snapshot.lambdaHat.count], values: snapshot.lambdaHat)))
        let meta = ["format": "hypertrain-external", "scope": model.scope.rawValue, "step": String(snapshot.step),
                    "answer": "hypernetwork", "hypernet": config.hypernet.description]
        try ModelFileOutput.write(SafeTensors(tensors: tensors, metadata: meta), to: out)
        print("wrote \(out): external model (\(model.tensors.count) tensors, \(config.weightCount) weights) w = φ(λ̂) at step \(snapshot.step), \(LambdaSummary.describe(snapshot.lambdaHat.map(Double.init)))")
    }
}
