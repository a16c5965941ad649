import Models

/// Named configurations — the paper's Fig. 4, 5 and 7 settings and a deeper model (`--preset`) —
/// used by `bench step` and the experiments.
public enum StandardConfigs {
    /// Fig. 4 setting: 784-10, global L2, linear hypernet, 2 λ samples, 10 training points.
    public static var fig4: ExperimentConfig {
        var c = ExperimentConfig()
        c.layers = [784, 10]; c.scope = .global; c.hypernet = .linear
        c.nTrain = 10; c.batchSize = 10; c.validBatchSize = 1000; c.samplesPerStep = 2
        return c
    }
    /// Fig. 7 setting: 784-10, per-class L2 (10 λ), linear hypernet, batch 100.
    public static var fig7: ExperimentConfig {
        var c = ExperimentConfig()
        c.layers = [784, 10]; c.scope = .perClass; c.hypernet = .linear
        c.nTrain = 50_000; c.batchSize = 100; c.validBatchSize = 1000; c.samplesPerStep = 2
        return c
    }
    /// Fig. 5 (top) setting: 784-10, per-weight L2 (7,850 λ), factorized:10 hypernet, batch 1,000.
    public static var fig5: ExperimentConfig {
        var c = ExperimentConfig()
        c.layers = [784, 10]; c.scope = .perWeight; c.hypernet = .factorized(hidden: 10)
        c.nTrain = 10_000; c.batchSize = 1000; c.validBatchSize = 1000; c.samplesPerStep = 2
        return c
    }
    /// Fig. 5 (bottom) deepest setting: 784-100-100-10, per-weight L2, factorized:10.
    public static var deep: ExperimentConfig {
        var c = fig5
        c.layers = [784, 100, 100, 10]
        return c
    }
    /// The four `bench step` configurations by name.
    public static let benchmarks: [(name: String, config: ExperimentConfig)] = [
        ("fig4", fig4), ("fig7", fig7), ("fig5", fig5), ("deep", deep),
    ]
}
