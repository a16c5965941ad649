import Dispatch
import HyperOpt
import Linalg
import RunState
import Telemetry

/// Hyper-training (Algorithms 2–4) in this process, with its trajectory recorded for a figure:
/// λ̂ every `recordEvery` steps and full-split losses of `φ(λ̂)` every `evalEvery` steps.
/// The clock that the figures plot against counts training only: the evaluations for the
/// figure are bookkeeping and are excluded (the baselines' trials likewise report their own
/// training time).
struct HyperTrainingTrace {
    /// The finished run (φ, λ̂, the trainer for evaluations at other λ).
    let run: LocalRun
    /// step, seconds, λ̂ summary and losses.
    var table = CSVTable(columns: ["step", "seconds", "lambda_mean", "lambda_min", "lambda_max",
                                   "train_loss", "valid_batch_loss", "valid_loss", "test_loss", "test_error"])
    /// λ̂ (component 0) at every recorded step, for single-hyperparameter figures.
    var lambdaTrace: [(step: Int, lambda: Double)] = []
    /// Evaluation of the final φ(λ̂).
    var final: Evaluation
    /// Training seconds (evaluations excluded).
    var seconds: Double
    /// Steps taken.
    var steps: Int

    /// Runs `config` until `config.steps` or `budgetSeconds` of training time.
    static func run(config: ExperimentConfig, data: ExperimentData, recordEvery: Int, evalEvery: Int,
                    budgetSeconds: Double? = nil, log: (String) -> Void) throws -> HyperTrainingTrace {
        var c = config
        c.evalEvery = 0
        let run = LocalRun(config: c, data: data)
        BLASRuntime.flushDenormalsToZero()
        var trace = HyperTrainingTrace(run: run, final: run.evaluate(), seconds: 0, steps: 0)
        trace.record(step: 0, seconds: 0, train: nil, valid: nil, evaluation: trace.final)
        var training = 0.0
        let total = c.steps
        var lastLog = 0.0
        while Int(run.state.step) < total {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let (train, valid) = try run.step()
            training += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            let s = Int(run.state.step)
            let over = budgetSeconds.map { training >= $0 } ?? false
            let evaluate = evalEvery > 0 && s % evalEvery == 0 || s == total || over
            if s % recordEvery == 0 || evaluate {
                trace.record(step: s, seconds: training, train: train, valid: valid, evaluation: evaluate ? run.evaluate() : nil)
            }
            if training - lastLog >= 10 {
                lastLog = training
                log("  step \(s)/\(total)  \(LambdaSummary.describe(run.state.lambdaHat.array.map(Double.init)))  \(String(format: "%.0f", training)) s")
            }
            if over { break }
        }
        trace.final = run.evaluate()
        trace.seconds = training
        trace.steps = Int(run.state.step)
        return trace
    }

    /// Training seconds at the first evaluation whose validation loss is at most `target`.
    func secondsToReach(validLoss target: Double) -> Double? {
        table.firstSeconds(reaching: target, secondsColumn: "seconds")
    }

    private mutating func record(step: Int, seconds: Double, train: Double?, valid: Double?, evaluation: Evaluation?) {
        let lambda = run.state.lambdaHat.array.map(Double.init)
        let mean = lambda.reduce(0, +) / Double(max(lambda.count, 1))
        lambdaTrace.append((step, lambda.first ?? .nan))
        table.append([.integer(step), .number(seconds), .number(mean), .number(lambda.min() ?? .nan), .number(lambda.max() ?? .nan),
                      train.map(CSVTable.Cell.number) ?? .missing, valid.map(CSVTable.Cell.number) ?? .missing,
                      evaluation.map { .number($0.validLoss) } ?? .missing, evaluation.map { .number($0.testLoss) } ?? .missing,
                      evaluation.map { .number($0.testError) } ?? .missing])
    }
}

/// Small numerical helpers the figures share.
enum Stats {
    /// Vertex of the parabola through three equally spaced points (the middle one lowest).
    static func parabolaMinimum(_ x: [Double], _ y: [Double]) -> Double {
        let h = x[1] - x[0]
        let denom = y[0] - 2 * y[1] + y[2]
        guard denom > 0 else { return x[1] }
        return x[1] + 0.5 * h * (y[0] - y[2]) / denom
    }

    /// The minimum of a sampled curve refined by a parabola through its neighbours (the grid
    /// point itself when the minimum is on the edge).
    static func curveMinimum(_ x: [Double], _ y: [Double]) -> (x: Double, y: Double, onEdge: Bool) {
        let finite = y.indices.filter { y[$0].isFinite }
        guard let best = finite.min(by: { y[$0] < y[$1] }) else { return (.nan, .nan, true) }
        guard best > 0, best < x.count - 1, y[best - 1].isFinite, y[best + 1].isFinite else { return (x[best], y[best], true) }
        return (parabolaMinimum(Array(x[best - 1...best + 1]), Array(y[best - 1...best + 1])), y[best], false)
    }

    static func mean(_ v: [Double]) -> Double { v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count) }

    static func std(_ v: [Double]) -> Double {
        guard v.count > 1 else { return .nan }
        let m = mean(v)
        return (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count - 1)).squareRoot()
    }

    /// `count` evenly spaced values from `lo` to `hi` inclusive.
    static func linspace(_ lo: Double, _ hi: Double, _ count: Int) -> [Double] {
        count == 1 ? [lo] : (0..<count).map { lo + (hi - lo) * Double($0) / Double(count - 1) }
    }
}
