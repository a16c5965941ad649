import Cluster
import Foundation
import Glibc
import HyperOpt
import Telemetry

/// `hypertrain bench study`: the real study coordinator (`StudyCoordinator`, Bayesian
/// optimization) against N synthetic trial worker processes (`SyntheticWorker`) that "run" a
/// trial by sleeping its length and report a smooth synthetic loss of λ: how long a proposal
/// takes as observations accumulate, and what share of their time the workers wait for one.
public struct StudyBenchmark {
    /// What one study measured.
    public struct Result: Sendable {
        public var workers: Int
        public var trials: Int
        public var trialSeconds: Double
        public var wallSeconds: Double
        public var proposals: [ProposalTiming]
        /// Summed over the workers: seconds answering trials and waiting for the next one.
        public var workerBusySeconds: Double
        public var workerWaitSeconds: Double
        public var tasks: Int
        public var bestValidLoss: Double?
        public var load: String

        /// Share of the workers' time spent waiting for a trial.
        public var waitFraction: Double { workerWaitSeconds / max(workerBusySeconds + workerWaitSeconds, 1e-9) }
    }

    /// The `hypertrain` binary (it has the hidden `bench-worker` command).
    public var executable: String

    public init(executable: String) { self.executable = executable }

    /// Seconds of one real trial (Algorithm 1) of `config` at λ = λ₀, in this process.
    public static func realTrialSeconds(config: ExperimentConfig, data: ExperimentData, steps: Int, learningRate: Double) throws -> Double {
        let lambda = [Float](repeating: -4, count: config.hyperparameterCount)
        var times: [Double] = []
        for i in 0..<3 {
            let t0 = ProgressLine.monotonicSeconds()
            _ = try CrossValidation.trial(config: config, data: data, lambda: lambda, steps: steps, learningRate: learningRate, trialIndex: i)
            times.append(ProgressLine.monotonicSeconds() - t0)
        }
        return times.sorted()[1]
    }

    /// Runs `study` with `workers` synthetic trial workers that sleep `trialSeconds` per trial.
    public func run(config: ExperimentConfig, study: StudySpec, workers: Int, trialSeconds: Double, directory: String) throws -> Result {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let database = directory + "/bench-study-\(getpid()).sqlite"
        let statsDir = directory + "/bench-study-stats-\(getpid())"
        try? FileManager.default.removeItem(atPath: database)
        try? FileManager.default.removeItem(atPath: statsDir)
        try FileManager.default.createDirectory(atPath: statsDir, withIntermediateDirectories: true)
        defer {
            try? FileManager.default.removeItem(atPath: database)
            try? FileManager.default.removeItem(atPath: statsDir)
        }
        let endpoint = "ipc://\(FileManager.default.temporaryDirectory.path)/ht-bench-study-\(getpid()).sock"
        var options = StudyCoordinator.Options(bind: [endpoint], databasePath: database)
        // A synthetic trial sleeps without heartbeats, as a real one computes without them.
        options.heartbeatInterval = max(1, trialSeconds)
        options.farewellSeconds = 0
        options.log = { line in if line.contains("lost") || line.contains("database") { FileHandle.standardError.write(Data(("study: " + line + "\n").utf8)) } }
        let children = BenchChildren(executable: executable)
        defer { children.stop() }
        let started = ProgressLine.monotonicSeconds()
        let outcome = try StudyCoordinator(config: config, study: study, dataFingerprint: 0, options: options).run(beforeLoop: {
            for i in 0..<workers {
                try children.start(["bench-worker", "--connect", endpoint, "--role", "trainer", "--trial-seconds", String(trialSeconds),
                                    "--stats", statsDir + "/\(i).json", "--parent-pid", String(getpid())])
            }
        })
        let wall = ProgressLine.monotonicSeconds() - started
        children.waitForExit(timeout: 10)
        var busy = 0.0, wait = 0.0, tasks = 0
        for i in 0..<workers {
            guard let data = FileManager.default.contents(atPath: statsDir + "/\(i).json"),
                  let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { continue }
            busy += json["busy_seconds"] as? Double ?? 0
            wait += json["wait_seconds"] as? Double ?? 0
            tasks += json["tasks"] as? Int ?? 0
        }
        return Result(workers: workers, trials: study.trials, trialSeconds: trialSeconds, wallSeconds: wall, proposals: outcome.proposals,
                      workerBusySeconds: busy, workerWaitSeconds: wait, tasks: tasks, bestValidLoss: outcome.best?.validLoss,
                      load: ClusterBenchmark.loadAverage())
    }

    /// One proposal's seconds at each number of observations (synthetic losses from
    /// `SyntheticWorker.trialLoss` at the space's random points) with `pending` fantasies, in
    /// this process, with the configuration `configuration(n)` gives.
    public static func proposalLatency(space: SearchSpace, observations: [Int], pending: Int, seed: UInt64,
                                       configuration: (Int) -> BayesianOptimizer.Configuration) throws -> [(n: Int, seconds: Double)] {
        var out: [(Int, Double)] = []
        for n in observations {
            let points = (0..<(n + pending)).map { space.sample(seed: seed, index: UInt64($0)) }
            let obs = points.prefix(n).map { BayesianOptimizer.Observation(lambda: $0, loss: SyntheticWorker.trialLoss($0.map(Float.init))) }
            let bo = BayesianOptimizer(space: space, seed: seed, configuration: configuration(n))
            let t0 = ProgressLine.monotonicSeconds()
            _ = try bo.propose(observations: Array(obs), pending: Array(points.suffix(pending)), trial: n + pending)
            out.append((n, ProgressLine.monotonicSeconds() - t0))
        }
        return out
    }

    /// Writes `study_proposals_NAME.csv` (one row per proposal) and appends to
    /// `study_summary.csv` in `directory`.
    public static func writeCSV(_ r: Result, name: String, directory: String) throws {
        let rows = ["trial,batch,observations,pending,seconds"] + r.proposals.map { "\($0.trial),\($0.batch),\($0.observations),\($0.pending),\($0.seconds)" }
        try (rows.joined(separator: "\n") + "\n").write(toFile: directory + "/study_proposals_\(name).csv", atomically: true, encoding: .utf8)
        let summary = directory + "/study_summary.csv"
        let header = "name,workers,trials,trial_seconds,wall_seconds,tasks,worker_busy_s,worker_wait_s,wait_fraction,proposals,proposal_median_s,proposal_max_s,best_valid_loss,loadavg\n"
        // Latency of a proposal call (a batch's later points cost no call).
        let sorted = r.proposals.map(\.seconds).sorted()
        let line = [name, "\(r.workers)", "\(r.trials)", "\(r.trialSeconds)", "\(r.wallSeconds)", "\(r.tasks)", "\(r.workerBusySeconds)",
                    "\(r.workerWaitSeconds)", "\(r.waitFraction)", "\(r.proposals.count)", "\(sorted.isEmpty ? .nan : sorted[sorted.count / 2])",
                    "\(sorted.last ?? .nan)", "\(r.bestValidLoss ?? .nan)", r.load].joined(separator: ",") + "\n"
        if let h = FileHandle(forWritingAtPath: summary) {
            h.seekToEndOfFile()
            h.write(Data(line.utf8))
            h.closeFile()
        } else {
            try (header + line).write(toFile: summary, atomically: true, encoding: .utf8)
        }
    }
}
