import Foundation
import HyperOpt
import Linalg
import RunState
import Telemetry
import Transport
import Wire

/// CURVE settings of a server socket.
public struct CurveServerSetup: Sendable {
    /// The server's key pair.
    public let keyPair: CurveKeyPair
    /// Client public keys allowed in.
    public let authorized: AuthorizedKeys

    /// - Parameters: see the properties.
    public init(keyPair: CurveKeyPair, authorized: AuthorizedKeys) {
        self.keyPair = keyPair
        self.authorized = authorized
    }
}

/// What a benchmark sees of a running coordinator (`Coordinator.Options.stopWhen`).
public struct CoordinatorProgress: Sendable {
    /// Steps completed.
    public let step: UInt64
    /// The state machine's counters.
    public let counters: CoordinatorCounters
    /// Peers alive.
    public let trainers: Int, validators: Int
    /// The state machine's serial time by phase.
    public let serialTime: CoordinatorSerialTime
    /// Seconds the loop spent handling messages and ticks (the state machine, sends, reports).
    public let busySeconds: Double
    /// Messages handled.
    public let messages: UInt64
}

/// The parameter server: binds one ROUTER socket, runs `CoordinatorCore` on the messages,
/// evaluates, checkpoints, reports, and at the end tells every peer to shut down.
public final class Coordinator {
    /// Everything about how the coordinator runs (not what it computes).
    public struct Options: Sendable {
        /// Endpoints to bind (`tcp://0.0.0.0:5555`, `ipc:///tmp/x.sock`).
        public var bind: [String]
        /// CURVE on the ROUTER socket (nil: plain).
        public var curve: CurveServerSetup?
        /// Sync or async.
        public var mode: ClusterMode = .sync
        /// Async staleness bound.
        public var maxStaleness: UInt64 = 4
        /// Heartbeat interval, seconds.
        public var heartbeatInterval: Double = 1
        /// Missed intervals before a peer is dead.
        public var heartbeatLiveness: Int = 5
        /// Checkpoint file (nil: none).
        public var checkpointPath: String?
        /// Checkpoint every N steps (0: only at the end and on signals).
        public var checkpointEvery: Int = 1000
        /// Continue from the checkpoint.
        public var resume = false
        /// Prometheus port (nil: off).
        public var metricsPort: UInt16?
        /// Address the Prometheus endpoint binds (the CLI derives it from `bind`).
        public var metricsHost = "127.0.0.1"
        /// Progress, metrics and summary files.
        public var reporter: RunReporter.Options = .init()
        /// Log lines go here.
        public var log: @Sendable (String) -> Void = Log.writer("coordinator")
        /// Run the validator on a thread of this process (over inproc://, with the splits
        /// already loaded) instead of as a peer process: it then shares no core with an extra
        /// process, and its tasks and results cost no trip through the I/O threads. Local mode
        /// does this; standalone validators can still join.
        public var inProcessValidator = false
        /// Training workers to run on threads of this process (over inproc://, with the splits
        /// already loaded; `run --trainers thread`) instead of as peer processes.
        public var inProcessTrainers = 0
        /// The in-process workers' `busyWaitMicroseconds` (`run --busy-wait-us`).
        public var inProcessBusyWaitMicroseconds = 0
        /// Called on every tick (at least every 100 ms) while the run goes on: local mode
        /// restarts child processes that died. A non-nil answer stops the run with that reason
        /// (checkpointed, peers told, an error thrown).
        public var supervise: (@Sendable () -> String?)? = nil
        /// Benchmarks: asked after every message and tick; `true` ends the run as if its steps
        /// were done (nil: run to the end).
        public var stopWhen: (@Sendable (CoordinatorProgress) -> Bool)?
        /// Seconds after the final Shutdowns during which any message is answered with the
        /// Shutdown too (`ServeLoop.farewell`); nil: two heartbeat intervals. The local launchers
        /// set 0: their workers are threads, or children that `LocalCluster.stop` ends anyway.
        public var farewellSeconds: Double?
        /// Called once the sockets are bound, with the bound endpoints (ports resolved).
        public var onReady: @Sendable ([String]) -> Void = { _ in }
        /// More summary fields from the finished run's λ̂ and evaluation (e.g. the run's answer
        /// retrained at λ̂); called once, after the workers were told to exit, and not when the
        /// run was interrupted.
        public var summaryExtras: @Sendable (_ lambdaHat: [Float], _ evaluation: Evaluation) -> [(String, JSONRecord.Value)] = { _, _ in [] }

