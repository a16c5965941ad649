import Cluster
import Foundation
import Glibc
import HyperOpt
import Linalg
import RunState
import Telemetry

/// `hypertrain bench cluster`: one real coordinator (`Coordinator`, the code path of
/// `hypertrain coordinator`) against K synthetic worker processes (`SyntheticWorker`: real
/// processes, sockets and messages, gradients replayed), so that one machine measures what the
/// coordinator sustains for many workers; plus the components a speed-up model needs (the
/// single-process rate, one real trainer task and one validator task, single-threaded).
public struct ClusterBenchmark {
    /// One measured configuration: preset, mode, samples per step, K.
    public struct Point: Sendable {
        public var preset: String
        public var mode: String
        public var samplesPerStep: Int
        public var workers: Int
        public var seconds: Double
        public var steps: UInt64
        public var gradients: UInt64
        public var hypergradients: UInt64
        /// Coordinator process CPU seconds (all its threads, ZeroMQ's I/O thread included).
        public var cpuSeconds: Double
        /// Seconds the coordinator's loop was busy (state machine, sends, reports).
        public var busySeconds: Double
        /// The state machine's serial time over the window.
        public var serial: CoordinatorSerialTime
        public var messages: UInt64
        public var tasksIssued: UInt64
        public var load: String

        public var stepsPerSecond: Double { Double(steps) / seconds }
        public var gradientsPerSecond: Double { Double(gradients) / seconds }
        public var gradientsPerCPUSecond: Double { Double(gradients) / max(cpuSeconds, 1e-9) }
        public var stepsPerCPUSecond: Double { Double(steps) / max(cpuSeconds, 1e-9) }

        static let csvHeader = "preset,mode,samples_per_step,workers,seconds,steps,gradients,hypergradients,steps_per_s,gradients_per_s,coord_cpu_s,gradients_per_cpu_s,steps_per_cpu_s,busy_s,receive_s,intake_s,update_s,dispatch_s,messages,tasks_issued,loadavg"
        var csvRow: String {
            [preset, mode, "\(samplesPerStep)", "\(workers)", f(seconds), "\(steps)", "\(gradients)", "\(hypergradients)",
             f(stepsPerSecond), f(gradientsPerSecond), f(cpuSeconds), f(gradientsPerCPUSecond), f(stepsPerCPUSecond),
             f(busySeconds), f(serial.receive), f(serial.intake), f(serial.update), f(serial.dispatch), "\(messages)", "\(tasksIssued)",
             load].joined(separator: ",")
        }
    }

    /// What a preset's real work costs, single-threaded, in this process.
    public struct Components: Sendable {
        public var preset: String
        public var samplesPerStep: Int
        /// `bench step`'s rate (median of the repeats) and per CPU-second.
        public var singleStepsPerSecond: Double
        public var singleCPUStepsPerSecond: Double
        /// One trainer weight task (∂L/∂w at given w and λ), seconds (median).
        public var trainTaskSeconds: Double
        /// One trainer φ task (λ sampled, w = φ(λ), ∂L/∂w), seconds (median).
        public var trainPhiTaskSeconds: Double
        /// One validator weight task, seconds (median).
        public var validTaskSeconds: Double
        /// Message sizes, bytes: a sync trainer's task (w + λ), its reply (∂L/∂w + λ + rows),
        /// the validator's task (w + λ̂) and reply (∂L/∂w).
        public var trainTaskBytes: Int, gradientBytes: Int, validTaskBytes: Int, hypergradientBytes: Int
        public var phiBytes: Int
        public var load: String

        static let csvHeader = "preset,samples_per_step,single_steps_per_s,single_cpu_steps_per_s,single_gradients_per_s,train_task_s,train_phi_task_s,valid_task_s,train_task_bytes,gradient_bytes,valid_task_bytes,hypergradient_bytes,phi_bytes,loadavg"
        var csvRow: String {
            [preset, "\(samplesPerStep)", f(singleStepsPerSecond), f(singleCPUStepsPerSecond), f(singleStepsPerSecond * Double(samplesPerStep)),
             f(trainTaskSeconds), f(trainPhiTaskSeconds), f(validTaskSeconds), "\(trainTaskBytes)", "\(gradientBytes)", "\(validTaskBytes)",
             "\(hypergradientBytes)", "\(phiBytes)", load].joined(separator: ",")
        }
    }

