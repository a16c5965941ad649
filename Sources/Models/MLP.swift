import Linalg

/// The elementary model `f(x; w)`: an MLP with ReLU hidden units and identity output,
/// evaluated on a minibatch of sparse rows with its loss and hand-derived gradient.
///
/// The input layer is computed from the nonzeros of each row (`Z₁[n] = b₀ + Σⱼ xₙⱼ·W₀[j,:]`,
/// and `∂W₀[j,:] += xₙⱼ·∂Z₁[n,:]`); deeper layers are dense products (`FloatGemm` for
/// `Float`, BLAS for the `Double` reference). All buffers are sized
/// once for `maxBatch` rows and reused, so a step allocates nothing.
public final class MLP<T: BLASScalar> {
    /// Layer sizes and parameter offsets.
    public let shape: MLPShape
    /// Largest batch the workspace holds.
    public let maxBatch: Int

    /// Pre-activations `Z_l` for l = 1…L (`maxBatch × sizes[l]`).
    private let z: [AlignedBuffer<T>]
    /// Post-activations `A_l = relu(Z_l)` for hidden layers (index l−1), used by the next layer.
    private let a: [AlignedBuffer<T>]
    /// Gradient scratch `∂Z_l` per layer.
    private let dz: [AlignedBuffer<T>]
    /// The sparse input layer's kernels and workspace.
    private let inputLayer: SparseInputLayer<T>
    /// `Float` dense layers run `FloatGemm` (host-independent bits, no BLAS kernel detection):
    /// its panel workspace and a transposed copy of one weight matrix.
    private let gemmWork: AlignedBuffer<Float>
    private let weightT: AlignedBuffer<Float>

    /// - Parameters:
    ///   - shape: the layer sizes.
    ///   - maxBatch: the largest minibatch this instance will see.
    public init(shape: MLPShape, maxBatch: Int) {
        precondition(maxBatch > 0, "MLP: maxBatch must be positive")
        self.shape = shape
        self.maxBatch = maxBatch
        z = (1...shape.layerCount).map { AlignedBuffer(count: maxBatch * shape.sizes[$0]) }
        a = (1...shape.layerCount).map { l in AlignedBuffer(count: l < shape.layerCount ? maxBatch * shape.sizes[l] : 0) }
        dz = (1...shape.layerCount).map { AlignedBuffer(count: maxBatch * shape.sizes[$0]) }
        inputLayer = SparseInputLayer(inputs: shape.sizes[0], width: shape.sizes[1])
        let float = T.self == Float.self && shape.layerCount > 1
        let widest = shape.sizes.dropFirst().max() ?? 1
        gemmWork = AlignedBuffer(count: float ? FloatGemm.workspaceCount(k: max(maxBatch, widest)) : 0)
        weightT = AlignedBuffer(count: float ? (1..<shape.layerCount).map { shape.sizes[$0] * shape.sizes[$0 + 1] }.max()! : 0)
    }

    @inline(__always) private static func f(_ p: UnsafePointer<T>) -> UnsafePointer<Float> {
        UnsafeRawPointer(p).assumingMemoryBound(to: Float.self)
    }
    @inline(__always) private static func f(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<Float> {
        UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self)
    }