        /// - Parameter bind: endpoints to bind.
        public init(bind: [String]) { self.bind = bind }
    }

    /// How a run ended.
    public struct Outcome: Sendable {
        /// λ̂ at the end.
        public let lambdaHat: [Float]
        /// Final evaluation.
        public let evaluation: Evaluation
        /// Steps completed.
        public let steps: UInt64
        /// Stopped by a signal before the end (state checkpointed).
        public let interrupted: Bool
        /// The signal that stopped the run (SIGINT, SIGTERM), if one did.
        public let signal: Int32?
        /// Counters.
        public let counters: CoordinatorCounters
        /// The final state.
        public let snapshot: HyperState.Snapshot
    }

    private let config: ExperimentConfig
    /// The built-in MLP's splits (nil: an external model, whose data are the workers').
    private let data: ExperimentData?
    /// An external model's initial weights (φ starts so that φ(λ̂₀) equals them).
    private let initialWeights: [Float]
    private let options: Options

    /// - Parameters:
    ///   - config: the experiment.
    ///   - data: the coordinator's copy of the splits (for evaluation and the fingerprint).
    ///   - options: how to run.
    public init(config: ExperimentConfig, data: ExperimentData, options: Options) {
        self.config = config
        self.data = data
        self.initialWeights = []
        self.options = options
    }

    /// A coordinator for an external model (`config.external`, docs/sdk.md): workers own the
    /// data and the prediction loss, so there is no evaluation here; the summary reports the
    /// last step's training loss and validation-batch loss.
    /// - Parameters:
    ///   - config: the experiment; `config.external` must be set.
    ///   - initialWeights: the model's initial w (`config.weightCount` values).
    ///   - options: how to run (sync or async mode; its workers take weight tasks).
    public init(config: ExperimentConfig, initialWeights: [Float], options: Options) {
        precondition(config.external != nil && initialWeights.count == config.weightCount,
                     "Coordinator: an external model needs its \(config.weightCount) initial weights, got \(initialWeights.count)")
        self.config = config
        self.data = nil
        self.initialWeights = initialWeights
        self.options = options
    }

    /// The data fingerprint workers and checkpoints compare (0 for an external model).
    private var fingerprint: UInt64 { data?.fingerprint ?? 0 }

    /// Problems as one message: clauses joined by "; " without a period in front of a
    /// separator ("… now; lambdaLearningRate …", never "now.; lambdaLearningRate").
    static func sentences(_ problems: [String]) -> String {
        problems.map { $0.hasSuffix(".") ? String($0.dropLast()) : $0 }.joined(separator: "; ")
    }

