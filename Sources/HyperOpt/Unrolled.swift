import Linalg
import Models

/// Reverse-mode unrolled hypergradients (Maclaurin et al. 2015; Franceschi et al. 2017):
/// `d L_valid(w_T(λ)) / dλ` through `T` steps of SGD with momentum on `L_train(w, λ)`,
///
///     v_{t+1} = μ·v_t − η·∇_w L_train(w_t, λ; batch_t),   w_{t+1} = w_t + v_{t+1},   v_0 = 0,
///
/// with `L_train = L_pred(batch_t) + L_reg(w, λ)` and `L_valid = L_pred(valid)` (no regularizer).
///
/// **Reverse pass.** With adjoints `ŵ_T = ∇L_valid(w_T)`, `v̂_T = 0`, `dλ = 0`, for t = T−1 … 0:
///
///     ṽ = v̂_{t+1} + ŵ_{t+1}                    (adjoint of v_{t+1} through w_{t+1} = w_t + v_{t+1})
///     ŵ_t = ŵ_{t+1} − η·∇²_w L_train(w_t, λ)·ṽ
///     v̂_t = μ·ṽ
///     dλ −= η·∂/∂λ (∇_w L_train(w_t, λ)·ṽ)      (only L_reg depends on λ)
///
/// **Curvature, all exact and hand-derived** (Models' `PredictionCurvature` and
/// `Regularizer.addCurvature`): `∇²L_pred·u` by Pearlmutter's R-operator through the MLP (one
/// forward and one backward pass of the directional derivatives; the ReLU's second derivative
/// is zero almost everywhere), `∇²L_reg·u` and the mixed term in closed form for both norms.
/// No finite differences, so the hypergradient is exact up to rounding for any depth.
///
/// **Precision.** Everything runs in `Double` (the `Float` splits are converted once): the
/// reverse pass accumulates `T` curvature terms into `ŵ` and `dλ`, the finite-difference checks
/// of the whole unroll need Double anyway, and for D = 7,850 a step is a few sparse passes over
/// the batch, so Double costs little.
///
/// **Memory.** The forward pass keeps `(w_t, v_t)` at every `k`-th step (`k = checkpointEvery`,
/// or `T` when 0) and the reverse pass recomputes each `k`-step segment from its checkpoint
/// (bit-identical: the same code on the same buffers), holding that segment's `w_t`:
/// `(k + 2·⌈T/k⌉ + 6)·D` Doubles plus the model's batch workspaces. With `k = T` (default)
/// that is the whole trajectory, ≈ `T·D` Doubles — 63 MB for D = 7,850 and T = 1,000 — and no
/// recomputation; `k ≈ √(2T)` minimises memory (≈ 2·√(2T)·D Doubles, 5.6 MB there) at the cost
/// of one extra forward pass. The last segment is stored during the forward pass and never
/// recomputed. (Maclaurin's bit-exact reversal of the momentum dynamics is not implemented.)
///
/// The minibatch of inner step `t` is `TaskSampler.rows(seed, t, task 0, .trainBatch, …)`, the
/// same in every call (the unrolled objective is a deterministic function of λ and w₀).
///
/// Not thread-safe: one instance per thread (it owns the workspaces).
public final class UnrolledHypergradient {
    /// The configuration.
    public let config: UnrolledConfig
    /// Elementary model shape.
    public let shape: MLPShape
    /// `L_reg`.
    public let regularizer: Regularizer
    /// Training examples (inner loop).
    public let train: Examples<Double>
    /// Validation examples (outer objective).
    public let valid: Examples<Double>

    /// `H`.
    public var hyperparameterCount: Int { regularizer.groupCount }
    /// `D`.
    public var parameterCount: Int { shape.parameterCount }
    /// Bytes held for the trajectory (checkpoints + one segment), see the type's notes.
    public var trajectoryBytes: Int { (checkpointW.count * 2 + segment.count) * MemoryLayout<Double>.stride }

    private let mlp: MLP<Double>
    private let curvature: PredictionCurvature
    /// Fixed validation rows, or nil for the whole split.
    private let validRows: [Int32]?
    private var rows: [Int32] = []
    private var chunkRows: [Int32] = []