    /// A real `hypertrain run --workers K` (K = 0: the single process), for the model's check.
    public struct RealRun: Sendable {
        public var preset: String
        public var workers: Int
        public var steps: Int
        public var stepsPerSecond: Double
        public var load: String
        static let csvHeader = "preset,workers,steps,steps_per_s_after_startup,loadavg"
        var csvRow: String { [preset, "\(workers)", "\(steps)", f(stepsPerSecond), load].joined(separator: ",") }
    }

    /// The `hypertrain` binary (it has the hidden `bench-worker` command).
    public var executable: String
    /// Measurement window per point, seconds (after every worker registered and a warm-up).
    public var seconds: Double
    /// Log lines go here.
    public var log: (String) -> Void

    public init(executable: String, seconds: Double, log: @escaping (String) -> Void) {
        self.executable = executable
        self.seconds = seconds
        self.log = log
    }

    /// `/proc/loadavg`'s first three numbers.
    public static func loadAverage() -> String {
        let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
        return text.split(separator: " ").prefix(3).joined(separator: " ")
    }

    /// Times one real trainer task and validator task and writes the replay file of their
    /// gradients; measures the single-process rate with `StepBenchmark`.
    public func components(preset: String, config: ExperimentConfig, data: ExperimentData, replayPath: String,
                           singleSeconds: Double) throws -> Components {
        let trainer = HyperTrainer(config: config, data: data)
        let phi = AlignedBuffer(trainer.initialPhi())
        let lambdaHat = AlignedBuffer(trainer.initialLambdaHat())
        let gradW = AlignedBuffer<Float>(count: trainer.weightCount)
        let gradPhi = AlignedBuffer<Float>(count: trainer.phiCount)
        let gradLambda = AlignedBuffer<Float>(count: trainer.hyperparameterCount)
        let trainLoss = trainer.trainTask(phi: phi.constPointer, lambdaHat: lambdaHat.constPointer, step: 0, task: 0, gradPhi: gradPhi.pointer)
        let lambda = AlignedBuffer(trainer.lastLambda)
        let rows = trainer.lastRows
        _ = trainer.trainTask(phi: phi.constPointer, lambdaHat: lambdaHat.constPointer, step: 0, task: 0, gradW: gradW.pointer)
        let trainGradW = gradW.array
        let w = AlignedBuffer(trainer.weights(phi: phi.constPointer, lambda: lambda.array, center: lambdaHat.array))
        let wHat = AlignedBuffer(trainer.weights(phi: phi.constPointer, lambda: lambdaHat.array))
        let validLoss = trainer.validTask(phi: phi.constPointer, lambdaHat: lambdaHat.constPointer, step: 0, gradLambda: gradLambda.pointer)
        _ = trainer.validTask(weights: wHat.constPointer, step: 0, gradW: gradW.pointer)
        let replay = SyntheticWorker.Replay(trainGradW: trainGradW, trainGradPhi: gradPhi.array, trainLambda: lambda.array,
                                            trainLoss: trainLoss, validGradW: gradW.array, validGradLambda: gradLambda.array, validLoss: validLoss)
        try replay.write(to: replayPath)

        func median(_ body: (Int) -> Void) -> Double {
            var times: [Double] = []
            var i = 0
            let until = ProgressLine.monotonicSeconds() + 1.0
            while times.count < 7 || (ProgressLine.monotonicSeconds() < until && times.count < 2000) {
                let t0 = ProgressLine.monotonicSeconds()
                body(i)
                times.append(ProgressLine.monotonicSeconds() - t0)
                i += 1
            }
            times.sort()
            return times[times.count / 2]
        }
        let trainSeconds = median { i in
            _ = trainer.trainTask(weights: w.constPointer, lambda: lambda.constPointer, step: UInt64(i), task: 0, gradW: gradW.pointer)
        }
        let trainPhiSeconds = median { i in
            _ = trainer.trainTask(phi: phi.constPointer, lambdaHat: lambdaHat.constPointer, step: UInt64(i), task: 0, gradW: gradW.pointer)
        }
        let validSeconds = median { i in _ = trainer.validTask(weights: wHat.constPointer, step: UInt64(i), gradW: gradW.pointer) }
        let single = try StepBenchmark(seconds: singleSeconds, repeats: 3).measure(name: preset, config: config, data: data)
        let d = trainer.weightCount, h = trainer.hyperparameterCount
        return Components(preset: preset, samplesPerStep: config.samplesPerStep,
                          singleStepsPerSecond: single.stepsPerSecond, singleCPUStepsPerSecond: single.cpuStepsPerSecond,
                          trainTaskSeconds: trainSeconds, trainPhiTaskSeconds: trainPhiSeconds, validTaskSeconds: validSeconds,
                          trainTaskBytes: 4 * (d + h), gradientBytes: 4 * (d + h + rows.count), validTaskBytes: 4 * (d + h),
                          hypergradientBytes: 4 * d, phiBytes: 4 * trainer.phiCount, load: Self.loadAverage())
    }