    /// Mean prediction loss on `rows` of `data` (MSE, or the Gaussian variant) and, if `grad`
    /// is given, writes `∂L_pred/∂w` into it (overwriting).
    ///
    /// - Parameters:
    ///   - w: the flat parameters, `shape.parameterCount` values.
    ///   - data: the examples.
    ///   - rows: indices into `data`, at most `maxBatch`.
    ///   - loss: which prediction loss.
    ///   - grad: where to write the gradient, or `nil` for loss only.
    /// - Returns: the loss value.
    @discardableResult
    public func loss(
        w: UnsafePointer<T>, data: Examples<T>, rows: UnsafeBufferPointer<Int32>,
        loss kind: PredictionLoss, grad: UnsafeMutablePointer<T>?
    ) -> Double {
        let batch = rows.count
        precondition(batch > 0 && batch <= maxBatch, "MLP.loss: batch \(batch) not in 1...\(maxBatch)")
        precondition(data.inputSize == shape.inputSize, "MLP.loss: data has \(data.inputSize) inputs, model \(shape.inputSize)")
        let sizes = shape.sizes
        let layers = shape.layerCount

        forward(w: w, data: data, rows: rows)

        // Output loss and ∂L/∂Y.
        let outSize = sizes[layers]
        let y = z[layers - 1].pointer
        let dy = dz[layers - 1].pointer
        let scale = T(kind.scale)
        let gradScale = 2 * scale / T(batch * outSize)
        var sumSq = 0.0
        data.labels.withUnsafeBufferPointer { labels in
            for n in 0..<batch {
                let label = Int(labels[Int(rows[n])])
                let yn = y + n * outSize
                let dn = dy + n * outSize
                for o in 0..<outSize {
                    let d = yn[o] - (o == label ? 1 : 0)
                    sumSq += Double(d * d)
                    dn[o] = gradScale * d
                }
            }
        }
        let value = kind.fromMSE(sumSq / Double(batch * outSize))
        guard let grad else { return value }

        // Backward through dense layers l = L−1 … 1.
        var l = layers - 1
        while l >= 1 {
            let nIn = sizes[l], nOut = sizes[l + 1]
            let dOut = dz[l].pointer
            let aIn = a[l - 1].constPointer
            let dIn = dz[l - 1].pointer
            if T.self == Float.self {
                // ∂W_l = A_lᵀ · ∂Z_{l+1}
                FloatGemm.multiply(transA: true, m: nIn, n: nOut, k: batch, a: Self.f(aIn), lda: nIn,
                                   b: Self.f(UnsafePointer(dOut)), ldb: nOut, c: Self.f(grad + shape.weightOffset[l]), ldc: nOut,
                                   accumulate: false, workspace: gemmWork.pointer)
                columnSums(dOut, rows: batch, cols: nOut, into: grad + shape.biasOffset[l])
                // ∂A_l = ∂Z_{l+1} · W_lᵀ, then the ReLU mask.
                FloatGemm.transpose(rows: nIn, cols: nOut, Self.f(w + shape.weightOffset[l]), into: weightT.pointer)
                FloatGemm.multiply(transA: false, m: batch, n: nIn, k: nOut, a: Self.f(UnsafePointer(dOut)), lda: nOut,
                                   b: weightT.constPointer, ldb: nIn, c: Self.f(dIn), ldc: nIn,
                                   accumulate: false, workspace: gemmWork.pointer)
            } else {
                // ∂W_l = A_lᵀ · ∂Z_{l+1}
                T.gemm(transA: true, transB: false, m: nIn, n: nOut, k: batch,
                       alpha: 1, a: aIn, lda: nIn, b: dOut, ldb: nOut,
                       beta: 0, c: grad + shape.weightOffset[l], ldc: nOut)
                columnSums(dOut, rows: batch, cols: nOut, into: grad + shape.biasOffset[l])
                // ∂A_l = ∂Z_{l+1} · W_lᵀ, then the ReLU mask.
                T.gemm(transA: false, transB: true, m: batch, n: nIn, k: nOut,
                       alpha: 1, a: dOut, lda: nOut, b: w + shape.weightOffset[l], ldb: nOut,
                       beta: 0, c: dIn, ldc: nIn)
            }
            let zIn = z[l - 1].constPointer
            for i in 0..<(batch * nIn) where zIn[i] <= 0 { dIn[i] = 0 }
            l -= 1
        }

        // Input layer from the nonzeros: ∂W₀[j,:] = Σₙ xₙⱼ·∂Z₁[n,:].
        let nOut = sizes[1]
        inputLayer.backward(data: data, rows: rows, dOut: dz[0].constPointer, width: nOut,
                            gradWeights: grad + shape.weightOffset[0])
        columnSums(dz[0].constPointer, rows: batch, cols: nOut, into: grad + shape.biasOffset[0])
        return value
    }

