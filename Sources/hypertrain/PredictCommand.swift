import ArgumentParser
import Foundation
import HyperOpt
import Linalg
import Models
import RunState
import Telemetry

/// `hypertrain predict`: the learned best-response `w = φ(λ)` at given λ, without training —
/// its validation and training losses, and optionally its weights.
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Evaluate the hypernetwork's predicted weights φ(λ) of a checkpointed run at given λ.",
        discussion: """
            For each λ prints one line: λ (a summary when H is large), the validation loss \
            L_valid(φ(λ)) on the full validation split, the training loss L_train(φ(λ), λ) \
            (prediction + regularizer on the full training split) and the test loss; with --json \
            one JSON object per λ instead. λ comes from --lambda (repeatable; one value for every \
            hyperparameter or exactly H comma-separated values; write --lambda=-3 for negative \
            values) or --csv (one λ per row, an optional header line); default: the checkpoint's λ̂. \
            A hypernetwork with a centred input is evaluated at λ − λ̂ (λ̂ of the checkpoint).
            """)

    @Option(help: "The run's checkpoint (`hypertrain run --checkpoint F`).")
    var checkpoint: String
    @Option(help: "λ: one value (every hyperparameter) or H comma-separated values; repeat for several λ.")
    var lambda: [String] = []
    @Option(help: "CSV file with one λ per row (1 or H numbers; a header line is optional).")
    var csv: String?
    @Option(name: .customLong("weights-out"),
            help: "Write each λ's predicted weights as safetensors: a file (one λ, name ending in .safetensors) or a directory (lambda-0000.safetensors, …).")
    var weightsOut: String?
    @Flag(help: "One JSON object per λ instead of the text line.")
    var json = false
    @OptionGroup var data: DataOption

    func validate() throws {
        if !lambda.isEmpty && csv != nil { throw ValidationError("give λ with either --lambda or --csv, not both") }
        for (i, text) in lambda.enumerated() {
            try LambdaInput.check(try LambdaInput.parse(text), prefix: lambda.count > 1 ? "--lambda #\(i + 1): " : "")
        }
        if let csv, !FileManager.default.isReadableFile(atPath: csv) { throw ValidationError("--csv: cannot read '\(csv)'") }
    }

    func run() throws {
        let run = try CheckpointedRun.load(checkpoint: checkpoint, dataDirectory: self.data.directory)
        let (config, snapshot) = (run.config, run.checkpoint.snapshot)
        // Checked here rather than in validate(): H and the count of λ are known only now.
        let (lambdas, files): ([[Float]], [String]?)
        do {
            lambdas = try requestedLambdas(config: config, lambdaHat: snapshot.lambdaHat)
            files = try weightFiles(count: lambdas.count)
        } catch let error as ValidationError {
            throw CommandError(error.message)
        }
        let trainer = HyperTrainer(config: config, data: run.data)
        let phi = AlignedBuffer(snapshot.phi)
        for (i, lambda) in lambdas.enumerated() {
            let weights = trainer.weights(phi: phi.constPointer, lambda: lambda, center: snapshot.lambdaHat)
            let e = trainer.evaluate(weights: weights, lambda: lambda)
            if let file = files?[i] {
                try ModelFileOutput.write(ModelFile.contents(config: config, weights: weights, lambdaHat: snapshot.lambdaHat, lambda: lambda,
                                                             answer: .hypernetwork, evaluation: e, step: snapshot.step), to: file)
            }
            Console.out(json ? Self.jsonLine(index: i, lambda: lambda, evaluation: e, file: files?[i])
                             : Self.textLine(lambda: lambda, evaluation: e))
        }
    }

    /// The λ to predict at, each with H values; the checkpoint's λ̂ when none is given.
    private func requestedLambdas(config: ExperimentConfig, lambdaHat: [Float]) throws -> [[Float]] {
        let given: [(prefix: String, values: [Double])]
        if let csv {
            guard let bytes = FileManager.default.contents(atPath: csv) else { throw ValidationError("--csv: cannot read '\(csv)'") }
            given = try LambdaInput.csvRows(String(decoding: bytes, as: UTF8.self), path: csv)
                .map { ("--csv \(csv), line \($0.line): ", $0.values) }
        } else {
            given = try lambda.enumerated().map { i, text in
                (lambda.count > 1 ? "--lambda #\(i + 1): " : "", try LambdaInput.parse(text))
            }
        }
        if given.isEmpty { return [lambdaHat] }
        return try given.map { try LambdaInput.resolve($0.values, config: config, prefix: $0.prefix).map(Float.init) }
    }

    /// Where each λ's weights go, or nil without --weights-out.
    private func weightFiles(count: Int) throws -> [String]? {
        guard let weightsOut else { return nil }
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: weightsOut, isDirectory: &isDirectory)
        if !(exists && isDirectory.boolValue) && weightsOut.hasSuffix(".safetensors") {
            guard count == 1 else {
                throw ValidationError("--weights-out \(weightsOut) names one file but there are \(count) λ; give a directory")
            }
            return [weightsOut]
        }
        if exists && !isDirectory.boolValue {
            throw ValidationError("--weights-out \(weightsOut) is an existing file; give a directory or a name ending in .safetensors")
        }
        let digits = max(4, String(count - 1).count)
        return (0..<count).map { i in
            let n = String(i)
            return (weightsOut as NSString).appendingPathComponent("lambda-\(String(repeating: "0", count: digits - n.count) + n).safetensors")
        }
    }

    static func textLine(lambda: [Float], evaluation e: Evaluation) -> String {
        "\(LambdaSummary.describe(lambda.map(Double.init), symbol: "λ"))  valid \(String(format: "%.5f", e.validLoss))  train \(String(format: "%.5f", e.trainLoss))  test \(String(format: "%.5f", e.testLoss))"
    }

    /// λ in full when H ≤ 16, otherwise its mean, min and max.
    static func jsonLine(index: Int, lambda: [Float], evaluation e: Evaluation, file: String?) -> String {
        let values = lambda.map(Double.init)
        var record = JSONRecord([("index", index)])
        if values.count <= 16 {
            record.append("lambda", values)
        } else {
            record.append(contentsOf: [("lambda_count", values.count), ("lambda_mean", values.reduce(0, +) / Double(values.count)),
                                       ("lambda_min", values.min()!), ("lambda_max", values.max()!)])
        }
        record.append(contentsOf: [("valid_loss", e.validLoss), ("train_loss", e.trainLoss),
                                   ("test_loss", e.testLoss), ("test_error", e.testError)])
        if let file { record.append("weights_file", file) }
        // Only numbers, strings and arrays of them: JSONEncoder cannot fail here.
        return try! record.encoded()
    }
}
