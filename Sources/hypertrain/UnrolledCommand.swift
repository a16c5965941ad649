import ArgumentParser
import RunState
import Datasets
import Foundation
import HyperOpt
import Telemetry

/// `hypertrain unrolled`: the unrolled reverse-mode hypergradient baseline.
struct UnrolledCommand: SettingsCommand {
    static let configuration = CommandConfiguration(
        commandName: "unrolled",
        abstract: "Tune λ by unrolled reverse-mode hypergradients (Maclaurin et al. 2015; Franceschi et al. 2017).",
        discussion: "Each outer iteration trains w from the same w₀ for --inner-steps of SGD with momentum at λ̂, differentiates L_valid(w_T) through all of them, and takes an Adam step on λ̂. Model, scope, data sizes, batch sizes, λ̂₀ and seed come from the experiment flags.")

    @OptionGroup var logging: LoggingOptions
    @OptionGroup var settingsFile: SettingsFileOption
    @OptionGroup var experiment: UnrolledExperimentOptions
    @Option(name: .customLong("inner-steps"), help: "SGD steps unrolled per hypergradient (T).")
    var innerSteps: Int = 100
    @Option(name: .customLong("inner-lr"), help: "Inner SGD step size.")
    var innerLR: Double = 0.1
    @Option(help: "Inner SGD momentum.")
    var momentum: Double = 0.9
    @Option(name: .customLong("outer-steps"), help: "Hypergradient steps on λ̂.")
    var outerSteps: Int = 20
    @Option(name: .customLong("outer-lr"), help: "Adam step size on λ̂.")
    var outerLR: Double = 0.1
    @OptionGroup var files: ReportFiles
    @OptionGroup var data: DataOption

    static let settings = UnrolledExperimentOptions.settings.merging(ReportFiles.settings) { a, _ in a }
        .merging(LoggingOptions.settings) { a, _ in a }
        .merging(DataOption.settings) { a, _ in a }.merging([
            "inner-steps": .integer, "inner-lr": .number, "momentum": .number, "outer-steps": .integer, "outer-lr": .number,
        ]) { a, _ in a }

    func run() throws {
        logging.bootstrap()
        let experimentConfig = try experiment.config()
        var config = UnrolledConfig(experiment: experimentConfig)
        config.innerSteps = innerSteps
        config.innerLearningRate = innerLR
        config.momentum = momentum
        config.outerSteps = outerSteps
        config.outerLearningRate = outerLR
        let problems = config.problems()
        guard problems.isEmpty else { throw ValidationError(problems.joined(separator: "\n")) }
        let data = try ExperimentData.load(directory: self.data.directory, config: experimentConfig)
        let run = UnrolledRun(config: config, data: data)
        let writer = try files.metrics.map { try JSONLinesWriter(path: $0) }
        let start = ProgressLine.monotonicSeconds()
        let progress = ProgressLine()
        let result = try run.run { r in
            let elapsed = ProgressLine.monotonicSeconds() - start
            progress.update(ProgressSnapshot(step: r.iteration, totalSteps: outerSteps, lambdaSummary: LambdaSummary.describe(r.lambdaHat),
                                             trainLoss: nil, validLoss: r.validLoss, stepsPerSecond: Double(r.iteration) / max(elapsed, 1e-9)))
            var record = JSONRecord([("step", r.iteration), ("elapsed_seconds", elapsed),
                                     ("inner_steps", r.innerSteps), ("valid_loss", r.validLoss),
                                     ("hypergradient_norm", r.hypergradientNorm)])
            if r.lambdaHat.count <= 16 { record.append("lambda_hat", r.lambdaHat) }
            let mean = r.lambdaHat.reduce(0, +) / Double(max(r.lambdaHat.count, 1))
            record.append("lambda_hat_mean", mean)
            try? writer?.write(record)
            return true
        }
        progress.finish()
        try writer?.close()
        let wall = ProgressLine.monotonicSeconds() - start
        let e = result.evaluation
        if let summary = files.summary {
            try SummaryWriter.write(JSONRecord([
                ("lambda_hat", result.lambdaHat), ("train_loss", e.trainLoss),
                ("valid_loss", e.validLoss), ("test_loss", e.testLoss), ("test_error", e.testError),
                ("steps", result.iterations), ("inner_steps", result.innerSteps), ("wall_seconds", wall),
                ("steps_per_second", Double(result.iterations) / max(wall, 1e-9)), ("method", "unrolled"),
                ("config", config),
            ]), to: summary)
        }
        print(RunCommand.resultLine(lambdaHat: result.lambdaHat.map(Float.init), evaluation: result.evaluation))
    }
}