    /// Runs the coordinator against `workers` synthetic trainers and one synthetic validator
    /// for `seconds` once all are registered (after a warm-up of a quarter of that).
    public func measure(preset: String, config base: ExperimentConfig, data: ExperimentData, mode: ClusterMode,
                        samplesPerStep: Int, workers: Int, replayPath: String) throws -> Point {
        var config = base
        config.samplesPerStep = samplesPerStep
        config.steps = 100_000_000
        config.evalEvery = 0
        let endpoint = "ipc://\(FileManager.default.temporaryDirectory.path)/ht-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        var options = Coordinator.Options(bind: [endpoint])
        options.mode = mode
        options.farewellSeconds = 0
        // Async: every trainer holds a task from some φ version while the others' gradients
        // are applied, so with K trainers a gradient is about K − 1 versions old; the bound is
        // raised so that the sweep measures the rate of applied gradients, not of refusals.
        options.maxStaleness = UInt64(max(4, 2 * workers))
        options.checkpointPath = nil
        options.reporter = RunReporter.Options(progress: false)
        options.log = { line in if line.contains("rejected") || line.contains("lost") { FileHandle.standardError.write(Data(("coordinator: " + line + "\n").utf8)) } }
        let window = Window(seconds: seconds, warmUp: max(0.5, seconds / 4), workers: workers)
        options.stopWhen = { window.observe($0) }
        let children = BenchChildren(executable: executable)
        defer { children.stop() }
        let coordinator = Coordinator(config: config, data: data, options: options)
        _ = try coordinator.run(beforeLoop: {
            for i in 0...workers {
                try children.start(["bench-worker", "--connect", endpoint, "--role", i < workers ? "trainer" : "validator",
                                    "--replay", replayPath, "--parent-pid", String(getpid()),
                                    // As `run --workers K` (2 ms) while the workers fit on this machine's
                                    // cores; many spinning processes would take the coordinator's CPU.
                                    "--busy-wait-us", workers <= 2 ? "2000" : "0"])
            }
        })
        guard let r = window.result else {
            throw ClusterError.aborted("bench cluster: \(preset) K=\(workers): the workers did not all register within 60 s")
        }
        return Point(preset: preset, mode: mode.rawValue, samplesPerStep: samplesPerStep, workers: workers, seconds: r.seconds,
                     steps: r.end.step - r.start.step,
                     gradients: r.end.counters.gradientsApplied - r.start.counters.gradientsApplied,
                     hypergradients: r.end.counters.hypergradientsApplied - r.start.counters.hypergradientsApplied,
                     cpuSeconds: r.cpuSeconds, busySeconds: r.end.busySeconds - r.start.busySeconds,
                     serial: r.end.serialTime - r.start.serialTime,
                     messages: r.end.messages - r.start.messages,
                     tasksIssued: r.end.serialTime.tasksIssued - r.start.serialTime.tasksIssued, load: Self.loadAverage())
    }