    private let segmentLength: Int
    private let segmentCount: Int
    /// `w` and `v` at the start of each segment.
    private let checkpointW: AlignedBuffer<Double>
    private let checkpointV: AlignedBuffer<Double>
    /// `w_t` for the steps of the segment being reversed.
    private let segment: AlignedBuffer<Double>

    private let w: AlignedBuffer<Double>
    private let v: AlignedBuffer<Double>
    private let grad: AlignedBuffer<Double>
    private let hv: AlignedBuffer<Double>
    private let wAdjoint: AlignedBuffer<Double>
    private let vAdjoint: AlignedBuffer<Double>
    private let lambda: AlignedBuffer<Double>
    private let lambdaAdjoint: AlignedBuffer<Double>
    private let mixed: AlignedBuffer<Double>
    private let regScratch: AlignedBuffer<Double>

    /// - Parameters:
    ///   - config: a configuration without `problems()`.
    ///   - train: training examples (at least one).
    ///   - valid: validation examples (at least one).
    public init(config: UnrolledConfig, train: Examples<Double>, valid: Examples<Double>) {
        let problems = config.problems()
        precondition(problems.isEmpty, "UnrolledHypergradient: \(problems.joined(separator: "; "))")
        precondition(train.count > 0 && valid.count > 0, "UnrolledHypergradient: empty split (train \(train.count), valid \(valid.count))")
        let shape = config.shape
        precondition(train.inputSize == shape.inputSize && valid.inputSize == shape.inputSize,
                     "UnrolledHypergradient: data has \(train.inputSize)/\(valid.inputSize) inputs, model \(shape.inputSize)")
        self.config = config
        self.shape = shape
        self.train = train
        self.valid = valid
        regularizer = Regularizer(shape: shape, scope: config.scope, norm: config.norm)

        let trainBatch = min(config.batchSize, train.count)
        if let b = config.validBatchSize, b < valid.count {
            var r: [Int32] = []
            TaskSampler.rows(seed: config.seed, step: 0, task: 0, stream: .validBatch, batch: b, of: valid.count, into: &r)
            validRows = r
        } else {
            validRows = nil
        }
        let validChunk = validRows?.count ?? min(valid.count, 1000)
        mlp = MLP(shape: shape, maxBatch: max(trainBatch, validChunk))
        curvature = PredictionCurvature(shape: shape, maxBatch: trainBatch)
        rows.reserveCapacity(trainBatch)
        chunkRows.reserveCapacity(validChunk)

        let d = shape.parameterCount, h = regularizer.groupCount, t = config.innerSteps
        segmentLength = config.checkpointEvery == 0 ? t : min(config.checkpointEvery, t)
        segmentCount = (t + segmentLength - 1) / segmentLength
        checkpointW = AlignedBuffer(count: segmentCount * d)
        checkpointV = AlignedBuffer(count: segmentCount * d)
        segment = AlignedBuffer(count: segmentLength * d)
        w = AlignedBuffer(count: d)
        v = AlignedBuffer(count: d)
        grad = AlignedBuffer(count: d)
        hv = AlignedBuffer(count: d)
        wAdjoint = AlignedBuffer(count: d)
        vAdjoint = AlignedBuffer(count: d)
        lambda = AlignedBuffer(count: h)
        lambdaAdjoint = AlignedBuffer(count: h)
        mixed = AlignedBuffer(count: h)
        regScratch = AlignedBuffer(count: 3 * h)
    }

    /// Converts the `Float` splits of a run to `Double` (see the type's notes on precision).
    public convenience init(config: UnrolledConfig, data: ExperimentData) {
        self.init(config: config, train: data.train.converted(to: Double.self), valid: data.valid.converted(to: Double.self))
    }

    /// The initial weights `w₀ ~ initScale·N(0, 1)` from the Philox stream
    /// `(seed, 0, 0, .initialization)`: the same every outer iteration, as in the papers.
    public func initialWeights() -> [Double] {
        var rng = Philox(seed: config.seed, step: 0, task: 0, stream: RandomStream.initialization.rawValue)
        return (0..<parameterCount).map { _ in config.initScale * rng.nextNormal() }
    }

