import ArgumentParser
import Foundation
import Models

/// `coordinator --model-spec FILE`: an external model's layout and initial weights, read from
/// a safetensors file (docs/sdk.md; `hypertrain_sdk.write_model_spec` writes one). The flat
/// layout is the tensors in the order of their data in the file (ascending `data_offsets`),
/// each row-major; dtype F32 only. The name `lambda_hat` is reserved (export writes it).
enum ExternalModelFile {
    /// The layout (with `scope`) and the initial weights, concatenated in layout order.
    static func load(path: String, scope: ExternalModel.Scope) throws -> (model: ExternalModel, weights: [Float]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CommandError("--model-spec: cannot read \(path)")
        }
        let file: SafeTensors
        do {
            file = try SafeTensors(decoding: Array(data))
        } catch {
            throw CommandError("--model-spec: \(path) is not a usable safetensors file: \(error)")
        }
        let model = ExternalModel(tensors: file.tensors.map { .init(name: $0.name, shape: $0.tensor.shape) }, scope: scope)
        var problems = model.problems()
        if file.tensors.contains(where: { $0.name == "lambda_hat" }) { problems.append("the tensor name 'lambda_hat' is reserved for the run's λ̂") }
        let weights = file.tensors.flatMap { $0.tensor.values }
        if !weights.allSatisfy(\.isFinite) { problems.append("the initial weights are not all finite") }
        if !problems.isEmpty { throw CommandError("--model-spec \(path): " + problems.joined(separator: "; ")) }
        return (model, weights)
    }
}

extension ExternalModel.Scope: ExpressibleByArgument {}
