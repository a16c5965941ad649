import Foundation
import HyperOpt
import Models
import Testing
import TestSupport

/// The key check of the reproduction (EXPERIMENTS.md, fig4): on the Fig. 4 setting, Algorithm 3 must
/// move λ̂ from −3.5 to the optimum that cross-validation finds (≈ −1.8 with MSE and the
/// squared norm).
@Suite struct Fig4ConvergenceTests {
    /// Vertex of the parabola through three points (x equally spaced, middle one lowest).
    static func parabolaMinimum(_ x: [Double], _ y: [Double]) -> Double {
        let h = x[1] - x[0]
        let denom = y[0] - 2 * y[1] + y[2]
        guard denom > 0 else { return x[1] }
        return x[1] + 0.5 * h * (y[0] - y[2]) / denom
    }

    @Test("the parabola through three points recovers the vertex of a quadratic")
    func parabola() {
        let f = { (x: Double) in 3 * (x + 1.83) * (x + 1.83) + 0.08 }
        let x = [-2.0, -1.75, -1.5]
        #expect(abs(Self.parabolaMinimum(x, x.map(f)) - -1.83) < 1e-12)
    }

    /// What the Fig. 4 computation measured.
    struct Measurement: Sendable {
        var grid: [Double] = []
        var curve: [Double] = []
        var trialSteps: [Int] = []
        var trajectory: [Float] = []
        var final: Evaluation? = nil
        var cvSeconds = 0.0
        var runSeconds = 0.0
    }

    /// Algorithm 1 on a grid, then Algorithm 3, on the Fig. 4 setting.
    static func measure(_ config: ExperimentConfig, _ data: ExperimentData) throws -> Measurement {
        var m = Measurement()
        let clock = ContinuousClock()
        var t0 = clock.now
        // λ = −3.5, −3.25, …, 0; 2,000 full-batch Adam steps each from the same initial w.
        // The step size is 3e-4, not 1e-3: at 1e-3 Adam's last iterates still oscillate and
        // put ±5e-4 of noise on L_valid, as much as the whole depth of the curve between
        // λ = −2.5 and −1.2 (measured: the grid minimum then jumps to −1.5); at 3e-4 the
        // trials converge (two different initialisations agree to 1e-6) and the curve is smooth.
        m.grid = stride(from: -3.5, through: 0.0, by: 0.25).map { $0 }
        for lambda in m.grid {
            let r = try CrossValidation.trial(config: config, data: data, lambda: [Float(lambda)],
                                              steps: 2_000, learningRate: 3e-4)
            m.curve.append(r.evaluation.validLoss)
            m.trialSteps.append(r.steps)
        }
        m.cvSeconds = seconds(clock.now - t0)
        // Algorithm 3 for 8,000 steps.
        t0 = clock.now
        var c = config
        c.steps = 8_000
        c.evalEvery = 0
        let run = LocalRun(config: c, data: data)
        var trajectory: [Float] = []
        m.final = try run.run { trajectory.append($0.lambdaHat[0]); return true }
        m.trajectory = trajectory
        m.runSeconds = seconds(clock.now - t0)
        return m
    }

    @Test("Algorithm 3 on the Fig. 4 setting moves λ̂ to within 0.3 of the cross-validation optimum")
    func jointFindsCrossValidationOptimum() throws {
        let config = StandardConfigs.fig4
        #expect(config.problems().isEmpty && config.warnings().isEmpty)
        let data = try RealData.data(for: config)
        let m = try withDenormalsFlushed { try Self.measure(config, data) }

        print("Fig. 4 CV curve (λ, L_valid), 2,000 Adam steps at 3e-4 each [\(fmt(m.cvSeconds)) s]:",
              zip(m.grid, m.curve).map { "(\($0), \(fmt($1)))" }.joined(separator: " "))
        #expect(m.trialSteps.allSatisfy { $0 == 2_000 })
        #expect(m.curve.allSatisfy { $0.isFinite })
        let best = m.curve.indices.min { m.curve[$0] < m.curve[$1] }!
        try #require(best > 0 && best < m.grid.count - 1, "the CV minimum \(m.grid[best]) is on the edge of the grid")
        let lambdaCV = Self.parabolaMinimum(Array(m.grid[best - 1...best + 1]), Array(m.curve[best - 1...best + 1]))
        print("Fig. 4 CV optimum: grid λ = \(m.grid[best]) (L_valid \(fmt(m.curve[best]))), parabola through the three best λ*_CV = \(fmt(lambdaCV))")
        // λ* ≈ −1.8 with L_valid ≈ 0.080 for MSE + squared norm (EXPERIMENTS.md, fig4: λ*_CV ≈ −1.85).
        #expect(abs(lambdaCV - -1.8) < 0.4, "λ*_CV = \(lambdaCV)")
        #expect(abs(m.curve[best] - 0.080) < 0.003, "best CV L_valid \(m.curve[best])")

        // λ̂ is averaged over the last 1,000 steps to damp step noise; the final value is
        // checked too.
        let trajectory = m.trajectory
        try #require(trajectory.count == 8_000)
        let tail = trajectory.suffix(1_000).map(Double.init)
        let meanTail = tail.reduce(0, +) / Double(tail.count)
        let final = try #require(m.final)
        print("Fig. 4 Algorithm 3 λ̂ every 1,000 steps [\(fmt(m.runSeconds)) s]:",
              stride(from: 999, to: 8_000, by: 1_000).map { fmt(Double(trajectory[$0])) }.joined(separator: " "))
        print("Fig. 4 Algorithm 3: final λ̂ = \(fmt(Double(trajectory.last!))), mean over the last 1,000 steps = \(fmt(meanTail)) (range \(fmt(tail.min()!))…\(fmt(tail.max()!))), L_valid(φ(λ̂)) = \(fmt(final.validLoss)); |mean λ̂ − λ*_CV| = \(fmt(abs(meanTail - lambdaCV)))")
        #expect(abs(meanTail - lambdaCV) < 0.3, "mean λ̂ over the last 1,000 steps \(meanTail) vs λ*_CV \(lambdaCV)")
        #expect(abs(Double(trajectory.last!) - lambdaCV) < 0.3, "final λ̂ \(trajectory.last!) vs λ*_CV \(lambdaCV)")
        // The best response at λ̂ is about as good as the best cross-validation trial.
        #expect(final.validLoss < m.curve[best] + 0.01, "L_valid(φ(λ̂)) \(final.validLoss) vs CV best \(m.curve[best])")
    }
}

private func fmt(_ x: Double) -> String { String(format: "%.5f", x) }

private func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}
