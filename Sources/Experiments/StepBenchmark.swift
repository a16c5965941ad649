import Foundation
import Glibc
import HyperOpt
import Linalg

/// `hypertrain bench step`: the throughput of one Algorithm 3 step (φ step over the λ samples
/// + λ̂ step) on a configuration, wall-clock and per CPU-second of this thread.
public struct StepBenchmark: Sendable {
    /// One configuration's measurement; encodes as the JSON line `bench step` prints.
    public struct Result: Codable, Sendable, Equatable {
        public let config: String
        /// Median over the repeats, rounded to 0.1.
        public let stepsPerSecond: Double
        /// Median steps per CPU-second of the measuring thread (meaningful on a busy machine).
        public let cpuStepsPerSecond: Double
        public let phiParams: Int
        public let hyperparameters: Int
        /// The BLAS library's own description of itself.
        public let blas: String
        /// `$OPENBLAS_CORETYPE` (empty when unset).
        public let openblasCoretype: String

        enum CodingKeys: String, CodingKey {
            case config, stepsPerSecond = "steps_per_second", cpuStepsPerSecond = "cpu_steps_per_second"
            case phiParams = "phi_params", hyperparameters, blas, openblasCoretype = "openblas_coretype"
        }

        /// One JSON object (keys in a fixed order).
        public func jsonLine() throws -> String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return String(decoding: try encoder.encode(self), as: UTF8.self)
        }
    }

    /// Seconds measured per repeat (after a 10-step warm-up).
    public var seconds: Double
    /// Repeats; the median is reported.
    public var repeats: Int

    public init(seconds: Double, repeats: Int) {
        precondition(seconds > 0 && repeats >= 1, "seconds \(seconds) must be > 0 and repeats \(repeats) ≥ 1")
        self.seconds = seconds
        self.repeats = repeats
    }

    /// Measures `config` (named `name`) on `data`.
    public func measure(name: String, config: ExperimentConfig, data: ExperimentData) throws -> Result {
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
        return Result(config: name, stepsPerSecond: Self.tenth(rates[rates.count / 2]),
                      cpuStepsPerSecond: Self.tenth(cpuRates[cpuRates.count / 2]), phiParams: config.phiCount,
                      hyperparameters: config.hyperparameterCount, blas: BLASRuntime.configuration,
                      openblasCoretype: ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "")
    }

    /// CPU time of this thread.
    static func threadCPUSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    private static func tenth(_ x: Double) -> Double { (x * 10).rounded() / 10 }
}
