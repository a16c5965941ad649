import ArgumentParser
import Datasets
import Experiments
import HyperOpt

/// `hypertrain bench step`: Algorithm 3 step throughput on the four standard configurations.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks (use a release build).",
        subcommands: [Step.self, ClusterBench.self, StudyBench.self])

    struct Step: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Steps per second of one Algorithm 3 step (φ step + λ̂ step), single-threaded BLAS; one JSON object per line.")
        @OptionGroup var data: DataOption
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
            let mnist = try MNIST.load(directory: data.directory)
            let wanted = only.map { Set($0.split(separator: ",").map(String.init)) }
            #if DEBUG
            Console.error("warning: debug build; use `swift build -c release` for meaningful numbers")
            #endif
            let bench = StepBenchmark(seconds: seconds, repeats: repeats)
            for (name, config) in StandardConfigs.benchmarks where wanted?.contains(name) ?? true {
                let data = ExperimentData(splits: try mnist.splits(nTrain: config.nTrain, nValid: config.nValid, nTest: config.nTest))
                Console.out(try bench.measure(name: name, config: config, data: data).jsonLine())
            }
        }
    }
}
