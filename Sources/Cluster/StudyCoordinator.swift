import Foundation
import HyperOpt
import RunState
import Telemetry
import Transport
import Wire

/// Runs a baseline study (random search or Bayesian optimization) over the cluster: the
/// ROUTER loop around `StudyCoordinatorCore`, with the SQLite store, per-trial metrics
/// (best-so-far validation and test loss against wall time and trials) and a summary.
public final class StudyCoordinator {
    /// How the study coordinator runs.
    public struct Options: Sendable {
        /// Endpoints to bind.
        public var bind: [String]
        /// CURVE (nil: plain).
        public var curve: CurveServerSetup?
        /// SQLite file of the study.
        public var databasePath: String
        /// Continue an existing study in `databasePath` (otherwise it must not exist).
        public var resume = false
        /// Per-trial JSON Lines metrics.
        public var metricsPath: String?
        /// Summary JSON.
        public var summaryPath: String?
        /// Heartbeat interval, seconds.
        public var heartbeatInterval: Double = 1
        /// How long one database statement may wait for another process's lock while the study
        /// runs (the loop must keep serving heartbeats; refused writes are queued and retried).
        public var databaseBusyTimeoutMilliseconds: Int32 = 50
        /// After a signal, how long to keep retrying queued writes before exiting.
        public var finalFlushSeconds: Double = 5
        /// Seconds after the final Shutdowns during which any message is answered with the
        /// Shutdown too (`ServeLoop.farewell`); nil: two heartbeat intervals. The local launchers
        /// set 0: their workers are children that `LocalCluster.stop` ends anyway.
        public var farewellSeconds: Double?
        /// Log lines go here.
        public var log: @Sendable (String) -> Void = Log.writer("study")
        /// Called once bound, with the endpoints.
        public var onReady: @Sendable ([String]) -> Void = { _ in }

        /// - Parameters: see the properties.
        public init(bind: [String], databasePath: String) {
            self.bind = bind
            self.databasePath = databasePath
        }
    }

    /// The end of a study.
    public struct Outcome: Sendable {
        /// All trials.
        public let trials: [TrialRecord]
        /// The best trial.
        public let best: TrialRecord?
        /// Study seconds.
        public let wallSeconds: Double
        /// Stopped by a signal.
        public let interrupted: Bool
        /// The signal that stopped it (SIGINT, SIGTERM), if one did.
        public let signal: Int32?
        /// Changes the database never took (it stayed locked until the coordinator stopped);
        /// their trials are `running` in the file and re-run after `--resume`.
        public let unsavedWrites: Int
        /// Every proposal's timing (Bayesian optimization).
        public let proposals: [ProposalTiming]
    }

    private let config: ExperimentConfig
    private let study: StudySpec
    private let dataFingerprint: UInt64
    private let options: Options

    /// - Parameters: the experiment each trial trains, the study, the data fingerprint, options.
    public init(config: ExperimentConfig, study: StudySpec, dataFingerprint: UInt64, options: Options) {
        self.config = config
        self.study = study
        self.dataFingerprint = dataFingerprint
        self.options = options
    }

