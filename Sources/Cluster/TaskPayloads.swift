import HyperOpt
import Linalg
import Models

/// What the hyper-training coordinator puts in its task messages, and the hypernetwork passes it
/// runs for weight tasks: φ and λ̂ as arrays (one copy per version, shared by every message —
/// the transport sends them without copying), w = φ(λ̂) for validators, and for sync trainers
/// each task's λ sample and w = φ(λ). All computed in aligned workspaces exactly as a worker
/// would, so the cluster's bits equal the single process's.
final class TaskPayloads {
    /// Expands ∂L/∂w replies into ∂L/∂φ and runs the hypernetwork for weight tasks.
    let expander: TaskGradientExpander
    private let sampler: TaskSampler
    private let config: ExperimentConfig
    private let h: Int
    private var phiArray: (version: UInt64, values: [Float])?
    private var lambdaArray: (version: UInt64, values: [Float])?
    private var weightsArray: (versions: (UInt64, UInt64), values: [Float])?
    /// Where w is computed (aligned like every workspace) before it is copied out.
    private let weightsScratch: AlignedBuffer<Float>
    /// Where a task's λ is sampled.
    private let lambdaScratch: AlignedBuffer<Float>
    /// The λ̂-independent part of sync training tasks' λ (`TaskSampler.lambdaNoise`), by step and
    /// task: drawn for the next step once this one is handed out, while the peers compute, so a
    /// weight task's λ is only `λ̂ + noise` when the step starts.
    private var noiseCache: [NoiseKey: AlignedBuffer<Double>] = [:]
    private var spareNoise: [AlignedBuffer<Double>] = []
    private var rowsScratch: [Int32] = []
    private struct NoiseKey: Hashable { let step: UInt64; let task: Int }

    /// An external model's penalty (the coordinator owns it; docs/protocol.md §12), nil for the
    /// built-in MLP, whose trainers add it themselves.
    private let penalty: Regularizer?
    private let penaltyScratch: AlignedBuffer<Float>
    private let penaltyWeights: AlignedBuffer<Float>

    init(config: ExperimentConfig, hyperparameterCount: Int) {
        penalty = config.external.map { Regularizer(external: $0, norm: config.norm) }
        penaltyScratch = AlignedBuffer(count: penalty == nil ? 0 : 2 * hyperparameterCount)
        penaltyWeights = AlignedBuffer(count: penalty == nil ? 0 : config.weightCount)
        self.config = config
        h = hyperparameterCount
        sampler = TaskSampler(config: config)
        expander = TaskGradientExpander(config: config)
        weightsScratch = AlignedBuffer(count: expander.weightCount)
        lambdaScratch = AlignedBuffer(count: hyperparameterCount)
    }

    /// Number of elementary-model weights (the length of w and ∂L/∂w).
    var weightCount: Int { expander.weightCount }

    /// φ of the state's current version.
    func phi(_ state: HyperState) -> [Float] {
        if phiArray?.version != state.phiVersion { phiArray = (state.phiVersion, state.phi.array) }
        return phiArray!.values
    }

    /// λ̂ of the state's current version.
    func lambdaHat(_ state: HyperState) -> [Float] {
        if lambdaArray?.version != state.lambdaVersion { lambdaArray = (state.lambdaVersion, state.lambdaHat.array) }
        return lambdaArray!.values
    }

    /// w = φ(λ̂) of the current versions (computed once per version pair).
    func weights(_ state: HyperState) -> [Float] {
        let versions = (state.phiVersion, state.lambdaVersion)
        if let w = weightsArray, w.versions == versions { return w.values }
        expander.weights(phi: state.phi.constPointer, lambdaHat: state.lambdaHat.constPointer, into: weightsScratch.pointer)
        weightsArray = (versions, weightsScratch.array)
        return weightsArray!.values
    }

    /// Sync training task `task` of the state's step as a weight task: its λ sample (what
    /// (seed, step, task) gives at λ̂) and w = φ(λ).
    func trainWeights(task: Int, _ state: HyperState) -> (lambda: [Float], weights: [Float]) {
        sampler.lambda(noise: noise(step: state.step, task: task), lambdaHat: state.lambdaHat.constPointer,
                       into: lambdaScratch.pointer, count: h)
        expander.weights(phi: state.phi.constPointer, lambdaHat: state.lambdaHat.constPointer, lambda: lambdaScratch.constPointer,
                         into: weightsScratch.pointer)
        return (lambdaScratch.array, weightsScratch.array)
    }

    /// Adds the penalty's gradient `∂L_reg/∂w` at the task's `w = φ(λ)` (recomputed: the bits
    /// that were sent) into an external trainer's `gradW`, and returns `L_reg(w, λ)`. `phi` and
    /// `lambdaHat`: the task's (default: the state's current ones, as in sync mode).
    func addPenalty(gradW: inout [Float], lambda: [Float], _ state: HyperState,
                    phi: UnsafePointer<Float>? = nil, lambdaHat: UnsafePointer<Float>? = nil) -> Double {
        guard let penalty else { return 0 }
        return lambda.withUnsafeBufferPointer { l in
            expander.weights(phi: phi ?? state.phi.constPointer, lambdaHat: lambdaHat ?? state.lambdaHat.constPointer,
                             lambda: l.baseAddress!, into: penaltyWeights.pointer)
            return gradW.withUnsafeMutableBufferPointer { gw in
                penalty.addGradient(w: penaltyWeights.constPointer, lambda: l.baseAddress!, gradW: gw.baseAddress!,
                                    gradLambda: nil, scratch: penaltyScratch.pointer)
            }
        }
    }

