import Foundation
import HyperOpt
import Testing
@testable import Experiments
import TestSupport

/// MNIST for these tests: `$HYPERTRAIN_DATA`, else data/mnist under the package root.
private var dataDirectory: String { RealData.directory }

private func temporaryDirectory() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ht-exp-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

@Suite struct CSVTableTests {
    @Test("numbers, integers, quoted text and missing values")
    func text() {
        var t = CSVTable(columns: ["a", "b,c", "d"])
        t.append([.number(0.25), .integer(3), .text("say \"hi\", twice")])
        t.append([.number(.nan), .missing, .text("plain")])
        #expect(t.text == "a,\"b,c\",d\n0.25,3,\"say \"\"hi\"\", twice\"\n,,plain\n")
    }

    @Test("doubles are written so they read back exactly")
    func roundTrip() throws {
        let values: [Double] = [0.1, 1.0 / 3.0, -1.8369999999999, 1e-300, 123456789.125]
        var t = CSVTable(columns: ["x"])
        for v in values { t.append([.number(v)]) }
        let read = t.text.split(separator: "\n").dropFirst().map { Double(String($0))! }
        #expect(read == values)
    }
}

@Suite struct StatsTests {
    @Test("the curve minimum is refined by a parabola and flagged on the grid's edge")
    func curveMinimum() {
        let x = Stats.linspace(-4, 0, 17)
        let y = x.map { 2 * ($0 + 1.83) * ($0 + 1.83) + 0.08 }
        let m = Stats.curveMinimum(x, y)
        #expect(abs(m.x - -1.83) < 1e-9 && !m.onEdge)
        let edge = Stats.curveMinimum(x, x.map { $0 })
        #expect(edge.x == -4 && edge.onEdge)
        #expect(Stats.curveMinimum([0, 1], [.nan, .nan]).onEdge)
    }

    @Test("linspace includes both ends")
    func linspace() {
        #expect(Stats.linspace(-1, 3, 5) == [-1, 0, 1, 2, 3])
        #expect(Stats.linspace(2, 5, 1) == [2])
    }
}

@Suite(.serialized) struct ExperimentRunTests {
    /// A small per-class problem.
    static func smallConfig() -> ExperimentConfig {
        var c = StandardConfigs.fig7
        c.nTrain = 300; c.nValid = 500; c.nTest = 500; c.batchSize = 50
        return c
    }

    @Test("trials on two threads give the same bits as one thread, in input order")
    func trialPoolIsDeterministic() throws {
        let c = Self.smallConfig()
        let data = try ExperimentData.load(directory: dataDirectory, config: c)
        let lambdas: [[Float]] = (0..<5).map { i in (0..<10).map { Float(-8 + i) + Float($0) * 0.1 } }
        let one = TrialPool.run(config: c, data: data, lambdas: lambdas, steps: 40, learningRate: 1e-3, parallel: 1, keepWeights: true,
                                trialIndex: { $0 })
        let two = TrialPool.run(config: c, data: data, lambdas: lambdas, steps: 40, learningRate: 1e-3, parallel: 2, keepWeights: true,
                                trialIndex: { $0 })
        #expect(one.map(\.lambda) == lambdas)
        #expect(one.map(\.evaluation) == two.map(\.evaluation))
        #expect(one.map(\.weights) == two.map(\.weights))
        #expect(one.allSatisfy { $0.evaluation.validLoss.isFinite && $0.weights?.count == 7_850 })
        // The same as calling Algorithm 1 directly.
        let direct = try CrossValidation.trial(config: c, data: data, lambda: lambdas[3], steps: 40, learningRate: 1e-3, trialIndex: 3)
        #expect(direct.evaluation == one[3].evaluation)
    }

    @Test("fig4 and fig6 at smoke scale write their tables and finite headline numbers", arguments: [Figure.fig4, .fig6])
    func smoke(figure: Figure) throws {
        let out = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: out) }
        let ctx = ExperimentContext(dataDirectory: dataDirectory, outputDirectory: out, scale: .smoke, executable: "/bin/false")
        let report = try figure.run(ctx)
        let written = try report.write(into: out, scale: .smoke)
        #expect(written.count == report.tables.count + 1)
        for (name, table) in report.tables {
            #expect(!table.rows.isEmpty, "\(name) is empty")
            let text = try String(contentsOfFile: out + "/\(name).csv", encoding: .utf8)
            #expect(text == table.text)
        }
        let summary = try String(contentsOfFile: out + "/\(figure.rawValue)_summary.json", encoding: .utf8)
        #expect(summary.contains("\"figure\" : \"\(figure.rawValue)\"") || summary.contains("\"figure\": \"\(figure.rawValue)\""))
        #expect(!report.comparison.isEmpty && report.comparison[0].hasPrefix("paper:"))
        switch figure {
        case .fig4:
            let names = report.numbers.map(\.0)
            #expect(names.contains("lambda_star_cv") && names.contains("lambda_hat_final"))
        case .fig6:
            let heldOut = report.tables.first { $0.name == "fig6_heldout" }!.table
            #expect(heldOut.rows.count == 4)
            for row in heldOut.rows {
                for cell in row.dropFirst() {
                    guard case .number(let x) = cell else { Issue.record("non-number \(cell)"); continue }
                    #expect(x.isFinite)
                }
            }
        default: break
        }
    }
}
