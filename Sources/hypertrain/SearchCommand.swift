import ArgumentParser
import Cluster
import Datasets
import Foundation
import HyperOpt
import Settings

extension SearchStrategy: ExpressibleByArgument {}

/// Flags that define a baseline study.
struct StudyOptions: ParsableArguments {
    @Option(help: "random or bayes (GP expected improvement; Kriging believer for busy workers).")
    var strategy: SearchStrategy = .random
    @Option(help: "Trials in total.")
    var trials: Int = 32
    @Option(name: .customLong("trial-steps"), help: "Adam steps per trial (Algorithm 1).")
    var trialSteps: Int = 1000
    @Option(name: .customLong("trial-lr"), help: "Adam step size of a trial.")
    var trialLR: Double = 1e-3
    @Option(help: "Search box for every λ component, LO:HI (log space: the L2 weight is exp(λ)).")
    var box: String = "-10:2"
    @Option(help: "Gaussian prior MEAN:STD for every λ component instead of a box (clipped to the box).")
    var prior: String?
    @Option(name: .customLong("budget-seconds"), help: "Stop proposing trials after this many seconds.")
    var budgetSeconds: Double?
    @Option(help: "SQLite file of the study (resumable with --resume).")
    var study: String = "runs/study.sqlite"

    static let settings: [String: SettingsFile.Kind] = [
        "strategy": .text, "trials": .integer, "trial-steps": .integer, "trial-lr": .number, "box": .text, "prior": .text,
        "budget-seconds": .number, "study": .text,
    ]

    func validate() throws {
        guard trials >= 1, trialSteps >= 1, trialLR > 0 else { throw ValidationError("--trials, --trial-steps and --trial-lr must be positive") }
        _ = try bounds()
        if let budgetSeconds, !(budgetSeconds > 0) { throw ValidationError("--budget-seconds must be positive") }
    }

    func bounds() throws -> (Double, Double) {
        let p = box.split(separator: ":").compactMap { Double($0) }
        guard p.count == 2, p[0] < p[1] else { throw ValidationError("--box must be LO:HI with LO < HI, got '\(box)'") }
        if let prior {
            let q = prior.split(separator: ":").compactMap { Double($0) }
            guard q.count == 2, q[1] > 0 else { throw ValidationError("--prior must be MEAN:STD with STD > 0, got '\(prior)'") }
        }
        return (p[0], p[1])
    }

    /// The study and the experiment config each trial trains (its φ learning rate is the
    /// trial's Adam step size: that is what a worker uses for a trial).
    func spec(config: inout ExperimentConfig) throws -> StudySpec {
        let (lo, hi) = try bounds()
        let h = config.hyperparameterCount
        let dims: [SearchSpace.Dimension]
        if let prior {
            let q = prior.split(separator: ":").compactMap { Double($0) }
            dims = Array(repeating: .gaussian(mean: q[0], std: q[1], lower: lo, upper: hi), count: h)
        } else {
            dims = Array(repeating: .uniform(lower: lo, upper: hi), count: h)
        }
        config.phiLearningRate = trialLR
        return StudySpec(strategy: strategy, trials: trials, trialSteps: trialSteps, trialLearningRate: trialLR,
                         space: try SearchSpace(dims), wallBudgetSeconds: budgetSeconds)
    }
}

/// `hypertrain search`: a random-search or Bayesian-optimization study with trials running in
/// parallel worker processes on this machine.
struct SearchCommand: SettingsCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Run a baseline study (random search or GP Bayesian optimization) with parallel trial workers.",
        discussion: "Each trial is Algorithm 1: train the model from scratch at λ (Adam, --trial-steps) and report validation/test loss. Trials are recorded in SQLite; --resume continues a killed study. Across hosts: `hypertrain coordinator --study FILE …` plus `hypertrain worker`s.")

    @OptionGroup var logging: LoggingOptions
    @OptionGroup var settingsFile: SettingsFileOption
    @OptionGroup var experiment: TrialExperimentOptions
    @OptionGroup var studyOptions: StudyOptions
    @Option(help: "Trial worker processes on this machine.")
    var parallel: Int = 2
    @OptionGroup var files: ReportFiles
    @OptionGroup var data: DataOption
    @Flag(help: "Continue the study in --study.")
    var resume = false

    static let settings = TrialExperimentOptions.settings.merging(StudyOptions.settings) { a, _ in a }
        .merging(LoggingOptions.settings) { a, _ in a }
        .merging(ReportFiles.settings) { a, _ in a }.merging(DataOption.settings) { a, _ in a }
        .merging(["parallel": .integer, "resume": .flag]) { a, _ in a }

    func validate() throws {
        guard (1...64).contains(parallel) else { throw ValidationError("--parallel must be in 1...64") }
    }

    func run() throws {
        logging.bootstrap()
        var config = try experiment.config()
        let study = try studyOptions.spec(config: &config)
        let dataDir = self.data.directory
        let data = try ExperimentData.load(directory: dataDir, config: config)
        let endpoint = "ipc://\(FileManager.default.temporaryDirectory.path)/hypertrain-study-\(getpid()).sock"
        let children = LocalCluster(executable: LocalCluster.currentExecutable, endpoint: endpoint, trainers: parallel,
                                    validators: 0, dataDirectory: dataDir, log: { Console.error("search: " + $0) })
        defer { children.stop(timeout: 5) }
        var options = StudyCoordinator.Options(bind: [endpoint], databasePath: studyOptions.study)
        options.resume = resume
        options.farewellSeconds = 0   // the workers are our children (`children.stop()`)
        options.metricsPath = files.metrics
        options.summaryPath = files.summary
        let outcome = try StudyCoordinator(config: config, study: study, dataFingerprint: data.fingerprint, options: options)
            .run(beforeLoop: { try children.start() })
        if let b = outcome.best {
            print("best trial \(b.id): λ \(b.lambda.count <= 4 ? b.lambda.map { String(format: "%.3f", $0) }.joined(separator: ", ") : "(\(b.lambda.count) values)")  valid \(String(format: "%.5f", b.validLoss ?? .nan))  test \(String(format: "%.5f", b.testLoss ?? .nan))  (\(outcome.trials.filter { $0.status == .done }.count) trials, \(String(format: "%.1f", outcome.wallSeconds)) s)")
        }
        if let s = outcome.signal { throw ExitCode(Signals.exitStatus(for: s)) }
    }
}
