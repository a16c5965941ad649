import Foundation
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
    /// task: drawn for the next step on `noiseThread` once this one is handed out, while the
    /// peers compute (it is as much work as a tenth of a task), so a weight task's λ is only
    /// `λ̂ + noise` when the step starts and results are taken in as they arrive.
    private let noiseStore: NoiseStore
    /// Draws the noise of the next steps in the cores' idle time (on a machine with as many
    /// processes as cores, the peers' tasks and the coordinator's own step come first; the
    /// noise is due a step or two later, and what is not drawn by then the coordinator's thread
    /// draws itself).
    private let noiseThread = HelperThread(name: "coordinator-noise", background: true)
    /// Steps ahead whose noise is drawn.
    static let noiseLookahead: UInt64 = 2
    private var rowsScratch: [Int32] = []
    /// The λ and w each weight task of the current step carried (with the λ̂ version they came
    /// from): the reply's λ is checked against them, and an external model's penalty is taken
    /// at them, without computing either again.
    private var sent: [NoiseStore.Key: (lambdaVersion: UInt64, lambda: [Float], weights: [Float])] = [:]

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
        noiseStore = NoiseStore(sampler: sampler, count: hyperparameterCount)
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
        let lambda = lambdaScratch.array, weights = weightsScratch.array
        sent = sent.filter { $0.key.step == state.step }
        sent[NoiseStore.Key(step: state.step, task: task)] = (state.lambdaVersion, lambda, weights)
        return (lambda, weights)
    }

    /// What sync weight task `task` of the state's step carried, while λ̂ is still the one it
    /// was made from.
    private func carried(task: Int, _ state: HyperState) -> (lambda: [Float], weights: [Float])? {
        guard let c = sent[NoiseStore.Key(step: state.step, task: task)], c.lambdaVersion == state.lambdaVersion else { return nil }
        return (c.lambda, c.weights)
    }

    /// Adds the penalty's gradient `∂L_reg/∂w` at the task's `w = φ(λ)` into an external
    /// trainer's `gradW`, and returns `L_reg(w, λ)`. Sync task `task`: at the w it carried
    /// (`lambda` is checked equal to its λ before); otherwise w is computed again from the φ and
    /// λ̂ the task was made from (`phi`, `lambdaHat`; default: the state's current ones).
    func addPenalty(gradW: inout [Float], lambda: [Float], task: Int? = nil, _ state: HyperState,
                    phi: UnsafePointer<Float>? = nil, lambdaHat: UnsafePointer<Float>? = nil) -> Double {
        guard let penalty else { return 0 }
        return lambda.withUnsafeBufferPointer { l in
            func addGradient(at w: UnsafePointer<Float>) -> Double {
                gradW.withUnsafeMutableBufferPointer { gw in
                    penalty.addGradient(w: w, lambda: l.baseAddress!, gradW: gw.baseAddress!, gradLambda: nil, scratch: penaltyScratch.pointer)
                }
            }
            if let task, let carried = carried(task: task, state) {
                // Copied into the aligned workspace: the kernels' bits must not depend on where
                // an array happens to start.
                penaltyWeights.load(carried.weights)
                return addGradient(at: penaltyWeights.constPointer)
            }
            expander.weights(phi: phi ?? state.phi.constPointer, lambdaHat: lambdaHat ?? state.lambdaHat.constPointer,
                             lambda: l.baseAddress!, into: penaltyWeights.pointer)
            return addGradient(at: penaltyWeights.constPointer)
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
        if count == h, let carried = carried(task: task, state) {
            return carried.lambda   // computed once, shared with its message
        }
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

    /// Starts drawing the training tasks' noise of the `noiseLookahead` steps after `step` on
    /// the noise thread (this one is handed out; its peers are computing).
    func drawNoise(after step: UInt64) {
        let last = min(step + Self.noiseLookahead, UInt64(config.steps) - 1)
        guard last > step else { return }
        let keys = (step + 1...last).flatMap { s in
            (0..<StepPlan(step: s, config: config).trainTasks).map { NoiseStore.Key(step: s, task: $0) }
        }
        let claimed = noiseStore.claim(keys)
        guard !claimed.isEmpty else { return }
        let store = noiseStore
        noiseThread.submit { for key in claimed { store.draw(key) } }
    }

    /// Frees the noise of steps before `step` for reuse.
    func discardNoise(before step: UInt64) { noiseStore.discard(before: step) }

    /// The λ̂-independent part of the λ of sync task `task` at `step`, drawn once.
    private func noise(step: UInt64, task: Int) -> UnsafePointer<Double> {
        noiseStore.values(NoiseStore.Key(step: step, task: task))
    }
}

/// The drawn λ noise by (step, task), shared by the coordinator's thread and its noise
/// thread. A key is queued, then drawn by whichever thread takes it first (the noise thread in
/// order, the coordinator's thread when it needs one not taken yet), then ready; a reader of a
/// key being drawn waits for it. Buffers stay put until `discard`, which only the
/// coordinator's thread calls.
final class NoiseStore: @unchecked Sendable {
    struct Key: Hashable { let step: UInt64; let task: Int }
    private let sampler: TaskSampler
    private let count: Int
    private let condition = NSCondition()
    private var ready: [Key: AlignedBuffer<Double>] = [:]
    private var queued: Set<Key> = []
    private var drawing: Set<Key> = []
    private var spare: [AlignedBuffer<Double>] = []

    init(sampler: TaskSampler, count: Int) {
        self.sampler = sampler
        self.count = count
    }

    /// Queues the keys not queued, drawn or ready yet and returns them.
    func claim(_ keys: [Key]) -> [Key] {
        condition.lock()
        defer { condition.unlock() }
        let new = keys.filter { ready[$0] == nil && !queued.contains($0) && !drawing.contains($0) }
        queued.formUnion(new)
        return new
    }

    /// Draws a queued key unless another thread took it.
    func draw(_ key: Key) {
        condition.lock()
        defer { condition.unlock() }
        if queued.contains(key) { drawLocked(key) }
    }

    /// The key's values: drawn here unless another thread is drawing them (then waited for).
    func values(_ key: Key) -> UnsafePointer<Double> {
        condition.lock()
        defer { condition.unlock() }
        while drawing.contains(key) { condition.wait() }
        if ready[key] == nil { drawLocked(key) }
        return ready[key]!.constPointer
    }

    /// Draws `key` (not being drawn nor ready), unlocking while it computes.
    private func drawLocked(_ key: Key) {
        queued.remove(key)
        drawing.insert(key)
        let buffer = spare.popLast() ?? AlignedBuffer<Double>(count: count)
        condition.unlock()
        sampler.lambdaNoise(step: key.step, task: key.task, into: buffer.pointer, count: count)
        condition.lock()
        ready[key] = buffer
        drawing.remove(key)
        condition.broadcast()
    }

    /// Frees the noise of steps before `step`.
    func discard(before step: UInt64) {
        condition.lock()
        defer { condition.unlock() }
        for key in ready.keys where key.step < step { spare.append(ready.removeValue(forKey: key)!) }
        queued = queued.filter { $0.step >= step }
    }
}