    /// The initial hyperparameters: `lambdaInit` in every component.
    public func initialLambda() -> [Double] { Array(repeating: config.lambdaInit, count: hyperparameterCount) }

    /// `L_valid(w_T(λ))` and its gradient in λ by back-propagation through all `T` steps.
    ///
    /// - Parameters:
    ///   - lambda: `H` hyperparameters.
    ///   - w0: `D` initial weights.
    /// - Returns: the validation loss at `w_T`, `dL_valid/dλ` (`H` values) and `w_T`.
    ///   Non-finite values are returned as they are (the caller decides).
    public func hypergradient(lambda lam: [Double], w0: [Double]) -> (validLoss: Double, gradLambda: [Double], wT: [Double]) {
        load(lambda: lam, w0: w0)
        let d = parameterCount, t = config.innerSteps, k = segmentLength
        let lastStart = (segmentCount - 1) * k
        for s in 0..<t {
            if s % k == 0 {
                (checkpointW.pointer + (s / k) * d).update(from: w.pointer, count: d)
                (checkpointV.pointer + (s / k) * d).update(from: v.pointer, count: d)
            }
            if s >= lastStart { (segment.pointer + (s - lastStart) * d).update(from: w.pointer, count: d) }
            innerStep(s)
        }
        let wT = w.array
        let loss = validLoss(w: w.constPointer, grad: wAdjoint.pointer)

        vAdjoint.zero()
        lambdaAdjoint.zero()
        let eta = config.innerLearningRate, mu = config.momentum
        let wa = wAdjoint.pointer, va = vAdjoint.pointer, hvp = hv.pointer
        for seg in stride(from: segmentCount - 1, through: 0, by: -1) {
            let start = seg * k, end = min(start + k, t)
            if seg != segmentCount - 1 {
                w.pointer.update(from: checkpointW.pointer + seg * d, count: d)
                v.pointer.update(from: checkpointV.pointer + seg * d, count: d)
                for s in start..<end {
                    (segment.pointer + (s - start) * d).update(from: w.pointer, count: d)
                    innerStep(s)
                }
            }
            for s in stride(from: end - 1, through: start, by: -1) {
                // ṽ = v̂ + ŵ, kept in `va`.
                for i in 0..<d { va[i] += wa[i] }
                curvatureProduct(w: segment.constPointer + (s - start) * d, u: UnsafePointer(va), step: s)
                for i in 0..<d { wa[i] -= eta * hvp[i] }
                for i in 0..<d { va[i] *= mu }
                let la = lambdaAdjoint.pointer, mx = mixed.constPointer
                for g in 0..<hyperparameterCount { la[g] -= eta * mx[g] }
            }
        }
        return (loss, lambdaAdjoint.array, wT)
    }

    /// `w_T(λ)`: the forward pass alone (no trajectory stored).
    public func train(lambda lam: [Double], w0: [Double]) -> [Double] {
        load(lambda: lam, w0: w0)
        for s in 0..<config.innerSteps { innerStep(s) }
        return w.array
    }

    /// `L_valid(w_T(λ))`: the objective whose gradient `hypergradient` returns.
    public func validLoss(lambda lam: [Double], w0: [Double]) -> Double {
        _ = train(lambda: lam, w0: w0)
        return validLoss(w: w.constPointer, grad: nil)
    }

    /// `L_train(w, λ)` on the minibatch of inner step `step` and its gradient in `w`
    /// (exposed for checks of `curvature`).
    public func trainingGradient(lambda lam: [Double], w wIn: [Double], step: Int) -> (loss: Double, grad: [Double]) {
        load(lambda: lam, w0: wIn)
        let loss = trainingGradient(w: w.constPointer, step: step, into: grad.pointer)
        return (loss, grad.array)
    }

