import HyperOpt
import Models
import Testing

/// The key check of the reproduction (DESIGN §1): on the Fig. 4 setting, Algorithm 3 must
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

    @Test("Algorithm 3 on the Fig. 4 setting moves λ̂ to within 0.3 of the cross-validation optimum")
    func jointFindsCrossValidationOptimum() throws {
        let config = StandardConfigs.fig4
        #expect(config.problems().isEmpty && config.warnings().isEmpty)
        let data = try RealData.data(for: config)

        // Algorithm 1 on a grid: λ = −3.5, −3.25, …, 0; 2,000 Adam steps at 1e-3 each, all
        // from the same initial w and (full) batch, so the curve is smooth in λ.
        let grid = stride(from: -3.5, through: 0.0, by: 0.25).map { $0 }
        var curve: [Double] = []
        for lambda in grid {
            let r = try CrossValidation.trial(config: config, data: data, lambda: [Float(lambda)],
                                              steps: 2_000, learningRate: 1e-3)
            #expect(r.steps == 2_000 && r.lambda == [Float(lambda)])
            curve.append(r.evaluation.validLoss)
        }
        print("Fig. 4 CV curve (λ, L_valid):", zip(grid, curve).map { "(\($0), \(fmt($1)))" }.joined(separator: " "))
        #expect(curve.allSatisfy { $0.isFinite })
        let best = curve.indices.min { curve[$0] < curve[$1] }!
        try #require(best > 0 && best < grid.count - 1, "the CV minimum \(grid[best]) is on the edge of the grid")
        let lambdaCV = Self.parabolaMinimum(Array(grid[best - 1...best + 1]), Array(curve[best - 1...best + 1]))
        print("Fig. 4 CV optimum: grid λ = \(grid[best]) (L_valid \(fmt(curve[best]))), parabola λ*_CV = \(fmt(lambdaCV))")
        // DESIGN §1: λ* ≈ −1.8 with L_valid ≈ 0.080 for MSE + squared norm.
        #expect(abs(lambdaCV - -1.8) < 0.4, "λ*_CV = \(lambdaCV)")

        // Algorithm 3 for 8,000 steps; λ̂ is averaged over the last 1,000 to damp step noise.
        var c = config
        c.steps = 8_000
        c.evalEvery = 0
        let run = LocalRun(config: c, data: data)
        var trajectory: [Float] = []
        let final = try run.run { trajectory.append($0.lambdaHat[0]); return true }
        #expect(trajectory.count == 8_000)
        let tail = trajectory.suffix(1_000).map(Double.init)
        let meanTail = tail.reduce(0, +) / Double(tail.count)
        print("Fig. 4 Algorithm 3 λ̂ every 1,000 steps:", stride(from: 999, to: 8_000, by: 1_000).map { fmt(Double(trajectory[$0])) }.joined(separator: " "))
        print("Fig. 4 Algorithm 3: final λ̂ = \(fmt(Double(trajectory.last!))), mean over the last 1,000 steps = \(fmt(meanTail)), range \(fmt(tail.min()!))…\(fmt(tail.max()!)), L_valid(φ(λ̂)) = \(fmt(final.validLoss)); |mean λ̂ − λ*_CV| = \(fmt(abs(meanTail - lambdaCV)))")
        #expect(abs(meanTail - lambdaCV) < 0.3, "mean λ̂ over the last 1,000 steps \(meanTail) vs λ*_CV \(lambdaCV)")
        #expect(abs(Double(trajectory.last!) - lambdaCV) < 0.3, "final λ̂ \(trajectory.last!) vs λ*_CV \(lambdaCV)")
        // The best response at λ̂ is about as good as the best cross-validation trial.
        #expect(final.validLoss < curve[best] + 0.01, "L_valid(φ(λ̂)) \(final.validLoss) vs CV best \(curve[best])")
    }
}

private func fmt(_ x: Double) -> String { String(format: "%.4f", x) }

import Foundation
