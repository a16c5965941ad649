import ArgumentParser
import Cluster
import RunState
import Datasets
import Foundation
import HyperOpt
import Linalg
import Telemetry
@preconcurrency import Glibc

/// `hypertrain run`: hyper-training on this machine, in one process (`--workers 0`) or as a
/// local cluster of processes.
struct RunCommand: SettingsCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run hyper-training on MNIST (Algorithms 2–4).",
        discussion: "Defaults reproduce the paper's Fig. 4 setting with σ = 0.5: λ̂ moves from −3.5 to the cross-validation optimum.")

    @OptionGroup var logging: LoggingOptions
    @OptionGroup var settingsFile: SettingsFileOption
    @OptionGroup var experiment: ExperimentOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var cluster: ClusterRunOptions
    @OptionGroup var data: DataOption

    @Option(help: "Training workers (0: everything in this one process; auto: the layout measured fastest for this machine's cores — one trainer thread per core, see BENCHMARKS.md). With N ≥ 1 this process is the coordinator and starts N workers (processes over ipc:// unless --trainers thread), and the validator (see --validator).")
    var workers: WorkerCount = .count(0)

    @Option(help: "With --workers ≥ 1: where the validator runs — thread (a thread of this process, the coordinator's; the default) or process (a child process like the trainers).")
    var validator: Placement = .thread

    @Option(help: "With --workers ≥ 1: where the training workers run — process (child processes over ipc://; the default for --workers N) or thread (threads of this process over inproc://, sharing its data; the default for --workers auto, and the faster layout on one machine).")
    var trainers: Placement?

    @Option(name: .customLong("busy-wait-us"),
            help: "With --workers ≥ 1: microseconds the workers keep checking for their next task before sleeping (0: sleep at once). A sleeping worker on an idle CPU is woken by an interrupt that can take a few hundred µs to land on a virtual machine, once per step; a spinning one takes a core from another role when there are fewer cores than busy threads. Default: 2000 when every trainer, the coordinator and the validator have a core of their own, else 0.")
    var busyWaitMicroseconds: Int?

    static let settings = ExperimentOptions.settings.merging(OutputOptions.settings) { a, _ in a }
        .merging(LoggingOptions.settings) { a, _ in a }
        .merging(ClusterRunOptions.settings) { a, _ in a }.merging(DataOption.settings) { a, _ in a }
        .merging(["workers": .text, "busy-wait-us": .integer, "validator": .text, "trainers": .text]) { a, _ in a }

    func validate() throws {
        if case .count(let n) = workers, !(0...64).contains(n) { throw ValidationError("--workers must be in 0...64 or auto") }
        if let b = busyWaitMicroseconds, !(0...1_000_000).contains(b) { throw ValidationError("--busy-wait-us must be in 0...1000000") }
        if workers == .count(0) && (cluster.resume || cluster.mode != .sync) {
            throw ValidationError("--resume and --mode need --workers ≥ 1 (the single-process run writes a checkpoint only at the end)")
        }
    }

    func run() throws {
        logging.bootstrap()
        let config = try experiment.config()
        for w in config.warnings() { Console.error("warning: \(w)") }
        try ResolvedSettings.write(config, besideSummary: output.files.summary)
        let dataDir = self.data.directory
        let trainers = workers.trainers(samplesPerStep: config.samplesPerStep, cores: ProcessInfo.processInfo.activeProcessorCount)
        if workers == .auto {
            Console.error("run: --workers auto: \(trainers) training worker(s) as \(trainerPlacement == .thread ? "threads" : "processes") on \(ProcessInfo.processInfo.activeProcessorCount) cores")
        }
        if trainers == 0 && (cluster.resume || cluster.mode != .sync) {
            throw ValidationError("--resume and --mode need training workers; --workers auto chose none on \(ProcessInfo.processInfo.activeProcessorCount) core(s) (give --workers N)")
        }
        if let why = cluster.mode.conflict(with: config) { throw ValidationError(why) }
        if trainers > 0 { return try runLocalCluster(config: config, dataDir: dataDir, trainers: trainers) }
        let data = try ExperimentData.load(directory: dataDir, config: config)
        let run = LocalRun(config: config, data: data)
        run.log = { Console.error($0) }
        let reporter = try RunReporter(config: config, options: output.reporterOptions)
        func checkpoint() -> Checkpoint {
            Checkpoint(snapshot: run.state.snapshot(), config: config, dataFingerprint: data.fingerprint,
                       counters: ["guard_rollbacks": UInt64(run.state.rollbacks)], wallSecondsSoFar: reporter.elapsed)
        }
        // Every --checkpoint-every steps, so that a killed run leaves its latest state for
        // `export` and `predict`; a failed write is reported once per distinct error (counted,
        // the count printed at the end), the previous file stays, and the run goes on to the
        // next interval. The final write below must succeed, or the run fails.
        var checkpointFailures = CheckpointFailures()
        let evaluation = try run.run { report in
            reporter.record(report)
            if let path = cluster.checkpoint, cluster.checkpointEvery > 0, report.step % UInt64(cluster.checkpointEvery) == 0,
               report.step < UInt64(config.steps) {
                do {
                    try checkpoint().write(to: path)
                } catch {
                    if checkpointFailures.record(error) {
                        Console.error("run: checkpoint at step \(report.step) failed: \(error); keeping the previous one, next attempt in \(cluster.checkpointEvery) steps (further failures like this are counted, not printed)")
                    }
                }
            }
            return true
        }
        let hyperTrainingSeconds = reporter.elapsed
        let final = checkpoint()
        let answer = answerReport(config: config, data: data, lambdaHat: run.state.lambdaHat.array, evaluation: evaluation)
        try reporter.finish(lambdaHat: run.state.lambdaHat.array, evaluation: evaluation, steps: run.state.step,
                            extra: [("mode", "single-process"), ("workers", 0), ("hyper_training_seconds", hyperTrainingSeconds)] as [(String, JSONRecord.Value)] + answer.fields)
        for line in checkpointFailures.repeatedLines { Console.error("run: " + line) }
        if let path = cluster.checkpoint {
            do { try final.write(to: path) } catch {
                throw CommandError("the final checkpoint \(path) could not be written (\(error)); the file there (or its .prev) is from an earlier step")
            }
        }
        print(Self.resultLine(lambdaHat: run.state.lambdaHat.array, evaluation: evaluation))
        if let line = answer.line { print(line) }
    }

    /// With `retrainSteps` ≥ 1, retrains the model from scratch at λ̂ (`AnswerModel.retrained`,
    /// what `export` reproduces): its losses as summary fields and a result line. Always the
    /// answer's fields (`answer`, `answer_valid_loss`, `answer_test_loss`).
    private func answerReport(config: ExperimentConfig, data: ExperimentData, lambdaHat: [Float],
                              evaluation: Evaluation) -> (fields: [(String, JSONRecord.Value)], line: String?) {
        let answer = config.answer ?? .hypernetwork
        var answerEvaluation: Evaluation? = evaluation
        var fields: [(String, JSONRecord.Value)] = []
        var line: String?
        if let steps = config.retrainSteps, steps > 0 {
            if !output.quiet { Console.error("run: retraining from scratch at λ̂ for \(steps) steps") }
            let clock = ProgressLine.monotonicSeconds
            let started = clock()
            do {
                let e = try AnswerModel.retrained(config: config, data: data, lambdaHat: lambdaHat).evaluation
                fields += [("retrained_valid_loss", e.validLoss), ("retrained_test_loss", e.testLoss),
                           ("retrained_test_error", e.testError)]
                line = "retrained (\(steps) steps at λ̂)  valid \(String(format: "%.5f", e.validLoss))  test \(String(format: "%.5f", e.testLoss))  test error \(String(format: "%.4f", e.testError))"
                if answer == .retrained { answerEvaluation = e }
            } catch {
                Console.error("run: retraining at λ̂ diverged: \(error)")
                fields += [("retrained_valid_loss", Double?.none), ("retrained_test_loss", Double?.none), ("retrained_test_error", Double?.none)]
                if answer == .retrained { answerEvaluation = nil }
            }
            fields.append(("retrain_seconds", clock() - started))
        }
        fields += [("answer", answer.rawValue), ("answer_valid_loss", answerEvaluation?.validLoss),
                   ("answer_test_loss", answerEvaluation?.testLoss)]
        return (fields, line)
    }

    /// This process coordinates; `trainers` trainers run as child processes or threads of this
    /// process (`--trainers`), the validator as a thread (`--validator thread`) or a child
    /// process (`--validator process`).
    private func runLocalCluster(config: ExperimentConfig, dataDir: String, trainers: Int) throws {
        // The data files must be there before any child starts (a missing file is one clear error,
        // not one per process).
        try MNIST.requireFiles(in: dataDir)
        // Busy threads: the trainers, the coordinator and the validator.
        let spin = busyWaitMicroseconds ?? (ProcessInfo.processInfo.activeProcessorCount >= trainers + 2 ? 2_000 : 0)
        let socketDir = FileManager.default.temporaryDirectory.path
        let endpoint = "ipc://\(socketDir)/hypertrain-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let children = LocalCluster(executable: LocalCluster.currentExecutable, endpoint: endpoint, trainers: trainerPlacement == .process ? trainers : 0,
                                    validators: validator == .process ? 1 : 0, dataDirectory: dataDir, busyWaitMicroseconds: spin,
                                    log: { Console.error("run: " + $0) })
        // After a normal end the children exit on the coordinator's Shutdown; otherwise
        // (error, Ctrl-C) they are terminated at once.
        var finished = false
        defer { children.stop(timeout: finished ? 5 : 0) }
        // The children start first, so that their data loading overlaps this process's; they
        // retry Hello until the coordinator has bound its socket and answers.
        try children.start()
        let data = try ExperimentData.load(directory: dataDir, config: config)
        var options = Coordinator.Options(bind: [endpoint])
        cluster.apply(to: &options)
        options.inProcessValidator = validator == .thread
        options.inProcessTrainers = trainerPlacement == .thread ? trainers : 0
        options.farewellSeconds = 0   // threads, or children that `children.stop()` ends
        options.inProcessBusyWaitMicroseconds = spin
        // A child that dies (kill -9, OOM, crash) is started again; one that keeps dying stops the run.
        let supervisor = ChildSupervisor(children)
        options.supervise = { supervisor.check() }
        options.reporter = output.reporterOptions
        // The answer (and the retraining at λ̂, in this process once the workers are gone) goes
        // into the summary as in the single-process run.
        let answerLine = AnswerLine()
        options.summaryExtras = { [self] lambdaHat, evaluation in
            let answer = answerReport(config: config, data: data, lambdaHat: lambdaHat, evaluation: evaluation)
            answerLine.text = answer.line
            return answer.fields
        }
        // --quiet keeps what an operator must see: lost peers, refusals and failed checkpoints.
        options.log = { line in
            if !output.quiet || line.contains("lost") || line.contains("rejected") || line.contains("checkpoint") && line.contains("failed") {
                Console.error("coordinator: " + line)
            }
        }
        let coordinator = Coordinator(config: config, data: data, options: options)
        let outcome = try coordinator.run(beforeLoop: {})
        finished = !outcome.interrupted
        print(Self.resultLine(lambdaHat: outcome.lambdaHat, evaluation: outcome.evaluation))
        if let line = answerLine.text { print(line) }
        if outcome.interrupted {
            Console.error("interrupted at step \(outcome.steps)" + (cluster.checkpoint.map { "; resume with --resume --checkpoint \($0)" } ?? ""))
            throw ExitCode(Signals.exitStatus(for: outcome.signal ?? SIGINT))
        }
    }

    static func resultLine(lambdaHat: [Float], evaluation: Evaluation) -> String {
        "λ̂ \(LambdaSummary.describe(lambdaHat.map(Double.init)))  valid \(String(format: "%.5f", evaluation.validLoss))  test \(String(format: "%.5f", evaluation.testLoss))  test error \(String(format: "%.4f", evaluation.testError))"
    }
}