    /// A real `hypertrain run --preset P --workers K` of `steps` steps (K = 0: one process):
    /// its summary's rate after start-up.
    public func realRun(preset: String, workers: Int, steps: Int, dataDirectory: String, extra: [String] = []) throws -> RealRun {
        let summary = FileManager.default.temporaryDirectory.path + "/ht-bench-real-\(getpid())-\(workers).json"
        defer { try? FileManager.default.removeItem(atPath: summary) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = ["run", "--preset", preset, "--workers", String(workers), "--steps", String(steps), "--eval-every", "0",
                       "--data", dataDirectory, "--quiet", "--summary", summary] + extra
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0,
              let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: summary))) as? [String: Any] else {
            throw ClusterError.aborted("bench cluster: `hypertrain run --preset \(preset) --workers \(workers)` failed (exit \(p.terminationStatus))")
        }
        let rate: Double
        if let r = json["steps_per_second_after_startup"] as? Double {
            rate = r
        } else {
            // The single process: its steps over its hyper-training seconds.
            let seconds = (json["hyper_training_seconds"] as? Double) ?? (json["wall_seconds"] as? Double) ?? .nan
            rate = Double(steps) / seconds
        }
        return RealRun(preset: preset, workers: workers, steps: steps, stepsPerSecond: rate, load: Self.loadAverage())
    }

    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) * 1e-6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) * 1e-6
    }

    static func write(_ header: String, _ rows: [String], to path: String) throws {
        try ([header] + rows).joined(separator: "\n").appending("\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Writes the CSV files of a sweep into `directory`.
    /// (`cluster_sweep_NAME.csv`, `cluster_components_NAME.csv`, `cluster_real_NAME.csv`).
    public static func writeCSV(name: String, points: [Point], components: [Components], real: [RealRun], directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try write(Point.csvHeader, points.map(\.csvRow), to: directory + "/cluster_sweep_\(name).csv")
        try write(Components.csvHeader, components.map(\.csvRow), to: directory + "/cluster_components_\(name).csv")
        try write(RealRun.csvHeader, real.map(\.csvRow), to: directory + "/cluster_real_\(name).csv")
    }
}

/// The measurement window of one point, seen from the coordinator's loop: opens a warm-up after
/// every worker registered, then records the progress at its start and end.
/// `@unchecked Sendable`: only the coordinator's loop thread calls `observe`, and the caller reads
/// `result` after `Coordinator.run` returned on that same thread.
private final class Window: @unchecked Sendable {
    struct Result {
        var start: CoordinatorProgress
        var end: CoordinatorProgress
        var seconds: Double
        var cpuSeconds: Double
    }
    let seconds: Double, warmUp: Double, workers: Int
    private let created = ProgressLine.monotonicSeconds()
    private var allRegisteredAt: Double?
    private var start: (progress: CoordinatorProgress, at: Double, cpu: Double)?
    private(set) var result: Result?
    private var calls = 0

    init(seconds: Double, warmUp: Double, workers: Int) {
        self.seconds = seconds
        self.warmUp = warmUp
        self.workers = workers
    }

    func observe(_ p: CoordinatorProgress) -> Bool {
        // The clock is read on every 16th call only: this runs after every message.
        calls += 1
        if start != nil && calls % 16 != 0 { return false }
        let now = ProgressLine.monotonicSeconds()
        if now - created > 60 && start == nil { return true }
        guard let s = start else {
            if allRegisteredAt == nil {
                if p.trainers >= workers && p.validators >= 1 { allRegisteredAt = now }
            } else if now - allRegisteredAt! >= warmUp {
                start = (p, now, ClusterBenchmark.processCPUSeconds())
            }
            return false
        }
        guard now - s.at >= seconds else { return false }
        result = Result(start: s.progress, end: p, seconds: now - s.at, cpuSeconds: ClusterBenchmark.processCPUSeconds() - s.cpu)
        return true
    }
}

private func f(_ x: Double) -> String { String(format: "%.6g", x) }
