import ArgumentParser
import Cluster
import Datasets
import Foundation
import HyperOpt
import Linalg
import Telemetry

/// `hypertrain run`: hyper-training on this machine, in one process (`--workers 0`) or as a
/// local cluster of processes.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run hyper-training on MNIST (Algorithms 2–4).",
        discussion: "Defaults reproduce the paper's Fig. 4 setting with σ = 0.5: λ̂ moves from −3.5 to the cross-validation optimum.")

    @OptionGroup var experiment: ExperimentOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "Data directory (default: $HYPERTRAIN_DATA or data/mnist).")
    var data: String?

    func run() throws {
        let config = try experiment.config()
        for w in config.warnings() { Console.error("warning: \(w)") }
        BLASRuntime.setThreads(1)
        let data = try ExperimentData.load(directory: data ?? MNISTFetcher.defaultDirectory, config: config)
        let run = LocalRun(config: config, data: data)
        let reporter = try RunReporter(config: config, options: output.reporterOptions)
        let evaluation = try run.run { report in
            reporter.record(report)
            return true
        }
        try reporter.finish(lambdaHat: run.state.lambdaHat.array, evaluation: evaluation, steps: run.state.step,
                            extra: [("mode", "single-process"), ("workers", 0)])
        print(Self.resultLine(lambdaHat: run.state.lambdaHat.array, evaluation: evaluation))
    }

    static func resultLine(lambdaHat: [Float], evaluation: Evaluation) -> String {
        "λ̂ \(LambdaSummary.describe(lambdaHat.map(Double.init)))  valid \(String(format: "%.5f", evaluation.validLoss))  test \(String(format: "%.5f", evaluation.testLoss))  test error \(String(format: "%.4f", evaluation.testError))"
    }
}

/// Where results go.
struct OutputOptions: ParsableArguments {
    @Option(help: "Write metrics as JSON Lines to this file.")
    var metrics: String?
    @Option(help: "Write the summary JSON to this file.")
    var summary: String?
    @Option(name: .customLong("log-every"), help: "Metrics line every N steps.")
    var logEvery: Int = 100
    @Flag(help: "No progress line.")
    var quiet = false

    func validate() throws {
        guard logEvery >= 1 else { throw ValidationError("--log-every must be ≥ 1") }
    }

    var reporterOptions: RunReporter.Options {
        RunReporter.Options(metricsPath: metrics, summaryPath: summary, logEvery: logEvery, progress: !quiet)
    }
}