    /// `∇²_w L_train(w, λ)·u` on the minibatch of inner step `step`, and the mixed term
    /// `∂/∂λ (∇_w L_train(w, λ)·u)` (`H` values), as the reverse pass uses them.
    public func curvature(lambda lam: [Double], w wIn: [Double], u: [Double], step: Int) -> (hessianVector: [Double], mixed: [Double]) {
        load(lambda: lam, w0: wIn)
        precondition(u.count == parameterCount, "curvature: u has \(u.count) values, model \(parameterCount)")
        let ub = AlignedBuffer(u)
        curvatureProduct(w: w.constPointer, u: ub.constPointer, step: step)
        return (hv.array, mixed.array)
    }

    // MARK: - Steps

    private func load(lambda lam: [Double], w0: [Double]) {
        precondition(lam.count == hyperparameterCount, "Unrolled: λ has \(lam.count) values, scope needs \(hyperparameterCount)")
        precondition(w0.count == parameterCount, "Unrolled: w has \(w0.count) values, model \(parameterCount)")
        lambda.load(lam)
        w.load(w0)
        v.zero()
    }

    private func trainRows(step: Int) {
        TaskSampler.rows(seed: config.seed, step: UInt64(step), task: 0, stream: .trainBatch,
                         batch: config.batchSize, of: train.count, into: &rows)
    }

    /// Writes `∇_w L_train(w, λ; batch_step)` into `g`; returns `L_train`.
    private func trainingGradient(w: UnsafePointer<Double>, step: Int, into g: UnsafeMutablePointer<Double>) -> Double {
        trainRows(step: step)
        let pred = rows.withUnsafeBufferPointer {
            mlp.loss(w: w, data: train, rows: $0, loss: config.loss, grad: g)
        }
        let reg = regularizer.addGradient(w: w, lambda: lambda.constPointer, gradW: g, gradLambda: nil,
                                          scratch: regScratch.pointer)
        return pred + reg
    }

    /// One step of SGD with momentum on `w`, `v`.
    private func innerStep(_ step: Int) {
        _ = trainingGradient(w: w.constPointer, step: step, into: grad.pointer)
        let d = parameterCount, eta = config.innerLearningRate, mu = config.momentum
        let wp = w.pointer, vp = v.pointer, gp = grad.constPointer
        for i in 0..<d {
            let vi = mu * vp[i] - eta * gp[i]
            vp[i] = vi
            wp[i] += vi
        }
    }

    /// `hv ← ∇²L_train(w)·u` on the step's minibatch; `mixed ← ∂/∂λ (∇_w L_reg·u)`.
    private func curvatureProduct(w: UnsafePointer<Double>, u: UnsafePointer<Double>, step: Int) {
        trainRows(step: step)
        rows.withUnsafeBufferPointer {
            curvature.hessianVectorProduct(w: w, u: u, data: train, rows: $0, loss: config.loss, into: hv.pointer)
        }
        regularizer.addCurvature(w: w, u: u, lambda: lambda.constPointer, hessianVector: hv.pointer,
                                 mixed: mixed.pointer, scratch: regScratch.pointer)
    }

    /// `L_valid(w)` on the fixed validation batch or the whole split (in chunks, weighted by
    /// their sizes); writes its gradient into `g` when given.
    private func validLoss(w: UnsafePointer<Double>, grad g: UnsafeMutablePointer<Double>?) -> Double {
        if let validRows {
            return validRows.withUnsafeBufferPointer { mlp.loss(w: w, data: valid, rows: $0, loss: config.loss, grad: g) }
        }
        let d = parameterCount, n = valid.count, chunk = mlp.maxBatch
        g?.update(repeating: 0, count: d)
        var total = 0.0
        var start = 0
        while start < n {
            let m = min(chunk, n - start)
            chunkRows.removeAll(keepingCapacity: true)
            for i in 0..<m { chunkRows.append(Int32(start + i)) }
            let weight = Double(m) / Double(n)
            let part = chunkRows.withUnsafeBufferPointer {
                mlp.loss(w: w, data: valid, rows: $0, loss: config.loss, grad: g == nil ? nil : hv.pointer)
            }
            total += weight * part
            if let g { Vec.axpy(d, weight, hv.constPointer, g) }
            start += m
        }
        return total
    }
}
