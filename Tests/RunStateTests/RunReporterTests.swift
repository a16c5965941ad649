import RunState
import Foundation
import HyperOpt
import Testing

/// RunReporter through its public API only: the files a run leaves behind.
@Suite struct RunReporterTests {
    private struct MetricsLine: Decodable {
        var step: Int
        var elapsed_seconds: Double
        var lambda_hat: [Double]?
        var lambda_hat_mean: Double
        var lambda_hat_min: Double
        var lambda_hat_max: Double
        var train_loss: Double?
        var valid_batch_loss: Double?
        var valid_loss: Double?
        var test_loss: Double?
        var test_error: Double?
    }

    private struct Summary: Decodable {
        var lambda_hat: [Double]
        var train_loss: Double
        var valid_loss: Double
        var test_loss: Double?
        var test_error: Double
        var steps: Int
        var wall_seconds: Double
        var steps_per_second: Double
        var mode: String
        var config: ExperimentConfig
    }

    private static func directory() throws -> String {
        let path = NSTemporaryDirectory() + "run-reporter-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test("Metrics lines at every logEvery-th step and at evaluations; a summary with the run's numbers and config")
    func metricsAndSummary() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = StandardConfigs.fig4
        let reporter = try RunReporter(config: config, options: .init(
            metricsPath: dir + "/m/metrics.jsonl", summaryPath: dir + "/summary.json", logEvery: 2, progress: false))
        let evaluation = Evaluation(trainLoss: 0.25, validLoss: 1.0 / 3.0, testLoss: .nan, testError: 0.125)
        for step in UInt64(1)...5 {
            reporter.record(StepReport(step: step, lambdaHat: [-2.5 + Float(step) / 10], trainLoss: Double(step) / 7,
                                       validBatchLoss: step == 3 ? nil : 0.5, evaluation: step == 5 ? evaluation : nil))
        }
        try reporter.finish(lambdaHat: [-1.75], evaluation: evaluation, steps: 5, extra: [("mode", "test")])

        let lines = try String(contentsOfFile: dir + "/m/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(MetricsLine.self, from: Data($0.utf8)) }
        #expect(lines.map(\.step) == [2, 4, 5])       // logEvery 2, plus the evaluated step 5
        #expect(lines[0].train_loss == 2.0 / 7)         // exactly the Double given
        #expect(lines[0].lambda_hat == [Double(Float(-2.5) + Float(2) / 10)])
        #expect(lines[1].valid_batch_loss == 0.5 && lines[1].valid_loss == nil)
        #expect(lines[2].valid_loss == 1.0 / 3.0 && lines[2].test_loss == nil && lines[2].test_error == 0.125)

        let summary = try JSONDecoder().decode(Summary.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/summary.json")))
        #expect(summary.lambda_hat == [-1.75] && summary.steps == 5 && summary.mode == "test")
        #expect(summary.valid_loss == 1.0 / 3.0 && summary.test_loss == nil)   // NaN is written as null
        #expect(summary.wall_seconds >= 0 && summary.steps_per_second > 0)
        #expect(summary.config == config)
    }

    @Test("A resumed reporter appends to the metrics file; without paths it writes nothing")
    func resumeAndNoFiles() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/metrics.jsonl"
        for (start, steps) in [(UInt64(0), UInt64(1)...2), (2, 3...4)] {
            let reporter = try RunReporter(config: StandardConfigs.fig4, options: .init(metricsPath: path, logEvery: 1, progress: false), startStep: start)
            for s in steps { reporter.record(StepReport(step: s, lambdaHat: [-2], trainLoss: 1, validBatchLoss: 1, evaluation: nil)) }
            try reporter.finish(lambdaHat: [-2], evaluation: Evaluation(trainLoss: 1, validLoss: 1, testLoss: 1, testError: 0), steps: steps.upperBound)
        }
        let steps = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(MetricsLine.self, from: Data($0.utf8)).step }
        #expect(steps == [1, 2, 3, 4])

        let quiet = try RunReporter(config: StandardConfigs.fig4, options: .init(progress: false))
        quiet.record(StepReport(step: 1, lambdaHat: [-2], trainLoss: 1, validBatchLoss: 1, evaluation: nil))
        try quiet.finish(lambdaHat: [-2], evaluation: Evaluation(trainLoss: 1, validLoss: 1, testLoss: 1, testError: 0), steps: 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["metrics.jsonl"])
    }
}
