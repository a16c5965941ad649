import ArgumentParser
import RunState
import Settings

/// `--metrics F` and `--summary F`: the files every command that runs something writes.
struct ReportFiles: ParsableArguments {
    @Option(help: "Write metrics as JSON Lines to this file.")
    var metrics: String?
    @Option(help: "Write the summary JSON to this file.")
    var summary: String?

    static let settings: [String: SettingsFile.Kind] = ["metrics": .text, "summary": .text]
}

/// Where a hyper-training run's results go.
struct OutputOptions: ParsableArguments {
    @OptionGroup var files: ReportFiles
    @Option(help: ArgumentHelp("Write TensorBoard event files to this directory (view with `tensorboard --logdir DIR`).", valueName: "dir"))
    var tensorboard: String?
    @Option(name: .customLong("log-every"), help: "Metrics line (and TensorBoard points) every N steps.")
    var logEvery: Int = 100
    @Flag(help: "No progress line.")
    var quiet = false

    static let settings = ReportFiles.settings.merging(["tensorboard": .text, "log-every": .integer, "quiet": .flag]) { a, _ in a }

    func validate() throws {
        guard logEvery >= 1 else { throw ValidationError("--log-every must be ≥ 1") }
    }

    var reporterOptions: RunReporter.Options {
        RunReporter.Options(metricsPath: files.metrics, summaryPath: files.summary, tensorboardDirectory: tensorboard,
                            logEvery: logEvery, progress: !quiet)
    }
}
