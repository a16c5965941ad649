import ArgumentParser
import Cluster
import Experiments
import Foundation
import HyperOpt
import Wire

extension BenchCommand {
    /// `hypertrain bench cluster`: what one coordinator sustains against K synthetic workers.
    struct ClusterBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cluster",
            abstract: "One real coordinator against K synthetic worker processes (gradients replayed): gradients and steps per second, per wall- and per coordinator CPU-second; CSV files in --out.",
            discussion: "Modes: sync (the preset's samples per step), data-parallel (sync with samples per step = K, one task per worker per step), async. Also measures the single-process rate and one real trainer and validator task, and with --real the real `run --workers K` rates the speed-up model is checked against.")

        @OptionGroup var data: DataOption
        @Option(help: "Preset: fig4, fig7, fig5 or deep.")
        var preset: String = "fig5"
        @Option(help: "Synthetic trainer counts K (comma-separated).")
        var workers: String = "1,2,4,8,16,32,64"
        @Option(help: "Modes to sweep (comma-separated: sync, data-parallel, async).")
        var modes: String = "sync,data-parallel,async"
        @Option(help: "Seconds measured per point (after every worker registered and a warm-up).")
        var seconds: Double = 3
        @Option(help: "Real `hypertrain run --workers K` runs for the model's check (comma-separated K; 0 is the single process; empty: none).")
        var real: String = "0,1,2"
        @Option(name: .customLong("real-seconds"), help: "Approximate length of each real run (its steps are set from the single-process rate).")
        var realSeconds: Double = 6
        @Option(help: "Directory for the CSV files.")
        var out: String = "bench-cluster"

        func validate() throws {
            guard StandardConfigs.benchmarks.contains(where: { $0.name == preset }) else { throw ValidationError("unknown preset '\(preset)'") }
            guard seconds > 0, realSeconds > 0 else { throw ValidationError("--seconds and --real-seconds must be > 0") }
            guard !Self.list(workers).isEmpty, Self.list(workers).allSatisfy({ (1...256).contains($0) }) else {
                throw ValidationError("--workers takes counts in 1...256, e.g. 1,2,4")
            }
            for m in modes.split(separator: ",") where !["sync", "data-parallel", "async"].contains(String(m)) {
                throw ValidationError("unknown mode '\(m)'")
            }
        }

        static func list(_ s: String) -> [Int] { s.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

        func run() throws {
            #if DEBUG
            Console.error("warning: debug build; use `swift build -c release` for meaningful numbers")
            #endif
            var config = StandardConfigs.benchmarks.first { $0.name == preset }!.config
            config = Recipe.stable.resolve(config, given: [])
            let data = try ExperimentData.load(directory: self.data.directory, config: config)
            let bench = ClusterBenchmark(executable: LocalCluster.currentExecutable, seconds: seconds, log: { Console.error($0) })
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let replay = out + "/replay_\(preset).bin"
            defer { try? FileManager.default.removeItem(atPath: replay) }
            let c = try bench.components(preset: preset, config: config, data: data, replayPath: replay, singleSeconds: 1)
            Console.error(String(format: "%@: single process %.1f steps/s (%.1f per CPU-s); trainer task %.1f µs, φ-form %.1f µs, validator task %.1f µs; load %@",
                                 preset, c.singleStepsPerSecond, c.singleCPUStepsPerSecond, c.trainTaskSeconds * 1e6, c.trainPhiTaskSeconds * 1e6,
                                 c.validTaskSeconds * 1e6, ClusterBenchmark.loadAverage()))
            var points: [ClusterBenchmark.Point] = []
            for mode in modes.split(separator: ",").map(String.init) {
                for k in Self.list(workers) {
                    let p = try bench.measure(preset: preset, config: config, data: data, mode: mode == "async" ? .async : .sync,
                                              samplesPerStep: mode == "data-parallel" ? k : config.samplesPerStep, workers: k, replayPath: replay)
                    var q = p
                    q.mode = mode
                    points.append(q)
                    Console.error(String(format: "%@ %@ S=%d K=%d: %.1f steps/s, %.0f gradients/s (%.0f per coordinator CPU-s), busy %.0f%%, load %@",
                                         preset, mode, q.samplesPerStep, k, q.stepsPerSecond, q.gradientsPerSecond, q.gradientsPerCPUSecond,
                                         100 * q.busySeconds / q.seconds, q.load))
                    try ClusterBenchmark.writeCSV(name: preset, points: points, components: [c], real: [], directory: out)
                }
            }
            var reals: [ClusterBenchmark.RealRun] = []
            let steps = max(200, Int(c.singleStepsPerSecond * realSeconds))
            for k in Self.list(real) {
                let r = try bench.realRun(preset: preset, workers: k, steps: steps, dataDirectory: self.data.directory)
                reals.append(r)
                Console.error(String(format: "%@ real run --workers %d: %.1f steps/s after start-up (%d steps), load %@", preset, k, r.stepsPerSecond, steps, r.load))
            }
            try ClusterBenchmark.writeCSV(name: preset, points: points, components: [c], real: reals, directory: out)
            Console.out("wrote \(out)/cluster_sweep_\(preset).csv, cluster_components_\(preset).csv, cluster_real_\(preset).csv")
        }
    }

    /// `hypertrain bench study`: the study coordinator (Bayesian optimization) against synthetic
    /// trial workers.
    struct StudyBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "study",
            abstract: "The study coordinator (GP-BO) against N synthetic trial worker processes that sleep a trial's length: proposal latency against observations, and the share of time workers wait for a proposal.")

        @OptionGroup var data: DataOption
        @Option(help: "Preset whose hyperparameters are searched (fig7: 10 per-class λ).")
        var preset: String = "fig7"
        @Option(help: "Synthetic trial workers.")
        var workers: Int = 64
        @Option(help: "Trials (observations) in the study.")
        var observations: Int = 1000
        @Option(name: .customLong("trial-steps"), help: "Steps of the real trial whose length is measured (search's default).")
        var trialSteps: Int = 1000
        @Option(name: .customLong("trial-seconds"), help: "Length of a synthetic trial (default: the measured real trial).")
        var trialSeconds: Double?
        @Option(help: "Name of this run in the CSV files.")
        var name: String = "bayes"
        @Option(name: .customLong("latency-only"), help: "Only time one proposal at each of these observation counts (comma-separated), in this process, with 2 × --workers pending trials.")
        var latencyOnly: String?
        @Flag(name: .customLong("no-refit"), help: "With --latency-only: warm-started hyperparameters, no marginal-likelihood fit.")
        var noRefit = false
        @Option(help: "Directory for the CSV files.")
        var out: String = "bench-cluster"

        func validate() throws {
            guard StandardConfigs.benchmarks.contains(where: { $0.name == preset }) else { throw ValidationError("unknown preset '\(preset)'") }
            guard workers >= 1, observations >= 1, trialSteps >= 1 else { throw ValidationError("--workers, --observations and --trial-steps must be ≥ 1") }
            if let trialSeconds, !(trialSeconds >= 0) { throw ValidationError("--trial-seconds must be ≥ 0") }
        }

        func run() throws {
            var config = Recipe.stable.resolve(StandardConfigs.benchmarks.first { $0.name == preset }!.config, given: [])
            config.phiLearningRate = 1e-3
            if let latencyOnly {
                let space = try SearchSpace.box(lower: -10, upper: 2, count: config.hyperparameterCount)
                // --no-refit: what the study coordinator does between fits past 100 observations
                // (no marginal-likelihood fit, fewer candidates past 200).
                let configure: (Int) -> BayesianOptimizer.Configuration = { n in
                    var c = BayesianOptimizer.Configuration()
                    if noRefit {
                        c.refitHyperparameters = false
                        c.fit.initial = GaussianProcess.Hyperparameters(lengthScales: Array(repeating: 0.5, count: space.count), signalStd: 1, noiseStd: 0.05)
                        if n > 200 { c.candidates = max(500, c.candidates * 200 / n) }
                    }
                    return c
                }
                for (n, s) in try StudyBenchmark.proposalLatency(space: space, observations: ClusterBench.list(latencyOnly), pending: 2 * workers,
                                                                 seed: config.seed, configuration: configure) {
                    Console.out(String(format: "observations %d, pending %d: %.1f ms", n, 2 * workers, 1000 * s))
                }
                return
            }
            let length: Double
            if let trialSeconds {
                length = trialSeconds
            } else {
                let data = try ExperimentData.load(directory: self.data.directory, config: config)
                length = try StudyBenchmark.realTrialSeconds(config: config, data: data, steps: trialSteps, learningRate: 1e-3)
                Console.error(String(format: "%@: one real trial of %d steps takes %.3f s (median of 3), load %@", preset, trialSteps, length, ClusterBenchmark.loadAverage()))
            }
            let study = StudySpec(strategy: .bayes, trials: observations, trialSteps: trialSteps, trialLearningRate: 1e-3,
                                  space: try SearchSpace.box(lower: -10, upper: 2, count: config.hyperparameterCount))
            let r = try StudyBenchmark(executable: LocalCluster.currentExecutable)
                .run(config: config, study: study, workers: workers, trialSeconds: length, directory: out)
            try StudyBenchmark.writeCSV(r, name: name, directory: out)
            let sorted = r.proposals.map(\.seconds).sorted()
            Console.out(String(format: "%d workers, %d trials of %.3f s: %.1f s wall; workers waited %.2f%% of their time; proposals median %.1f ms, max %.1f ms; best loss %.5f; load %@",
                               r.workers, r.trials, r.trialSeconds, r.wallSeconds, 100 * r.waitFraction,
                               1000 * (sorted.isEmpty ? .nan : sorted[sorted.count / 2]), 1000 * (sorted.last ?? .nan), r.bestValidLoss ?? .nan, r.load))
        }
    }
}

/// `hypertrain bench-worker` (hidden): a synthetic trainer, validator or trial worker for the
/// benchmarks (`SyntheticWorker`).
struct BenchWorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-worker", abstract: "A synthetic worker for `bench cluster` / `bench study`.",
                                                    shouldDisplay: false)
    @Option var connect: String
    @Option var role: String = "trainer"
    @Option var replay: String?
    @Option(name: .customLong("trial-seconds")) var trialSeconds: Double = 1
    @Option(name: .customLong("parent-pid")) var parentPID: Int32?
    @Option var stats: String?
    @Option(name: .customLong("busy-wait-us")) var busyWaitMicroseconds = 0

    func run() throws {
        var o = SyntheticWorker.Options(connect: connect, role: role == "validator" ? .validator : .trainer,
                                        replay: try replay.map { try SyntheticWorker.Replay.read(from: $0) } ?? .none)
        o.trialSeconds = trialSeconds
        o.parentPID = parentPID
        o.statsPath = stats
        o.busyWaitMicroseconds = busyWaitMicroseconds
        o.log = { _ in }
        _ = try SyntheticWorker(options: o).run()
    }
}
