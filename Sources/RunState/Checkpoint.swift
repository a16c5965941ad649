import HyperOpt

/// Everything a run needs to continue exactly where it stopped — the coordinator's
/// `--checkpoint`, and the single-process run's `--checkpoint-every` — and what `export` and
/// `predict` read: φ, λ̂ and both optimizers' state, the run's configuration, a fingerprint of
/// its data, free-form counters and the wall time spent so far.
///
/// The file format is described in `Checkpoint+Format.swift`; writing and reading the file
/// (atomic replacement, the `.prev` fallback) in `Checkpoint+File.swift`.
public struct Checkpoint: Sendable, Equatable {
    /// φ, λ̂, optimizer state and the step/version counters.
    public var snapshot: HyperState.Snapshot
    /// The run's resolved configuration.
    public var config: ExperimentConfig
    /// Fingerprint of the training/validation data the run used.
    public var dataFingerprint: UInt64
    /// Free-form counters (gradients applied, gradients rejected, …).
    public var counters: [String: UInt64]
    /// Wall-clock seconds the run had spent when the checkpoint was taken.
    public var wallSecondsSoFar: Double

    /// A checkpoint of `snapshot` taken under `config` on data with `dataFingerprint`.
    public init(snapshot: HyperState.Snapshot, config: ExperimentConfig, dataFingerprint: UInt64,
                counters: [String: UInt64] = [:], wallSecondsSoFar: Double) {
        self.snapshot = snapshot
        self.config = config
        self.dataFingerprint = dataFingerprint
        self.counters = counters
        self.wallSecondsSoFar = wallSecondsSoFar
    }

    /// The result of ``latestGood(at:)``: the checkpoint and which file it came from.
    public struct LatestGood: Sendable, Equatable {
        /// The checkpoint read.
        public var checkpoint: Checkpoint
        /// The file it was read from: `path` or `path.prev`.
        public var path: String
        /// Whether `path` was unusable and `path.prev` was read instead.
        public var usedPrevious: Bool
        /// Why `path` was unusable, when `usedPrevious`.
        public var latestError: CheckpointError?
    }


    /// Array names in file order; a pipelined run's checkpoint adds `taskArrayNames`.
    static let arrayNames = ["phi", "lambda_hat", "phi_m", "phi_v", "lambda_m", "lambda_v"]
    /// The task parameters of a pipelined run (`HyperState.TaskParameters`), after the others.
    static let taskArrayNames = ["task_phi", "task_lambda_hat"]

    /// The names of this checkpoint's arrays, in file order.
    var names: [String] { Self.arrayNames + (snapshot.taskParameters == nil ? [] : Self.taskArrayNames) }

    /// The float arrays in file order.
    var arrays: [[Float]] {
        [snapshot.phi, snapshot.lambdaHat, snapshot.phiM, snapshot.phiV, snapshot.lambdaM, snapshot.lambdaV]
            + (snapshot.taskParameters.map { [$0.phi, $0.lambdaHat] } ?? [])
    }

    // MARK: Resuming

    /// Settings that may change between the run that wrote a checkpoint and the run resuming
    /// from it: how long to run and how often to evaluate. Everything else shapes the
    /// trajectory or the meaning of φ and λ̂.
    public static let resumableSettings: Set<String> = ["steps", "evalEvery"]

    /// Why resuming this checkpoint under `config` (and, if given, data with
    /// `dataFingerprint`) would be wrong, one sentence each; empty when it is fine.
    ///
    /// Every stored property of ``ExperimentConfig`` is compared except
    /// ``resumableSettings``, so a setting added later is covered without touching this code.
    /// A `steps` below the checkpoint's step is also reported: the run would be over already.
    public func compatible(with config: ExperimentConfig, dataFingerprint: UInt64? = nil) -> [String] {
        var problems: [String] = []
        let saved = Mirror(reflecting: self.config).children
        let requested = Mirror(reflecting: config).children
        for (old, new) in zip(saved, requested) {
            guard let name = old.label, !Self.resumableSettings.contains(name) else { continue }
            let was = String(describing: old.value), now = String(describing: new.value)
            if was != now {
                problems.append("\(name) was \(was) when the checkpoint was written but is \(now) now")
            }
        }
        if let dataFingerprint, dataFingerprint != self.dataFingerprint {
            problems.append("the data differ from the checkpoint's (fingerprint \(Self.hex(dataFingerprint)), checkpoint \(Self.hex(self.dataFingerprint)))")
        }
        if config.steps >= 0 && UInt64(config.steps) < snapshot.step {
            problems.append("steps is \(config.steps) but the checkpoint is already at step \(snapshot.step)")
        }
        return problems
    }

