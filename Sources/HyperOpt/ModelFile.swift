import Foundation
import Models

/// The safetensors contents `hypertrain export` and `predict --weights-out` write: the
/// elementary MLP's weights as PyTorch `nn.Sequential(Linear, ReLU, Linear, …)` tensors
/// (``Models/MLPShape/torchTensors(_:)``), `lambda_hat` `[H]` (and, for a prediction,
/// `lambda` `[H]`, the λ it was made at), and string metadata: `format`, `layers`, `answer`,
/// `scope`, `config` (the resolved ``ExperimentConfig`` as JSON), `step`, and the weights'
/// `train_loss`, `valid_loss`, `test_loss`, `test_error` (Swift's shortest round-trip decimal).
public enum ModelFile {
    /// The `format` metadata value.
    public static let format = "hypertrain-mlp-v1"

    /// The file for `weights` of a run with `config` at `step` whose λ̂ is `lambdaHat`.
    /// - Parameters:
    ///   - answer: `"hypernetwork"` or `"retrained"` (``RunAnswer``'s raw value).
    ///   - lambda: for a prediction at λ ≠ λ̂, that λ (stored as the `lambda` tensor).
    ///   - evaluation: the weights' full-split losses.
    ///   - extra: more metadata (e.g. `retrain_steps`).
    public static func contents(
        config: ExperimentConfig, weights: [Float], lambdaHat: [Float], lambda: [Float]? = nil,
        answer: RunAnswer, evaluation: Evaluation, step: UInt64, extra: [String: String] = [:]
    ) -> SafeTensors {
        var tensors = config.shape.torchTensors(weights)
        tensors.append(("lambda_hat", SafeTensors.Tensor(shape: [lambdaHat.count], values: lambdaHat)))
        if let lambda { tensors.append(("lambda", SafeTensors.Tensor(shape: [lambda.count], values: lambda))) }
        var metadata = extra
        metadata["format"] = format
        metadata["layers"] = config.shape.description
        metadata["answer"] = answer.rawValue
        metadata["scope"] = config.scope.rawValue
        metadata["config"] = configJSON(config)
        metadata["step"] = String(step)
        metadata["train_loss"] = String(evaluation.trainLoss)
        metadata["valid_loss"] = String(evaluation.validLoss)
        metadata["test_loss"] = String(evaluation.testLoss)
        metadata["test_error"] = String(evaluation.testError)
        return SafeTensors(tensors: tensors, metadata: metadata)
    }

    /// `config` in its `Codable` form with sorted keys (as in the checkpoint header).
    static func configJSON(_ config: ExperimentConfig) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Every field is a number, string, bool or a small Codable enum/struct: it always encodes.
        return String(decoding: try! encoder.encode(config), as: UTF8.self)
    }
}