    // MARK: Async weight tasks (external models)

    /// φ and λ̂ of the versions async weight tasks were computed from: a reply is expanded with
    /// the φ it was computed at (φ has moved on since). Pruned once no lease can be accepted.
    private var versionSnapshots: [Versions: (phi: AlignedBuffer<Float>, lambdaHat: AlignedBuffer<Float>)] = [:]
    private struct Versions: Hashable { let phi: UInt64; let lambda: UInt64 }

    /// An async training weight task at the current versions: λ from (seed, issue counter, 0) at
    /// λ̂, and w = φ(λ); the versions' φ and λ̂ are kept for its reply.
    func asyncTrainWeights(step: UInt64, _ state: HyperState) -> (lambda: [Float], weights: [Float]) {
        keepVersions(state)
        sampler.lambda(step: step, task: 0, lambdaHat: state.lambdaHat.constPointer, into: lambdaScratch.pointer, count: h)
        expander.weights(phi: state.phi.constPointer, lambdaHat: state.lambdaHat.constPointer, lambda: lambdaScratch.constPointer,
                         into: weightsScratch.pointer)
        return (lambdaScratch.array, weightsScratch.array)
    }

    /// Keeps the current φ and λ̂ for replies to tasks handed out now.
    func keepVersions(_ state: HyperState) {
        let key = Versions(phi: state.phiVersion, lambda: state.lambdaVersion)
        guard versionSnapshots[key] == nil else { return }
        versionSnapshots[key] = (AlignedBuffer(state.phi.array), AlignedBuffer(state.lambdaHat.array))
    }

    /// φ and λ̂ as they were at these versions (nil: not kept, or pruned).
    func kept(phiVersion: UInt64, lambdaVersion: UInt64) -> (phi: UnsafePointer<Float>, lambdaHat: UnsafePointer<Float>)? {
        versionSnapshots[Versions(phi: phiVersion, lambda: lambdaVersion)].map { ($0.phi.constPointer, $0.lambdaHat.constPointer) }
    }

    /// Drops the versions no reply can use any more: φ older than `maxStaleness` versions (for a
    /// gradient) and λ̂ older than `maxStaleness` versions (for a hypergradient).
    func pruneVersions(_ state: HyperState, maxStaleness: UInt64) {
        for key in versionSnapshots.keys
        where key.phi + maxStaleness < state.phiVersion && key.lambda + maxStaleness < state.lambdaVersion {
            versionSnapshots[key] = nil
        }
    }

    /// The first `count` components of the λ of sync task `task` of the state's step (from the
    /// current λ̂; a prefix of the stream is exactly the prefix of the full sample).
    func expectedLambda(task: Int, count: Int, _ state: HyperState) -> [Float] {
        if count == h {
            sampler.lambda(noise: noise(step: state.step, task: task), lambdaHat: state.lambdaHat.constPointer,
                           into: lambdaScratch.pointer, count: h)
            return lambdaScratch.array
        }
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { o in
            sampler.lambda(step: state.step, task: task, lambdaHat: state.lambdaHat.constPointer, into: o.baseAddress!, count: count)
        }
        return out
    }

    /// The training rows of task `task` at `step` (the issue counter in async mode), as the
    /// trainer must have drawn them.
    func expectedRows(step: UInt64, task: Int) -> [Int32] {
        sampler.trainRows(step: step, task: task, count: config.nTrain, into: &rowsScratch)
        return rowsScratch
    }

    /// Draws the training tasks' noise of the step after `step` (this one is handed out; its
    /// peers are computing).
    func drawNoise(after step: UInt64) {
        let next = step + 1
        guard next < UInt64(config.steps) else { return }
        for k in 0..<StepPlan(step: next, config: config).trainTasks { _ = noise(step: next, task: k) }
    }

    /// Frees the noise of steps before `step` for reuse.
    func discardNoise(before step: UInt64) {
        for key in noiseCache.keys where key.step < step { spareNoise.append(noiseCache.removeValue(forKey: key)!) }
    }

    /// The λ̂-independent part of the λ of sync task `task` at `step`, drawn once.
    private func noise(step: UInt64, task: Int) -> UnsafePointer<Double> {
        let key = NoiseKey(step: step, task: task)
        if let b = noiseCache[key] { return b.constPointer }
        let b = spareNoise.popLast() ?? AlignedBuffer<Double>(count: h)
        sampler.lambdaNoise(step: step, task: task, into: b.pointer, count: h)
        noiseCache[key] = b
        return b.constPointer
    }
}
