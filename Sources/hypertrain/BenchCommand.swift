import ArgumentParser
import Datasets
import Foundation
import HyperOpt
import Linalg

/// `hypertrain bench step`: Algorithm 3 step throughput on the four standard configurations.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks (use a release build).",
        subcommands: [Step.self])

    struct Step: ParsableCommand {
        /// CPU time of this thread: steps per CPU-second stays meaningful on a busy machine.
        static func threadCPUSeconds() -> Double {
            var ts = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
        }

        static let configuration = CommandConfiguration(
            abstract: "Steps per second of one Algorithm 3 step (φ step + λ̂ step), single-threaded BLAS; one JSON object per line.")
        @Option(help: "Data directory (default: $HYPERTRAIN_DATA or data/mnist).")
        var data: String?
        @Option(help: "Seconds to measure each configuration (after warm-up).")
        var seconds: Double = 5
        @Option(help: "Repeat the measurement this many times and report the median.")
        var repeats: Int = 3
        @Option(help: "Only these configurations (comma-separated: fig4,fig7,fig5,deep).")
        var only: String?

        func validate() throws {
            guard seconds > 0, repeats >= 1 else { throw ValidationError("--seconds must be > 0 and --repeats ≥ 1") }
            if let only {
                let known = Set(StandardConfigs.benchmarks.map(\.name))
                for n in only.split(separator: ",") where !known.contains(String(n)) {
                    throw ValidationError("unknown configuration '\(n)'")
                }
            }
        }

        func run() throws {
            BLASRuntime.setThreads(1)
            let mnist = try MNIST.load(directory: data ?? MNISTFetcher.defaultDirectory)
            let wanted = only.map { Set($0.split(separator: ",").map(String.init)) }
            #if DEBUG
            Console.error("warning: debug build; use `swift build -c release` for meaningful numbers")
            #endif
            for (name, config) in StandardConfigs.benchmarks where wanted?.contains(name) ?? true {
                let data = ExperimentData(splits: try mnist.splits(nTrain: config.nTrain, nValid: config.nValid, nTest: config.nTest))
                let run = LocalRun(config: config, data: data)
                var rates: [Double] = [], cpuRates: [Double] = []
                for _ in 0..<repeats {
                    for _ in 0..<10 { _ = try run.step() }
                    let t0 = Date()
                    let c0 = Self.threadCPUSeconds()
                    var n = 0
                    while Date().timeIntervalSince(t0) < seconds { _ = try run.step(); n += 1 }
                    rates.append(Double(n) / Date().timeIntervalSince(t0))
                    cpuRates.append(Double(n) / max(Self.threadCPUSeconds() - c0, 1e-9))
                }
                rates.sort()
                cpuRates.sort()
                let median = rates[rates.count / 2]
                let cpuMedian = cpuRates[cpuRates.count / 2]
                let blas = BLASRuntime.configuration.replacingOccurrences(of: "\"", with: "'")
                let coretype = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? ""
                Console.out(#"{"config":"\#(name)","steps_per_second":\#(String(format: "%.1f", median)),"cpu_steps_per_second":\#(String(format: "%.1f", cpuMedian)),"phi_params":\#(config.phiCount),"hyperparameters":\#(config.hyperparameterCount),"blas":"\#(blas)","openblas_coretype":"\#(coretype)"}"#)
            }
        }
    }
}