    /// Prediction loss over a whole set, in chunks of `maxBatch` rows.
    public func loss(w: UnsafePointer<T>, data: Examples<T>, loss kind: PredictionLoss) -> Double {
        var total = 0.0
        var start = 0
        var rows = [Int32](repeating: 0, count: maxBatch)
        while start < data.count {
            let n = min(maxBatch, data.count - start)
            for i in 0..<n { rows[i] = Int32(start + i) }
            let mse = rows.withUnsafeBufferPointer { r in
                (self.loss(w: w, data: data, rows: UnsafeBufferPointer(rebasing: r[0..<n]), loss: .mse, grad: nil))
            }
            total += mse * Double(n)
            start += n
        }
        return kind.fromMSE(total / Double(max(data.count, 1)))
    }

    /// Class predictions' error rate over a whole set (for reports).
    public func errorRate(w: UnsafePointer<T>, data: Examples<T>) -> Double {
        var wrong = 0
        var start = 0
        var rows = [Int32](repeating: 0, count: maxBatch)
        let outSize = shape.outputSize
        while start < data.count {
            let n = min(maxBatch, data.count - start)
            for i in 0..<n { rows[i] = Int32(start + i) }
            rows.withUnsafeBufferPointer { r in forward(w: w, data: data, rows: UnsafeBufferPointer(rebasing: r[0..<n])) }
            let y = z[shape.layerCount - 1].constPointer
            for i in 0..<n {
                var best = 0
                for o in 1..<outSize where y[i * outSize + o] > y[i * outSize + best] { best = o }
                if best != Int(data.labels[start + i]) { wrong += 1 }
            }
            start += n
        }
        return Double(wrong) / Double(max(data.count, 1))
    }

    /// Fills `z` (and `a` for hidden layers) for `rows`.
    private func forward(w: UnsafePointer<T>, data: Examples<T>, rows: UnsafeBufferPointer<Int32>) {
        let batch = rows.count
        let sizes = shape.sizes
        let layers = shape.layerCount

        // Input layer from the nonzeros.
        inputLayer.forward(data: data, rows: rows, weights: w + shape.weightOffset[0],
                           bias: w + shape.biasOffset[0], width: sizes[1], out: z[0].pointer)

        // Dense layers.
        for l in 1..<layers {
            let nIn = sizes[l], nOut = sizes[l + 1]
            let zin = z[l - 1].constPointer
            let ain = a[l - 1].pointer
            for i in 0..<(batch * nIn) { ain[i] = max(zin[i], 0) }
            let zout = z[l].pointer
            let b = w + shape.biasOffset[l]
            for n in 0..<batch { (zout + n * nOut).update(from: b, count: nOut) }
            if T.self == Float.self {
                FloatGemm.multiply(transA: false, m: batch, n: nOut, k: nIn, a: Self.f(UnsafePointer(ain)), lda: nIn,
                                   b: Self.f(w + shape.weightOffset[l]), ldb: nOut, c: Self.f(zout), ldc: nOut,
                                   accumulate: true, workspace: gemmWork.pointer)
            } else {
                T.gemm(transA: false, transB: false, m: batch, n: nOut, k: nIn,
                       alpha: 1, a: ain, lda: nIn, b: w + shape.weightOffset[l], ldb: nOut,
                       beta: 1, c: zout, ldc: nOut)
            }
        }
    }

    private func columnSums(_ m: UnsafePointer<T>, rows: Int, cols: Int, into out: UnsafeMutablePointer<T>) {
        out.update(repeating: 0, count: cols)
        for r in 0..<rows { Vec.axpy(cols, 1, m + r * cols, out) }
    }
}
