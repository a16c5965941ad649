import HyperOpt
import Models

/// An `ExperimentConfig` as settings: the flags (name without `--`, value as typed on the
/// command line) that reproduce it. `run --config` of ``resolvedFile(_:)`` resolves to the same
/// configuration: it gives every setting, so the recipe chooses none.
public enum ExperimentSettings {
    /// Every setting of `config` that a flag sets, in the order of `hypertrain run --help`. A
    /// setting the recipe left unset is left out; the step-size schedule and the divergence
    /// guard are always given (`constant`, `off`), so no recipe fills them in afterwards.
    public static func entries(of c: ExperimentConfig) -> [(key: String, value: String)] {
        var e: [(key: String, value: String)] = [
            ("layers", c.layers.map(String.init).joined(separator: "-")),
            ("scope", c.scope.rawValue),
            ("norm", c.norm.rawValue),
            ("loss", c.loss.rawValue),
            ("n-train", String(c.nTrain)),
            ("n-valid", String(c.nValid)),
            ("n-test", String(c.nTest)),
            ("batch-size", String(c.batchSize)),
            ("init-scale", number(c.initScale)),
            ("seed", String(c.seed)),
        ]
        if let r = c.recipe { e.append(("recipe", r.rawValue)) }
        if let h = c.hypernetInit { e.append(("hypernet-init", h.rawValue)) }
        e.append(("lr-schedule", c.learningRateSchedule?.description ?? "constant"))
        e += [
            ("lambda-init", number(c.lambdaInit)),
            ("valid-batch-size", String(c.validBatchSize)),
            ("algorithm", c.algorithm.rawValue),
            ("hypernet", c.hypernet.description),
        ]
        if let h = c.hypernetInput { e.append(("hypernet-input", h.rawValue)) }
        e += [
            ("samples", String(c.samplesPerStep)),
            ("sigma", number(c.sigma)),
            ("steps", String(c.steps)),
            ("phase1-steps", String(c.phase1Steps)),
            ("prior-mean", number(c.priorMean)),
            ("prior-std", number(c.priorStd)),
            ("phi-optimizer", c.phiOptimizer.rawValue),
            ("phi-lr", number(c.phiLearningRate)),
            ("lambda-optimizer", c.lambdaOptimizer.rawValue),
            ("lambda-lr", number(c.lambdaLearningRate)),
        ]
        if let w = c.lambdaWarmupSteps { e.append(("lambda-warmup-steps", String(w))) }
        e.append(("divergence-guard", c.divergenceGuard == nil ? "off" : "on"))
        if c.pipelined == true { e.append(("pipelined", "on")) }
        e.append(("eval-every", String(c.evalEvery)))
        if let r = c.retrainSteps { e.append(("retrain-steps", String(r))) }
        if let a = c.answer { e.append(("answer", a.rawValue)) }
        return e
    }

    /// The settings file of a resolved configuration (written next to a run's summary).
    public static func resolvedFile(_ config: ExperimentConfig) -> String {
        render(entries(of: config), header: [
            "The resolved settings of a Hypertrain run: `hypertrain run --config THIS_FILE` repeats it.",
            "Keys are the flag names without --; flags on the command line override them.",
        ])
    }

    /// The settings by which the preset `name` differs from the defaults, as a file:
    /// `--config presets/NAME.yaml` resolves exactly as `--preset NAME`.
    public static func presetFile(name: String) -> String? {
        guard let preset = StandardConfigs.benchmarks.first(where: { $0.name == name })?.config else { return nil }
        let defaults = Dictionary(entries(of: ExperimentConfig()).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        let changed = entries(of: preset).filter { defaults[$0.key] != $0.value }
        return render(changed, header: [
            "Preset '\(name)': the settings by which it differs from the defaults (keys: flag names without --).",
            "`--config presets/\(name).yaml` is `--preset \(name)`. Generated from the built-in presets",
            "(Sources/HyperOpt/StandardConfigs.swift) by `hypertrain presets --write presets`; do not edit.",
        ])
    }

    /// The file written next to a run summary at `summaryPath`: `summary.json` → `summary.config.yaml`.
    public static func companionPath(ofSummary summaryPath: String) -> String {
        (summaryPath.hasSuffix(".json") ? String(summaryPath.dropLast(5)) : summaryPath) + ".config.yaml"
    }

    /// `key: value` lines under `#` comments. Every value is a plain YAML scalar (numbers,
    /// names, `784-10`, `cosine:0.1`), so no quoting is needed.
    static func render(_ entries: [(key: String, value: String)], header: [String]) -> String {
        (header.map { "# " + $0 } + entries.map { "\($0.key): \($0.value)" }).joined(separator: "\n") + "\n"
    }

    /// The shortest text that parses back to the same `Double`.
    static func number(_ x: Double) -> String { "\(x)" }
}
