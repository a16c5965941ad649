import Dispatch
import Foundation
import HyperOpt
import Linalg

/// Cross-validation trials (Algorithm 1) at many λ, computed on `parallel` threads of this
/// process. Each trial owns its model and buffers and reads the shared data only, so the
/// results are the same bits whatever the thread count (a test checks this).
public enum TrialPool {
    /// One trial's result; a diverged trial has non-finite losses instead of throwing, so one
    /// bad λ does not lose a whole grid.
    public struct Result: Sendable {
        /// The hyperparameters.
        public let lambda: [Float]
        /// Full-split losses (NaN when the trial diverged).
        public let evaluation: Evaluation
        /// The trained weights, when asked for.
        public let weights: [Float]?
        /// Seconds the trial took.
        public let seconds: Double
    }

    /// Runs a trial at every λ. `trialIndex(i)` picks the random streams of trial `i`
    /// (initialisation and minibatches); the default 0 gives every λ the same streams (common
    /// random numbers), which makes a curve over λ smooth.
    public static func run(
        config: ExperimentConfig, data: ExperimentData, lambdas: [[Float]], steps: Int, learningRate: Double,
        parallel: Int, keepWeights: Bool = false, trialIndex: @escaping @Sendable (Int) -> Int = { _ in 0 },
        progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in }
    ) -> [Result] {
        let n = lambdas.count
        let box = ResultBox(count: n)
        let threads = max(1, min(parallel, n))
        DispatchQueue.concurrentPerform(iterations: threads) { worker in
            // The denormal flush is per thread (Adam's second moments otherwise go slow).
            BLASRuntime.flushDenormalsToZero()
            for i in stride(from: worker, to: n, by: threads) {
                let start = DispatchTime.now().uptimeNanoseconds
                let outcome: Result
                do {
                    let r = try CrossValidation.trial(config: config, data: data, lambda: lambdas[i], steps: steps,
                                                      learningRate: learningRate, trialIndex: trialIndex(i),
                                                      keepWeights: keepWeights)
                    outcome = Result(lambda: lambdas[i], evaluation: r.outcome.evaluation, weights: r.weights,
                                     seconds: Self.seconds(since: start))
                } catch {
                    let nan = Double.nan
                    outcome = Result(lambda: lambdas[i], evaluation: Evaluation(trainLoss: nan, validLoss: nan, testLoss: nan, testError: nan),
                                     weights: nil, seconds: Self.seconds(since: start))
                }
                let done = box.store(outcome, at: i)
                progress(done, n)
            }
        }
        return box.results
    }

    static func seconds(since start: UInt64) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}

/// Results filled in by several threads.
private final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [TrialPool.Result?]
    private var done = 0

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func store(_ r: TrialPool.Result, at i: Int) -> Int {
        lock.lock()
        defer { lock.unlock() }
        slots[i] = r
        done += 1
        return done
    }

    var results: [TrialPool.Result] {
        lock.lock()
        defer { lock.unlock() }
        return slots.map { $0! }
    }
}
