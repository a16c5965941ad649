import Dispatch
import Foundation
import Cluster
import HyperOpt

/// Figure 7: 10 per-class hyperparameters — Algorithm 3 against random search and Bayesian
/// optimization at equal wall time. The baselines' trials run in parallel on local trial
/// worker processes (the same `hypertrain worker` that serves a cluster), their inner
/// training counted in the time; hyper-training runs in one process.
enum Fig7Figure {
    static let lower = -12.0, upper = 0.0

    static func run(_ ctx: ExperimentContext) throws -> FigureReport {
        var base = StandardConfigs.fig7
        base.seed = ctx.seed
        base.lambdaInit = (lower + upper) / 2
        base.steps = ctx.pick(smoke: 400, quick: 120_000, full: 2_000_000)
        // The recipe's model and optimizer (fan-in initialisation, Adam at φ's step size under
        // its schedule) are also what every baseline trial trains: equal footing.
        let c = ctx.recipe.resolve(base, given: [.lambdaInit])
        let budget = ctx.pick(smoke: 5.0, quick: 80.0, full: 1_800.0)
        // Where a trial's validation loss stops improving at this optimizer (measured:
        // EXPERIMENTS.md, fig7).
        let trialSteps = ctx.pick(smoke: 30, quick: c.recipe == .stable ? 16_000 : 2_000, full: c.recipe == .stable ? 16_000 : 2_000)
        let trialLR = c.phiLearningRate
        let data = try ExperimentData.load(directory: ctx.dataDirectory, config: c)
        var report = FigureReport(name: "fig7", title: "Fig. 7: 10 per-class hyperparameters — hyper-training vs random search vs Bayesian optimization")

        // The recipe's run and the paper's form w = φ(λ), each for at most the budget.
        var tables: [(String, CSVTable)] = []
        var hyper: [(name: String, trace: HyperTrainingTrace)] = []
        let forms: [(String, ExperimentConfig)] = c.recipe == .stable
            ? [("hypertraining", c), ("hypertraining_paper", Recipe.paper.resolve(base))]
            : [("hypertraining", c)]
        for (name, hc) in forms {
            ctx.log("fig7: hyper-training (\(name == "hypertraining_paper" ? "paper's form" : "recipe \(hc.recipe?.rawValue ?? "paper")"), \(hc.steps) steps) for at most \(budget) s of training time")
            let trace = try HyperTrainingTrace.run(config: hc, data: data, recordEvery: 100,
                                                   evalEvery: ctx.pick(smoke: 50, quick: 1_000, full: 5_000),
                                                   budgetSeconds: budget, log: ctx.log)
            tables.append(("fig7_\(name)", trace.table))
            hyper.append((name, trace))
        }
        var bests: [(String, Double, Double, Int, Double?)] = []
        let target = hyper[0].trace.final.validLoss
        for strategy in [SearchStrategy.random, .bayes] {
            ctx.log("fig7: \(strategy.rawValue) search for \(budget) s on \(ctx.parallel) trial workers (\(trialSteps) Adam steps at \(trialLR) per trial)")
            let outcome = try study(ctx, config: c, dataFingerprint: data.fingerprint, strategy: strategy, budget: budget,
                                    trialSteps: trialSteps, trialLR: trialLR)
            var table = CSVTable(columns: ["trial", "finished_seconds", "valid_loss", "test_loss", "best_valid_loss", "test_loss_at_best", "lambda_mean"])
            var best = (Double.infinity, Double.nan)
            var reachedAnswer: Double? = nil
            let done = outcome.trials.filter { $0.status == .done && $0.finishedAtStudySeconds != nil && ($0.validLoss?.isFinite ?? false) }
                .sorted { $0.finishedAtStudySeconds! < $1.finishedAtStudySeconds! }
            for (i, t) in done.enumerated() {
                if t.validLoss! < best.0 { best = (t.validLoss!, t.testLoss ?? .nan) }
                if reachedAnswer == nil && best.0 <= target { reachedAnswer = t.finishedAtStudySeconds! }
                table.append([.integer(i + 1), .number(t.finishedAtStudySeconds!), .number(t.validLoss!), .number(t.testLoss ?? .nan),
                              .number(best.0), .number(best.1), .number(Stats.mean(t.lambda))])
            }
            tables.append(("fig7_\(strategy.rawValue)", table))
            bests.append((strategy.rawValue, best.0, best.1, done.count, reachedAnswer))
        }

        let answer = hyper[0].trace
        report.settings = [
            "784-10, per-class L2 (10 hyperparameters), n_train \(c.nTrain), validation \(c.nValid), batch \(c.batchSize)",
            "hyper-training (recipe \(c.recipe?.rawValue ?? "paper")): Algorithm 3, linear hypernetwork (\(c.phiCount) parameters), input \((c.hypernetInput ?? .raw).rawValue), σ = \(String(format: "%.4g", c.sigma)), φ Adam \(c.phiLearningRate), λ̂ Adam \(c.lambdaLearningRate), schedule \(c.learningRateSchedule?.description ?? "constant"), λ̂₀ = \(c.lambdaInit), \(c.steps) steps or the budget; one process on the same 2 cores the baselines get (a 2-process cluster is slower on this small step: BENCHMARKS.md); answer: \((c.answer ?? .hypernetwork).rawValue); its curve is the best L(φ(λ̂)) evaluated so far, raw evaluations faint",
            "the paper's form for comparison: w = φ(λ), φ ~ 0.01·N(0,1), σ = 0.5, φ Adam 1e-3, constant step sizes",
            "baselines: Algorithm 1 trials of \(trialSteps) Adam steps at \(trialLR) (the recipe's schedule and initialisation; the length where a trial's validation loss stops improving), λ in [\(lower), \(upper)]^10, on \(ctx.parallel) trial worker processes; Bayesian optimization: GP (ARD RBF, length-scale prior) + expected improvement, Kriging believer for busy workers",
            "budget: \(budget) s per method (hyper-training: training time, evaluations not counted; baselines: study wall time including the trials' training)",
        ]
        report.tables = tables
        report.numbers = [("budget_seconds", Double(budget)), ("trial_steps", Int(trialSteps)), ("trial_learning_rate", Double(trialLR)),
                          ("hypertraining_answer_valid_loss", Double(answer.final.validLoss)),
                          ("hypertraining_answer_test_loss", Double(answer.final.testLoss)),
                          ("hypertraining_answer_seconds", Double(answer.seconds))]
        report.comparison = ["paper: hyper-training reaches a lower validation (and test) loss than random search and Bayesian optimization at equal wall time"]
        for (name, trace) in hyper {
            report.numbers += [
                ("\(name)_steps", Int(trace.steps)),
                ("\(name)_seconds", Double(trace.seconds)),
                ("\(name)_valid_loss", Double(trace.final.validLoss)),
                ("\(name)_test_loss", Double(trace.final.testLoss)),
            ]
            report.comparison.append("ours: \(name == "hypertraining_paper" ? "hyper-training, the paper's form" : "hyper-training (recipe \(c.recipe?.rawValue ?? "paper"))") after "
                + String(format: "%.0f s (%d steps): L(φ(λ̂)) valid %.5f test %.5f", trace.seconds, trace.steps, trace.final.validLoss, trace.final.testLoss))
        }
        for (name, v, t, n, reached) in bests {
            report.numbers.append(("\(name)_best_valid_loss", Double(v)))
            report.numbers.append(("\(name)_test_loss_at_best", Double(t)))
            report.numbers.append(("\(name)_trials", Int(n)))
            if let reached { report.numbers.append(("\(name)_seconds_to_answer_valid", Double(reached))) }
            report.comparison.append("ours: \(name) search, \(n) trials: " + String(format: "best valid %.5f (its test %.5f)", v, t)
                + (reached.map { String(format: "; first reached the hyper-training answer's validation loss at %.0f s", $0) } ?? "; never reached the hyper-training answer's validation loss"))
        }
        return report
    }

    /// A study on local trial workers, started and stopped here.
    static func study(_ ctx: ExperimentContext, config: ExperimentConfig, dataFingerprint: UInt64, strategy: SearchStrategy,
                      budget: Double, trialSteps: Int, trialLR: Double) throws -> StudyCoordinator.Outcome {
        var c = config
        c.phiLearningRate = trialLR
        let dims = Array(repeating: SearchSpace.Dimension.uniform(lower: lower, upper: upper), count: c.hyperparameterCount)
        let spec = StudySpec(strategy: strategy, trials: 100_000, trialSteps: trialSteps, trialLearningRate: trialLR,
                             space: try SearchSpace(dims), wallBudgetSeconds: budget)
        let database = ctx.path("fig7_\(strategy.rawValue).sqlite")
        try? FileManager.default.removeItem(atPath: database)
        let endpoint = "ipc://\(FileManager.default.temporaryDirectory.path)/hypertrain-fig7-\(getpid())-\(strategy.rawValue).sock"
        let workers = LocalCluster(executable: ctx.executable, endpoint: endpoint, trainers: ctx.parallel, validators: 0,
                                   dataDirectory: ctx.dataDirectory, log: { ctx.log("fig7: " + $0) })
        defer { workers.stop(timeout: 5) }
        var options = StudyCoordinator.Options(bind: [endpoint], databasePath: database)
        options.log = { _ in }
        options.farewellSeconds = 0   // the workers are our children
        let outcome = try StudyCoordinator(config: c, study: spec, dataFingerprint: dataFingerprint, options: options)
            .run(beforeLoop: { try workers.start() })
        if outcome.interrupted { throw ExperimentError.interrupted }
        return outcome
    }
}

/// A reproduction that could not finish.
public enum ExperimentError: Error, CustomStringConvertible {
    case interrupted
    case unknownFigure(String)

    public var description: String {
        switch self {
        case .interrupted: "interrupted by a signal"
        case .unknownFigure(let name): "unknown figure '\(name)'; choose one of \(Figure.allCases.map(\.rawValue).joined(separator: ", "))"
        }
    }
}
