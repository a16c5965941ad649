import ArgumentParser
import Cluster
import Datasets
import Experiments
import HyperOpt
import Foundation

extension Figure: ExpressibleByArgument {}
extension LossDefinitions: ExpressibleByArgument {}

/// `hypertrain experiment NAME --out DIR [--quick]`: regenerates one of the paper's figures —
/// the numbers as CSV, the picture as PNG (matplotlib, from the project's .venv), a summary JSON.
struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract: "Reproduce a figure of the paper: CSV data, PNG plot, summary.",
        discussion: "Figures:\n" + Figure.allCases.map { "  \($0.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)) \($0.abstract)" }.joined(separator: "\n")
            + "\n\nThe PNG is drawn by scripts/plot_experiment.py with matplotlib from .venv (created by scripts/setup-venv.sh when missing; set HYPERTRAIN_PYTHON to use another interpreter). EXPERIMENTS.md has every figure's command, runtime and numbers.")

    @OptionGroup var logging: LoggingOptions
    @Argument(help: "Figure: \(Figure.allCases.map(\.rawValue).joined(separator: ", ")).")
    var name: Figure

    @Option(help: "Output directory (created if missing).")
    var out: String = "runs/experiments"

    @Flag(help: "A few minutes on 2 cores (the default is the paper's setting, or the closest that fits a few hours).")
    var quick = false

    @Flag(help: .hidden)
    var smoke = false

    @Option(help: "Loss definitions for fig3/fig4: authors (50·MSE, unsquared norm; the paper's units) or mse (MSE, squared norm). Default: authors for fig3, mse for fig4.")
    var definitions: LossDefinitions?

    @Option(name: .customLong("held-out"), help: "fig6: held-out λs whose true validation loss is computed (default 60 quick, 1,000 full; the paper used 10,215).")
    var heldOut: Int?

    @Option(help: "Trials at once: threads for cross-validation grids, worker processes for the fig7 studies.")
    var parallel: Int = 2

    @Option(help: "Run seed.")
    var seed: UInt64 = 1
    @Option(help: "Hyper-training recipe: stable (Hypertrain's default) or paper (the paper's form; fig7 runs it beside the recipe either way).")
    var recipe: Recipe = .stable

    @OptionGroup var data: DataOption

    @Flag(name: .customLong("no-plot"), help: "Write the CSV and summary only.")
    var noPlot = false

    func validate() throws {
        guard (1...64).contains(parallel) else { throw ValidationError("--parallel must be in 1...64") }
        if quick && smoke { throw ValidationError("--quick and --smoke exclude each other") }
        if let heldOut, heldOut < 2 { throw ValidationError("--held-out must be at least 2") }
    }

    func run() throws {
        logging.bootstrap()
        let scale: ExperimentScale = smoke ? .smoke : (quick ? .quick : .full)
        var ctx = ExperimentContext(dataDirectory: data.directory, outputDirectory: out, scale: scale,
                                    seed: seed, parallel: parallel, executable: LocalCluster.currentExecutable,
                                    log: { Console.error($0) })
        ctx.recipe = recipe
        // Fail before hours of compute, not after: the plotting interpreter must exist.
        let plotter = noPlot ? nil : try Plotter.locate(executable: LocalCluster.currentExecutable, log: { Console.error($0) })
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        Console.error("\(name.rawValue) (\(scale.rawValue)): \(name.abstract)")
        let report = try name.run(ctx, options: Figure.Options(definitions: definitions, heldOut: heldOut))
        var written = try report.write(into: out, scale: scale)
        if let plotter {
            written.append(try plotter.plot(figure: name.rawValue, directory: out))
        }
        print("\(report.title)  [\(String(format: "%.0f", report.seconds)) s, \(scale.rawValue)]")
        for s in report.settings { print("  setting: \(s)") }
        for line in report.comparison { print("  \(line)") }
        for path in written { print("  wrote \(path)") }
    }
}