/// The retrained model's result line, handed out of the coordinator's summary hook (called
/// once, on the thread that runs the coordinator, before `run` returns).
private final class AnswerLine: @unchecked Sendable {
    var text: String?
}

/// Where local mode runs the validator or the trainers.
enum Placement: String, ExpressibleByArgument, CaseIterable {
    /// Threads of the coordinator's process (inproc://, the splits shared).
    case thread
    /// Child processes (ipc://), as on several hosts.
    case process
}

extension RunCommand {
    /// Where the trainers run: as asked, else threads for `--workers auto` (the fastest layout
    /// on one machine, BENCHMARKS.md "Local layout") and processes for `--workers N`.
    var trainerPlacement: Placement { trainers ?? (workers == .auto ? .thread : .process) }
}

/// `--workers`: a number of training worker processes, or `auto`.
enum WorkerCount: Equatable, ExpressibleByArgument {
    case count(Int)
    /// The layout measured fastest for the machine's cores (BENCHMARKS.md, "Local layout").
    case auto

    init?(argument: String) {
        if argument == "auto" { self = .auto } else if let n = Int(argument) { self = .count(n) } else { return nil }
    }

    var defaultValueDescription: String {
        switch self {
        case .auto: "auto"
        case .count(let n): "\(n)"
        }
    }

    /// Training workers to start (0: the single-process run). `auto`: none on one core (the
    /// cluster only adds work there); else one trainer per training task of a step, at most one
    /// per core (a sync step has no more work to hand out), as threads of this process. On 2
    /// cores with the presets' 2 tasks per step that is 2 (BENCHMARKS.md, "Local layout").
    func trainers(samplesPerStep: Int, cores: Int) -> Int {
        switch self {
        case .count(let n): return n
        case .auto:
            guard cores >= 2 else { return 0 }
            return min(max(samplesPerStep, 1), cores)
        }
    }
}

/// Hands `LocalCluster.supervise` to the coordinator's tick (which runs on the coordinator's
/// thread, the one that started the children).
private final class ChildSupervisor: @unchecked Sendable {
    private let children: LocalCluster
    init(_ children: LocalCluster) { self.children = children }
    func check() -> String? { children.supervise() }
}