    /// Runs until every trial is done (or the budget is spent, or a signal).
    public func run(beforeLoop: () throws -> Void = {}) throws -> Outcome {
        let log = options.log
        let exists = FileManager.default.fileExists(atPath: options.databasePath)
        if exists && !options.resume {
            throw ClusterError.cannotResume("\(options.databasePath) already holds a study; pass --resume to continue it or choose another file")
        }
        let store = try StudyStore(path: options.databasePath)
        defer { store.close() }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let configJSON = String(decoding: try encoder.encode(config), as: UTF8.self)
        let studyJSON = String(decoding: try encoder.encode(study), as: UTF8.self)
        var priorSeconds = 0.0
        if exists {
            guard try store.meta("config") == configJSON, try store.meta("study") == studyJSON else {
                throw ClusterError.cannotResume("the study in \(options.databasePath) was started with other settings")
            }
            priorSeconds = try store.meta("seconds").flatMap(Double.init) ?? 0
        } else {
            try store.setMeta("config", configJSON)
            try store.setMeta("study", studyJSON)
            try store.setMeta("data_fingerprint", String(dataFingerprint))
        }
        let clock = ServeLoop.now
        let core = try StudyCoordinatorCore(config: config, study: study, store: store, dataFingerprint: dataFingerprint,
                                            now: clock(), priorSeconds: priorSeconds, heartbeatInterval: options.heartbeatInterval)
        if exists { log("resumed \(options.databasePath): \(core.trials.filter { $0.status == .done }.count) trial(s) done") }
        store.busyTimeoutMilliseconds = options.databaseBusyTimeoutMilliseconds
        let metrics = try options.metricsPath.map { try JSONLinesWriter(path: $0, append: exists) }
        defer { try? metrics?.close() }

        let server = try RouterServer(bind: options.bind, curve: options.curve,
                                      maxMessageBytes: Int64(16 << 20), log: log)
        defer { server.close() }
        log("study (\(study.strategy.rawValue), \(study.trials) trials of \(study.trialSteps) steps) listening on \(server.endpoints.joined(separator: ", "))")
        options.onReady(server.endpoints)
        try beforeLoop()

        var best: (valid: Double, test: Double)? = core.best.map { ($0.validLoss!, $0.testLoss ?? .nan) }
        var finishedCount = core.trials.filter { $0.status == .done || $0.status == .failed }.count
        func perform(_ actions: [StudyAction]) {
            for a in actions {
                switch a {
                case .send(let peer, let message): server.send(message, to: peer)
                case .log(let line): log(line)
                case .event(let r):
                    finishedCount += 1
                    if let v = r.validLoss, v.isFinite, v < (best?.valid ?? .infinity) { best = (v, r.testLoss ?? .nan) }
                    let seconds = core.studySeconds(now: clock())
                    perform(core.saveMeta("seconds", String(seconds), now: clock()))
                    var record = JSONRecord([
                        ("trial", r.id), ("trials_finished", finishedCount), ("elapsed_seconds", seconds),
                        ("status", r.status.rawValue),
                        ("valid_loss", r.validLoss), ("test_loss", r.testLoss),
                        ("train_loss", r.trainLoss), ("trial_seconds", r.trialSeconds),
                        ("best_valid_loss", best?.valid), ("best_test_loss", best?.test),
                    ])
                    if r.lambda.count <= 16 { record.append("lambda", r.lambda) }
                    try? metrics?.write(record)
                    log("trial \(r.id) \(r.status.rawValue): valid \(r.validLoss.map { String(format: "%.5f", $0) } ?? "-")  best \(best.map { String(format: "%.5f", $0.valid) } ?? "-")  (\(finishedCount)/\(study.trials))")
                }
            }
        }

        var interrupted = false
        let loop = ServeLoop(server: server, tickInterval: 0.1)
        let signal = try loop.run(isFinished: { core.isFinished(now: clock()) },
                                  handle: { peer, frames, now in perform(core.handle(peer: peer, frames: frames, now: now)) },
                                  tick: { now in perform(core.tick(now: now)) })
        if let s = signal {
            log("signal \(s): stopping; the study resumes with --resume")
            interrupted = true
        }
        let seconds = core.studySeconds(now: clock())
        perform(core.saveMeta("seconds", String(seconds), now: clock()))
        // Stopped while the file was locked: a few more attempts, then say what stays unsaved.
        let flushDeadline = clock() + options.finalFlushSeconds
        while core.unsavedWrites > 0 && clock() < flushDeadline {
            usleep(200_000)
            perform(core.flush(now: clock(), force: true))
        }
        if core.unsavedWrites > 0 {
            log("\(core.unsavedWrites) change(s) could not be written to \(options.databasePath) (still locked); their trials stay 'running' there and are re-run after --resume")
        }
        perform(core.shutdownAll(reason: interrupted ? "study coordinator stopped by signal \(signal ?? 0); it resumes with --resume" : "study complete"))
        let shutdownAt = clock()
        let trials = core.trials
        if let path = options.summaryPath {
            let b = core.best
            try SummaryWriter.write(JSONRecord([
                ("strategy", study.strategy.rawValue),
                ("trials_done", trials.filter { $0.status == .done }.count),
                ("trials_failed", trials.filter { $0.status == .failed }.count),
                ("best_trial", b?.id),
                ("best_lambda", b?.lambda),
                ("best_valid_loss", b?.validLoss),
                ("best_test_loss", b?.testLoss),
                ("wall_seconds", seconds),
                ("interrupted", interrupted),
                ("rejected", core.rejected),
                ("study", study),
                ("config", config),
            ]), to: path)
        }
        try loop.farewell(until: shutdownAt + (options.farewellSeconds ?? 2 * options.heartbeatInterval)) { perform(core.farewell(peer: $0)) }
        return Outcome(trials: trials, best: core.best, wallSeconds: seconds, interrupted: interrupted, signal: signal,
                       unsavedWrites: core.unsavedWrites, proposals: core.proposals)
    }
}
