import ArgumentParser
import Datasets
import Foundation
import HyperOpt
import Settings
import Telemetry

/// `hypertrain trial`: one Algorithm 1 trial at a given λ, printed as one JSON line — the
/// objective of `hypertrain search`, callable by external optimizers (Optuna, scikit-optimize).
///
/// The trial is `CrossValidation.trial`, the function a study's trial worker runs, with the same
/// config, step count, step size and `--trial-index` (a study's trial id): given those, the
/// numbers equal the study's trial bit for bit.
struct TrialCommand: SettingsCommand {
    static let configuration = CommandConfiguration(
        commandName: "trial",
        abstract: "Evaluate one cross-validation trial (Algorithm 1) at a given λ and print one JSON line.",
        discussion: """
            Trains the model from scratch at λ with Adam for --trial-steps and prints \
            {"lambda", "valid_loss", "test_loss", "train_loss", "test_error", "wall_seconds", "trial_steps", …}. \
            λ comes from --lambda (one value for every hyperparameter, or exactly H comma-separated values; \
            write --lambda=-3,-4 when the first value is negative) or --lambda-file (a JSON array). \
            A trial whose training diverges prints "status":"diverged" with null losses (exit 0); \
            bad input exits non-zero with a message on stderr.
            """)

    @OptionGroup var logging: LoggingOptions
    @OptionGroup var settingsFile: SettingsFileOption
    @OptionGroup var experiment: TrialExperimentOptions
    @Option(help: "λ: one value (every hyperparameter) or H comma-separated values.")
    var lambda: String?
    @Option(name: .customLong("lambda-file"), help: "JSON file holding the λ array (instead of --lambda).")
    var lambdaFile: String?
    @Option(name: .customLong("trial-steps"), help: "Adam steps (Algorithm 1); `search`'s default.")
    var trialSteps: Int = 1000
    @Option(name: .customLong("trial-lr"), help: "Adam step size.")
    var trialLR: Double = 1e-3
    @Option(name: .customLong("trial-index"), help: "Selects the initialisation and minibatch streams (a study's trial id).")
    var trialIndex: Int = 0
    @OptionGroup var data: DataOption

    static let settings = TrialExperimentOptions.settings.merging(DataOption.settings) { a, _ in a }
        .merging(LoggingOptions.settings) { a, _ in a }.merging([
        "lambda": .text, "lambda-file": .text, "trial-steps": .integer, "trial-lr": .number, "trial-index": .integer,
    ]) { a, _ in a }

    func validate() throws {
        guard trialSteps >= 1 else { throw ValidationError("--trial-steps must be at least 1, got \(trialSteps)") }
        guard trialLR > 0, trialLR.isFinite else { throw ValidationError("--trial-lr must be a positive number, got \(trialLR)") }
        guard trialIndex >= 0, trialIndex <= Int(UInt32.max) else {
            throw ValidationError("--trial-index must be in 0...\(UInt32.max), got \(trialIndex)")
        }
        _ = try resolvedLambda(config: try experiment.config())
    }

    /// λ with H values (H of `config`): a single given value is broadcast.
    func resolvedLambda(config: ExperimentConfig) throws -> [Double] {
        let h = config.hyperparameterCount
        let values: [Double]
        switch (lambda, lambdaFile) {
        case (nil, nil):
            throw ValidationError("give λ with --lambda (one value, or H = \(h) comma-separated values for scope '\(config.scope.rawValue)') or --lambda-file F")
        case (.some, .some):
            throw ValidationError("give either --lambda or --lambda-file, not both")
        case let (.some(text), nil):
            values = try LambdaInput.parse(text)
        case let (nil, .some(path)):
            values = try Self.readLambdaFile(path)
        }
        return try LambdaInput.resolve(values, config: config)
    }

    private static func readLambdaFile(_ path: String) throws -> [Double] {
        guard let bytes = FileManager.default.contents(atPath: path) else {
            throw ValidationError("--lambda-file: cannot read '\(path)'")
        }
        do {
            return try JSONDecoder().decode([Double].self, from: bytes)
        } catch {
            throw ValidationError("--lambda-file '\(path)': expected a JSON array of numbers (\(error))")
        }
    }

    func run() throws {
        logging.bootstrap()
        let config = try experiment.config()
        let lambda = try resolvedLambda(config: config)
        let clock = ProgressLine.monotonicSeconds
        let started = clock()
        let data = try ExperimentData.load(directory: self.data.directory, config: config)
        let loaded = clock()
        var record = JSONRecord([("lambda", lambda)])
        do {
            let r = try CrossValidation.trial(config: config, data: data, lambda: lambda.map(Float.init), steps: trialSteps,
                                              learningRate: trialLR, trialIndex: trialIndex)
            let e = r.evaluation
            record.append(contentsOf: [("status", "done"), ("valid_loss", e.validLoss), ("test_loss", e.testLoss),
                                       ("train_loss", e.trainLoss), ("test_error", e.testError)])
        } catch {
            Console.error("trial: training diverged: \(error)")
            record.append(contentsOf: [("status", "diverged"), ("valid_loss", Double?.none), ("test_loss", Double?.none),
                                       ("train_loss", Double?.none), ("test_error", Double?.none)])
        }
        let finished = clock()
        record.append(contentsOf: [("wall_seconds", finished - loaded), ("load_seconds", loaded - started),
                                   ("trial_steps", trialSteps), ("trial_lr", trialLR), ("trial_index", trialIndex),
                                   ("seed", Int(truncatingIfNeeded: config.seed))])
        Console.out(try record.encoded())
    }
}