    // MARK: Validation shared by write and read

    enum ContentProblem {
        case nonFinite(array: String, index: Int, value: Float)
        case invalid(String)

        func error(file: String, writing: Bool) -> CheckpointError {
            switch self {
            case let .nonFinite(array, index, value):
                return .nonFiniteValues(file: file, array: array, index: index, value: value)
            case let .invalid(reason):
                return writing ? .invalidContents(file: file, reason: reason) : .corruptHeader(file: file, reason: reason)
            }
        }
    }

    /// The first reason the contents are not a resumable state, if any.
    func contentProblem() -> ContentProblem? {
        let configProblems = config.problems()
        guard configProblems.isEmpty else {
            return .invalid("the configuration is invalid: \(configProblems.joined(separator: "; "))")
        }
        guard wallSecondsSoFar.isFinite && wallSecondsSoFar >= 0 else {
            return .invalid("wall_seconds_so_far must be finite and ≥ 0, got \(wallSecondsSoFar)")
        }
        guard snapshot.phiOptimizerSteps >= 0 && snapshot.lambdaOptimizerSteps >= 0 else {
            return .invalid("optimizer step counts must be ≥ 0, got \(snapshot.phiOptimizerSteps) and \(snapshot.lambdaOptimizerSteps)")
        }
        // The elementary model's size, overflow-checked and bounded by the arrays present
        // (φ always contains at least the output bias b of length D), before anything
        // allocates in proportion to it.
        var d = 0
        // (An external model's size was bounded by `config.problems()` above.)
        let model = config.external.map { "an external model of \($0.tensors.count) tensors" } ?? "layers \(config.shape)"
        if let external = config.external { d = external.parameterCount }
        for (from, to) in zip(config.layers, config.layers.dropFirst()) where config.external == nil {
            let (weights, o1) = from.multipliedReportingOverflow(by: to)
            let (layer, o2) = weights.addingReportingOverflow(to)
            let (sum, o3) = d.addingReportingOverflow(layer)
            guard !o1 && !o2 && !o3 else { return .invalid("layers \(config.layers) are too large") }
            d = sum
        }
        guard d <= snapshot.phi.count else {
            return .invalid("phi has \(snapshot.phi.count) values, fewer than the \(d) weights of \(model)")
        }
        let phiCount = config.phiCount, h = config.hyperparameterCount
        let (phiMoments, lambdaMoments) = (config.phiOptimizer == .adam ? phiCount : 0, config.lambdaOptimizer == .adam ? h : 0)
        switch (config.pipelined ?? false, snapshot.taskParameters != nil) {
        case (true, false): return .invalid("the run is pipelined but the checkpoint has no task parameters (task_phi, task_lambda_hat)")
        case (false, true): return .invalid("the checkpoint has task parameters (task_phi, task_lambda_hat) but the run is not pipelined")
        default: break
        }
        let expected = [phiCount, h, phiMoments, phiMoments, lambdaMoments, lambdaMoments, phiCount, h]
        for (name, (values, count)) in zip(names, zip(arrays, expected)) where values.count != count {
            return .invalid("\(name) has \(values.count) values, but \(model), scope \(config.external?.scope.rawValue ?? config.scope.rawValue), "
                + "hypernet \(config.hypernet) with \(config.phiOptimizer.rawValue)/\(config.lambdaOptimizer.rawValue) need \(count)")
        }
        for (name, values) in zip(names, arrays) {
            if let index = Self.firstNonFinite(values) {
                return .nonFinite(array: name, index: index, value: values[index])
            }
        }
        return nil
    }

    /// Index of the first NaN or infinity; branch-free over blocks so the scan vectorizes.
    static func firstNonFinite(_ values: [Float]) -> Int? {
        values.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: UInt32.self) { bits in
                let block = 4096
                var start = 0
                while start < bits.count {
                    let end = min(start + block, bits.count)
                    // Exponent all ones ⇔ (bits & 0x7f800000) + 0x00800000 carries into bit 31.
                    var hit: UInt32 = 0
                    for i in start..<end { hit |= (bits[i] & 0x7f80_0000) &+ 0x0080_0000 }
                    if hit & 0x8000_0000 != 0 {
                        return (start..<end).first { bits[$0] & 0x7f80_0000 == 0x7f80_0000 }
                    }
                    start = end
                }
                return nil
            }
        }
    }
}
