import Dispatch

/// The paper's figures that `hypertrain experiment` regenerates.
public enum Figure: String, Sendable, CaseIterable {
    case fig3
    case fig4
    case fig5Top = "fig5-top"
    case fig5Bottom = "fig5-bottom"
    case fig6
    case fig7

    /// Per-figure choices beyond the scale.
    public struct Options: Sendable {
        /// Loss definitions for figures 3 and 4 (nil: each figure's default).
        public var definitions: LossDefinitions?
        /// Held-out λs for figure 6 (nil: by scale).
        public var heldOut: Int?
        public init(definitions: LossDefinitions? = nil, heldOut: Int? = nil) {
            self.definitions = definitions
            self.heldOut = heldOut
        }
    }

    /// What the figure shows, one line.
    public var abstract: String {
        switch self {
        case .fig3: "global best-response (Algorithm 2, mlp:50) vs cross-validation, 10 training points"
        case .fig4: "local best-response (Algorithm 3, linear hypernet, λ̂₀ = −3.5): curves and λ̂ trajectory"
        case .fig5Top: "7,850 per-weight hyperparameters: hyper-training vs unrolled hypergradients against wall time"
        case .fig5Bottom: "per-weight L2 on 784-10, 784-100-10, 784-100-100-10 vs a grid-searched global L2"
        case .fig6: "surrogate accuracy on held-out λ: GP vs fitted hypernet vs Algorithm 2 hypernet"
        case .fig7: "10 per-class hyperparameters: Algorithm 3 vs random search vs Bayesian optimization against wall time"
        }
    }

    /// Runs the figure's computation; the caller writes and plots the report.
    public func run(_ ctx: ExperimentContext, options: Options = Options()) throws -> FigureReport {
        let start = DispatchTime.now().uptimeNanoseconds
        var report: FigureReport
        switch self {
        // Fig. 3 uses the authors' loss (its global best-response can follow the sharp curve);
        // Fig. 4's linear best-response drifts with it (EXPERIMENTS.md), so MSE is its default.
        case .fig3: report = try BestResponseFigures.fig3(ctx, definitions: options.definitions ?? .authors)
        case .fig4: report = try BestResponseFigures.fig4(ctx, definitions: options.definitions ?? .mse)
        case .fig5Top: report = try Fig5Figures.top(ctx)
        case .fig5Bottom: report = try Fig5Figures.bottom(ctx)
        case .fig6: report = try Fig6Figure.run(ctx, heldOut: options.heldOut)
        case .fig7: report = try Fig7Figure.run(ctx)
        }
        report.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        report.settings.append("scale: \(ctx.scale.rawValue), seed \(ctx.seed)")
        return report
    }
}
