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
    /// w = φ(λ̂) for validation tasks, with the hypernetwork's hidden layer, by the versions of
    /// the φ and λ̂ it is from: the current task parameters' and (pipelined) the next ones'.
    private var validWeights: [Versions: (values: [Float], hidden: [Float])] = [:]
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
    private var sent: [NoiseStore.Key: Made] = [:]
    /// A weight task made: the versions of the φ and λ̂ it is from, its λ and w, and the
    /// hypernetwork's hidden layer at that λ (its reply's backward pass starts from it).
    private struct Made {
        let versions: (phi: UInt64, lambda: UInt64)
        let lambda: [Float]
        let weights: [Float]
        let hidden: [Float]
    }

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

    // Tasks are made from the state's task parameters (`HyperState.taskPhi`, `taskLambdaHat`):
    // the current φ and λ̂, or in a pipelined run the ones before the previous step's update.
    // (Async runs are never pipelined: there the task parameters are the current ones.)

    /// φ of the task parameters' version.
    func phi(_ state: HyperState) -> [Float] {
        if phiArray?.version != state.taskPhiVersion { phiArray = (state.taskPhiVersion, state.taskPhi.array) }
        return phiArray!.values
    }

    /// λ̂ of the task parameters' version.
    func lambdaHat(_ state: HyperState) -> [Float] {
        if lambdaArray?.version != state.taskLambdaVersion { lambdaArray = (state.taskLambdaVersion, state.taskLambdaHat.array) }
        return lambdaArray!.values
    }

    /// w = φ(λ̂) of the task parameters (computed once per version pair).
    func weights(_ state: HyperState) -> [Float] {
        let versions = Versions(phi: state.taskPhiVersion, lambda: state.taskLambdaVersion)
        if let w = validWeights[versions] { return w.values }
        expander.weights(phi: state.taskPhi.constPointer, lambdaHat: state.taskLambdaHat.constPointer, into: weightsScratch.pointer)
        keepValidWeights(versions, state)
        return validWeights[versions]!.values
    }

    /// w = φ(λ̂) of the final φ and λ̂ (an external run's last validation; once).
    func finalWeights(_ state: HyperState) -> [Float] {
        expander.weights(phi: state.phi.constPointer, lambdaHat: state.lambdaHat.constPointer, into: weightsScratch.pointer)
        return weightsScratch.array
    }

    /// Stores the w = φ(λ̂) just computed (in `weightsScratch`, the expander's hidden layer with
    /// it) under `versions`, keeping only the task parameters' and the current ones'.
    private func keepValidWeights(_ versions: Versions, _ state: HyperState) {
        let keep: Set<Versions> = [versions, Versions(phi: state.taskPhiVersion, lambda: state.taskLambdaVersion),
                                   Versions(phi: state.phiVersion, lambda: state.lambdaVersion)]
        validWeights = validWeights.filter { keep.contains($0.key) }
        validWeights[versions] = (weightsScratch.array, expander.hiddenState)
    }

    /// Sync training task `task` of step `step` as a weight task: its λ sample (what
    /// (seed, step, task) gives at the task parameters' λ̂) and w = φ(λ) — prepared ahead
    /// (`prepare`) when the task parameters are still the ones it was prepared from.
    func trainWeights(task: Int, step: UInt64, _ state: HyperState) -> (lambda: [Float], weights: [Float]) {
        let key = NoiseStore.Key(step: step, task: task)
        let versions = (phi: state.taskPhiVersion, lambda: state.taskLambdaVersion)
        let made: Made
        if let p = prepared.removeValue(forKey: key), p.versions == versions {
            made = p
        } else {
            made = makeWeightTask(key, phi: state.taskPhi, lambdaHat: state.taskLambdaHat, versions: versions)
        }
        sent = sent.filter { $0.key.step == step }
        sent[key] = made
        return (made.lambda, made.weights)
    }

    /// Weight tasks made ahead by `prepare`, with the versions of the φ and λ̂ they are from.
    private var prepared: [NoiseStore.Key: Made] = [:]

    /// Pipelined: makes step `step`'s weight tasks — training tasks `0..<trainTasks` and, when
    /// `validate`, the validation task's w = φ(λ̂) — from the current φ and λ̂, which become its
    /// task parameters when the step before it completes. Called right after an update, while
    /// the peers compute the step before: when that step completes its successor's tasks go
    /// out at once instead of after their hypernetwork passes. The bits are those of making them
    /// then (same values, same kernels); a roll-back in between changes the versions, and
    /// they are made again.
    func prepare(step: UInt64, trainTasks: Int, validate: Bool, _ state: HyperState) {
        let versions = (phi: state.phiVersion, lambda: state.lambdaVersion)
        prepared = prepared.filter { $0.key.step >= step }
        for task in 0..<trainTasks {
            let key = NoiseStore.Key(step: step, task: task)
            prepared[key] = makeWeightTask(key, phi: state.phi, lambdaHat: state.lambdaHat, versions: versions)
        }
        let current = Versions(phi: state.phiVersion, lambda: state.lambdaVersion)
        if validate && validWeights[current] == nil {
            expander.weights(phi: state.phi.constPointer, lambdaHat: state.lambdaHat.constPointer, into: weightsScratch.pointer)
            keepValidWeights(current, state)
        }
    }

    /// Sync training task `key` as a weight task made from `phi` and `lambdaHat`: its λ sample,
    /// w = φ(λ) and the hypernetwork's hidden layer at that λ.
    private func makeWeightTask(_ key: NoiseStore.Key, phi: AlignedBuffer<Float>, lambdaHat: AlignedBuffer<Float>,
                                versions: (phi: UInt64, lambda: UInt64)) -> Made {
        sampler.lambda(noise: noise(step: key.step, task: key.task), lambdaHat: lambdaHat.constPointer, into: lambdaScratch.pointer, count: h)
        expander.weights(phi: phi.constPointer, lambdaHat: lambdaHat.constPointer, lambda: lambdaScratch.constPointer, into: weightsScratch.pointer)
        return Made(versions: versions, lambda: lambdaScratch.array, weights: weightsScratch.array, hidden: expander.hiddenState)
    }

    /// What sync weight task `task` of step `step` carried, while the task parameters' λ̂ is
    /// still the one it was made from.
    private func carried(task: Int, step: UInt64, _ state: HyperState) -> (lambda: [Float], weights: [Float])? {
        guard let c = sent[NoiseStore.Key(step: step, task: task)], c.versions == (state.taskPhiVersion, state.taskLambdaVersion) else { return nil }
        return (c.lambda, c.weights)
    }

    /// The λ sync weight task `task` of step `step` carried (nil when it was not one, or the task
    /// parameters have changed since).
    func carriedLambda(task: Int, step: UInt64, _ state: HyperState) -> [Float]? {
        carried(task: task, step: step, state)?.lambda
    }

    /// Records sync training task `task`'s ∂L/∂w reply (its λ checked equal to the λ it
    /// carried) as slot `task` of the step's φ-gradient: `TaskGradientExpander.record` at the
    /// task parameters, starting from the hidden layer the task's w was made with.
    func record(task: Int, step: UInt64, lambda: UnsafePointer<Float>, gradW: UnsafePointer<Float>, _ state: HyperState) {
        let c = sent[NoiseStore.Key(step: step, task: task)]
        let hidden = c.flatMap { $0.versions == (state.taskPhiVersion, state.taskLambdaVersion) ? $0.hidden : nil }
        expander.record(phi: state.taskPhi.constPointer, lambdaHat: state.taskLambdaHat.constPointer,
                        lambda: lambda, gradW: gradW, slot: task, hidden: hidden)
    }

    /// ∂L_valid/∂λ̂ from a sync validation task's ∂L/∂w at w = φ(λ̂) of the task parameters.
    func hypergradient(gradW: UnsafePointer<Float>, into gradLambda: UnsafeMutablePointer<Float>, _ state: HyperState) {
        let made = validWeights[Versions(phi: state.taskPhiVersion, lambda: state.taskLambdaVersion)]?.hidden
        expander.hypergradient(phi: state.taskPhi.constPointer, lambdaHat: state.taskLambdaHat.constPointer,
                               gradW: gradW, into: gradLambda, hidden: made)
    }

    /// Adds the penalty's gradient `∂L_reg/∂w` at the task's `w = φ(λ)` into an external
    /// trainer's `gradW`, and returns `L_reg(w, λ)`. Sync task `task` of step `step`: at the w
    /// it carried (`lambda` is checked equal to its λ before); otherwise w is computed again
    /// from the φ and λ̂ the task was made from (`phi`, `lambdaHat`; default: the state's task
    /// parameters).
    func addPenalty(gradW: inout [Float], lambda: [Float], task: (index: Int, step: UInt64)? = nil, _ state: HyperState,
                    phi: UnsafePointer<Float>? = nil, lambdaHat: UnsafePointer<Float>? = nil) -> Double {
        guard let penalty else { return 0 }
        return lambda.withUnsafeBufferPointer { l in
            func addGradient(at w: UnsafePointer<Float>) -> Double {
                gradW.withUnsafeMutableBufferPointer { gw in
                    penalty.addGradient(w: w, lambda: l.baseAddress!, gradW: gw.baseAddress!, gradLambda: nil, scratch: penaltyScratch.pointer)
                }
            }
            if let task, let carried = carried(task: task.index, step: task.step, state) {
                // Copied into the aligned workspace: the kernels' bits must not depend on where
                // an array happens to start.
                penaltyWeights.load(carried.weights)
                return addGradient(at: penaltyWeights.constPointer)
            }
            expander.weights(phi: phi ?? state.taskPhi.constPointer, lambdaHat: lambdaHat ?? state.taskLambdaHat.constPointer,
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

    /// The first `count` components of the λ of sync task `task` of step `step` (from the task
    /// parameters' λ̂; a prefix of the stream is exactly the prefix of the full sample).
    func expectedLambda(task: Int, step: UInt64, count: Int, _ state: HyperState) -> [Float] {
        if count == h, let carried = carried(task: task, step: step, state) {
            return carried.lambda   // computed once, shared with its message
        }
        if count == h {
            sampler.lambda(noise: noise(step: step, task: task), lambdaHat: state.taskLambdaHat.constPointer,
                           into: lambdaScratch.pointer, count: h)
            return lambdaScratch.array
        }
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { o in
            sampler.lambda(step: step, task: task, lambdaHat: state.taskLambdaHat.constPointer, into: o.baseAddress!, count: count)
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