    /// Runs to the end (or a signal). Throws on unrecoverable errors (bad checkpoint, bind failure, divergence).
    public func run(beforeLoop: () throws -> Void = {}) throws -> Outcome {
        Transport.tuneAllocatorForLargeMessages()
        let log = options.log
        let trainer = data.map { HyperTrainer(config: config, data: $0) }
        let state: HyperState
        if let trainer {
            state = HyperState(config: config, phi: trainer.initialPhi(), lambdaHat: trainer.initialLambdaHat())
        } else {
            let lambda0 = [Float](repeating: Float(config.lambdaInit), count: config.hyperparameterCount)
            let phi0 = TaskGradientExpander(config: config).initialPhi(initialWeights: initialWeights, lambdaHat: lambda0,
                                                                               seed: config.seed, scale: config.initScale)
            state = HyperState(config: config, phi: phi0, lambdaHat: lambda0)
        }
        /// An external model's last reported losses (its stand-in for an evaluation).
        var lastTrainLoss = Double.nan, lastValidLoss = Double.nan
        var priorWall = 0.0
        /// The checkpoint's counters: a resumed run's summary and checkpoints count from them.
        var priorCounters: [String: UInt64] = [:]
        if options.resume, let path = options.checkpointPath, FileManager.default.fileExists(atPath: path) || FileManager.default.fileExists(atPath: path + ".prev") {
            let found = try Checkpoint.latestGood(at: path)
            if found.usedPrevious {
                log("checkpoint \(path) is unusable (\(found.latestError.map { "\($0)" } ?? "missing")); resuming from the previous one, \(found.path)")
            }
            let ckpt = found.checkpoint
            let problems = ckpt.compatible(with: config) + state.problems(resuming: ckpt.snapshot)
            guard problems.isEmpty else { throw ClusterError.cannotResume(Self.sentences(problems)) }
            guard ckpt.dataFingerprint == fingerprint else { throw ClusterError.cannotResume("the data splits differ from the checkpoint's") }
            state.restore(ckpt.snapshot)
            state.restoreRollbacks(Int(min(ckpt.counters["guard_rollbacks"] ?? 0, 60)))
            priorWall = ckpt.wallSecondsSoFar
            priorCounters = ckpt.counters
            log("resumed from \(path) at step \(state.step)")
        } else if options.resume {
            log("--resume: no checkpoint at \(options.checkpointPath ?? "(none)"); starting fresh")
        }
        if let why = options.mode.conflict(with: config) { throw ClusterError.conflictingSettings(why) }
        let core = CoordinatorCore(config: config, state: state, mode: options.mode, maxStaleness: options.maxStaleness,
                                   dataFingerprint: fingerprint, heartbeatInterval: options.heartbeatInterval,
                                   heartbeatLiveness: options.heartbeatLiveness)
        /// The final evaluation: the built-in model's on the coordinator's splits; an external
        /// model's last training loss and its final validation loss at φ(λ̂) (sync mode), or the
        /// last validation batch's (async mode, or no validator left to compute it).
        func evaluate() -> Evaluation {
            trainer?.evaluate(phi: state.phi.constPointer, lambda: state.lambdaHat.constPointer)
                ?? Evaluation(trainLoss: lastTrainLoss, validLoss: core.finalValidLoss ?? (lastValidLoss.isNaN ? core.validLoss ?? .nan : lastValidLoss),
                              testLoss: .nan, testError: .nan)
        }
        let reporter = try RunReporter(config: config, options: options.reporter, startStep: state.step)
        let metrics = ClusterMetrics(port: options.metricsPort, host: options.metricsHost, log: log)
        defer { metrics.stop() }

        let inproc = "inproc://hypertrain-local"
        let anyInProcess = options.inProcessValidator || options.inProcessTrainers > 0
        let server = try RouterServer(bind: options.bind + (anyInProcess && data != nil ? [inproc] : []), curve: options.curve,
                                      maxMessageBytes: Int64(max(config.phiCount, 1) * 4 * 2 + (16 << 20)), log: log)
        defer { server.close() }
        // (An external model's coordinator has no data, and so no validator of its own.)
        let roles: [Role] = (options.inProcessValidator ? [.validator] : []) + Array(repeating: .trainer, count: options.inProcessTrainers)
        let inProcess = data.map { d in roles.map { InProcessWorker(role: $0, connect: inproc, context: server.context, data: d,
                                                                        busyWaitMicroseconds: options.inProcessBusyWaitMicroseconds, log: log) } } ?? []
        // Runs before `server.close()`: the workers have their Shutdown by then and close their sockets.
        defer { for w in inProcess { w.join(orAbort: server.context) } }
        // Tasks go on the wire as they are made (the first trainer starts while the others'
        // weights are computed).
        core.taskSink = { action in
            if case .send(let peer, let message) = action { server.send(message, to: peer) }
        }
        let bound = server.endpoints.filter { !$0.hasPrefix("inproc://") }
        log("listening on \(bound.joined(separator: ", ")) (\(options.curve == nil ? "plain" : "CURVE"), \(options.mode.rawValue) mode, step \(state.step)/\(config.steps))")
        options.onReady(bound)
        for w in inProcess { w.start() }
        try beforeLoop()

        let clock = ServeLoop.now
        var lastCheckpointStep = state.step
        var interrupted = false
        /// Clock time when every role had its first task (worker processes started, data loaded).
        var startupSeconds: Double? = nil
        let firstStep = state.step
        let tickInterval = min(options.heartbeatInterval / 2, 0.1)

        // Repeated refusals (stale gradients in async mode) are logged once per kind per 10 s,
        // with a count of the ones held back.
        var throttle = LogThrottle(interval: 10)
        /// Counters over the whole run, including before a resume.
        func totals() -> (gradients: UInt64, hypergradients: UInt64, reissued: UInt64) {
            let c = core.counters
            return (c.gradientsApplied + (priorCounters["gradients_applied"] ?? 0),
                    c.hypergradientsApplied + (priorCounters["hypergradients_applied"] ?? 0),
                    c.tasksReissued + (priorCounters["tasks_reissued"] ?? 0))
        }
        // A failed write (disk full, permissions) is logged once per distinct error and counted;
        // the next attempt waits for the next interval, not the next step (a full disk must not
        // cost every step a failed write). The file already there and its .prev stay intact.
        var checkpointFailures = CheckpointFailures()
        func checkpoint() -> CheckpointError? {
            guard let path = options.checkpointPath else { return nil }
            let t = totals()
            let ckpt = Checkpoint(snapshot: state.snapshot(), config: config, dataFingerprint: fingerprint,
                                  counters: ["gradients_applied": t.gradients, "hypergradients_applied": t.hypergradients,
                                             "tasks_reissued": t.reissued, "guard_rollbacks": UInt64(state.rollbacks)],
                                  wallSecondsSoFar: priorWall + reporter.elapsed)
            lastCheckpointStep = state.step
            do throws(CheckpointError) {
                try ckpt.write(to: path)
                return nil
            } catch {
                if checkpointFailures.record(error) {
                    log("checkpoint at step \(state.step) failed: \(error); keeping the previous checkpoint, next attempt in \(options.checkpointEvery) steps (further failures like this are counted, not logged)")
                }
                return error
            }
        }

        func perform(_ actions: [CoordinatorAction]) {
            for action in actions {
                switch action {
                case .send(let peer, let message):
                    server.send(message, to: peer)
                case .log(let line):
                    // Refusals repeat (async mode's stale gradients); peer events, which
                    // operators and scripts count line by line, are never held back.
                    if line.hasPrefix("rejected ") {
                        for l in throttle.lines(for: line, now: clock()) { log(l) }
                    } else {
                        log(line)
                    }
                case .event(var report):
                    if let t = report.trainLoss { lastTrainLoss = t }
                    if let v = report.validBatchLoss { lastValidLoss = v }
                    if let trainer, config.evalEvery > 0 && report.step % UInt64(config.evalEvery) == 0 {
                        let e = trainer.evaluate(phi: state.phi.constPointer, lambda: state.lambdaHat.constPointer)
                        report = StepReport(step: report.step, lambdaHat: report.lambdaHat, trainLoss: report.trainLoss,
                                            validBatchLoss: report.validBatchLoss, evaluation: e)
                        metrics.record(evaluation: e)
                    }
                    reporter.record(report)
                    metrics.record(report: report, counters: core.counters, peers: core.peerCounts)
                    if options.checkpointEvery > 0 && state.step - lastCheckpointStep >= UInt64(options.checkpointEvery) {
                        _ = checkpoint()
                    }
                }
            }
        }

        let loop = ServeLoop(server: server, tickInterval: tickInterval)
        var supervisorStop: String?
        var busySeconds = 0.0
        var messages: UInt64 = 0
        let stopWhen = options.stopWhen
        func stopRequested() -> Bool {
            guard let stopWhen else { return false }
            let peers = core.peerCounts
            return stopWhen(CoordinatorProgress(step: state.step, counters: core.counters, trainers: peers.trainers, validators: peers.validators,
                                                serialTime: core.serialTime, busySeconds: busySeconds, messages: messages))
        }
        let signal = try loop.run(isFinished: { core.isFinished || supervisorStop != nil || stopRequested() },
                                handle: { peer, frames, now in
                                    let t0 = clock()
                                    perform(core.handle(peer: peer, frames: frames, now: now))
                                    busySeconds += clock() - t0
                                    messages += 1
                                    if startupSeconds == nil && core.firstRoundIssued { startupSeconds = reporter.elapsed }
                                },
                                tick: { now in
                                    let t0 = clock()
                                    // (Not while a signal stops the run: the children got it too.)
                                    if Signals.pending == nil, let stop = options.supervise?() { supervisorStop = stop }
                                    if Signals.pending == nil, let (role, why) = inProcess.lazy.compactMap({ w in w.failure.map { (w.role, $0) } }).first {
                                        supervisorStop = "the in-process \(role) stopped: \(why)"
                                    }
                                    perform(core.tick(now: now))
                                    metrics.record(counters: core.counters, peers: core.peerCounts)
                                    busySeconds += clock() - t0
                                })
        if let s = signal {
            log("signal \(s): checkpointing at step \(state.step) and stopping")
            interrupted = true
        }
        let farewellSeconds = options.farewellSeconds ?? 2 * options.heartbeatInterval
        func farewell(startedAt: Double) throws {
            try loop.farewell(until: startedAt + farewellSeconds) { perform(core.farewell(peer: $0)) }
        }
        if let fatal = core.fatalError ?? supervisorStop {
            _ = checkpoint()
            perform(core.shutdownAll(reason: "run aborted"))
            try farewell(startedAt: clock())
            throw ClusterError.aborted(fatal)
        }
        let finalCheckpointError = checkpoint()
        for line in throttle.flush() { log(line) }
        for line in checkpointFailures.repeatedLines { log(line) }
        // Every peer is told why the coordinator goes: the run is complete (exit 0), or it was
        // stopped by a signal and continues with --resume (standalone workers exit 75 so that a
        // supervisor with Restart=on-failure starts them again to wait for it).
        perform(core.shutdownAll(reason: signal.map { ShutdownReason.coordinatorStopped(signal: $0) } ?? ShutdownReason.runComplete))
        let shutdownAt = clock()
        let evaluation = evaluate()
        let c = core.counters
        // The single-process run starts its clock after loading data and building its trainer;
        // here the clock also covers the workers doing that. Report it, and the rate without it.
        let wall = reporter.elapsed
        let startup = min(startupSeconds ?? 0, wall)
        let stepsRun = Double(state.step - firstStep)
        let extras = interrupted ? [] : options.summaryExtras(state.lambdaHat.array, evaluation)
        let counters: [(String, JSONRecord.Value)] = [
            ("mode", options.mode.rawValue),
            ("gradients_applied", Int(totals().gradients)),
            ("hypergradients_applied", Int(totals().hypergradients)),
            ("gradients_rejected", c.rejected.mapValues { Int($0) }),
            ("results_received", Int(c.resultsReceived)),
            ("results_refused", c.resultsRefused.mapValues { Int($0) }),
            ("tasks_reissued", Int(totals().reissued)),
            ("checkpoint_failures", checkpointFailures.total),
            ("peers_lost", Int(c.peersLost)),
            ("registrations", Int(c.registrations)),
            ("interrupted", interrupted),
            ("startup_seconds", startup),
            ("steps_per_second_after_startup", stepsRun / max(wall - startup, 1e-9)),
        ]
        try reporter.finish(lambdaHat: state.lambdaHat.array, evaluation: evaluation, steps: state.step, extra: counters + extras)
        try farewell(startedAt: shutdownAt)
        if let error = finalCheckpointError, let path = options.checkpointPath {
            throw ClusterError.finalCheckpointFailed(path: path, reason: "\(error)")
        }
        return Outcome(lambdaHat: state.lambdaHat.array, evaluation: evaluation, steps: state.step,
                       interrupted: interrupted, signal: signal, counters: c, snapshot: state.snapshot())
    }
}
