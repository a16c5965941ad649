import Linalg

/// Exact Hessian-vector products `∇²_w L_pred(w)·u` of the MLP's prediction loss by
/// Pearlmutter's R-operator `R{·} = d/dr (·)(w + r·u)|_{r=0}`, derived by hand:
///
///     forward   R{Z₁} = X·U₀ + c₀,  R{A_l} = R{Z_l} ⊙ [Z_l > 0],  R{Z_{l+1}} = R{A_l}·W_l + A_l·U_l + c_l
///     output    ∂Y = s·(Y − T),  R{∂Y} = s·R{Y},  s = 2·scale / (B·C)
///     backward  R{∂W_l} = R{A_l}ᵀ·∂Z_{l+1} + A_lᵀ·R{∂Z_{l+1}},  R{∂b_l} = Σ_n R{∂Z_{l+1}}
///               R{∂A_l} = R{∂Z_{l+1}}·W_lᵀ + ∂Z_{l+1}·U_lᵀ,   R{∂Z_l} = R{∂A_l} ⊙ [Z_l > 0]
///     input     R{∂W₀} = Xᵀ·R{∂Z₁},  R{∂b₀} = Σ_n R{∂Z₁}
///
/// (`u = (U_l, c_l)` split like `w = (W_l, b_l)`.) The ReLU's second derivative is zero away
/// from its kink, so this is the exact Hessian wherever it exists. For the linear model it is
/// `s·Xᵀ(X·U₀ + c₀)` and never touches `w`. Double only; buffers sized once.
public final class PredictionCurvature {
    /// The model whose prediction loss is differentiated.
    public let shape: MLPShape
    /// The largest batch the buffers hold.
    public let maxBatch: Int
    /// Per layer l = 1…L (index l−1): `Z_l`, `R{Z_l}`, `∂Z_l`, `R{∂Z_l}`.
    private let z, rz, dz, rdz: [AlignedBuffer<Double>]
    /// Per hidden layer: `A_l`, `R{A_l}`.
    private let a, ra: [AlignedBuffer<Double>]

    /// Buffers for batches of up to `maxBatch` examples of `shape`.
    public init(shape: MLPShape, maxBatch: Int) {
        precondition(maxBatch > 0, "PredictionCurvature: maxBatch must be positive")
        self.shape = shape
        self.maxBatch = maxBatch
        let layers = 1...shape.layerCount
        let full = { (l: Int) in AlignedBuffer<Double>(count: maxBatch * shape.sizes[l]) }
        let hidden = { (l: Int) in AlignedBuffer<Double>(count: l < shape.layerCount ? maxBatch * shape.sizes[l] : 0) }
        z = layers.map(full); rz = layers.map(full); dz = layers.map(full); rdz = layers.map(full)
        a = layers.map(hidden); ra = layers.map(hidden)
    }

    /// Writes `∇²_w L_pred(w; rows)·u` into `hv` (overwriting).
    public func hessianVectorProduct(
        w: UnsafePointer<Double>, u: UnsafePointer<Double>, data: Examples<Double>,
        rows: UnsafeBufferPointer<Int32>, loss kind: PredictionLoss, into hv: UnsafeMutablePointer<Double>
    ) {
        let batch = rows.count
        precondition(batch > 0 && batch <= maxBatch, "PredictionCurvature: batch \(batch) not in 1...\(maxBatch)")
        precondition(data.inputSize == shape.inputSize, "PredictionCurvature: data has \(data.inputSize) inputs, model \(shape.inputSize)")
        let sizes = shape.sizes, layers = shape.layerCount
        let wo = shape.weightOffset, bo = shape.biasOffset

        // Input layer from the nonzeros: Z₁ = b₀ + X·W₀, R{Z₁} = c₀ + X·U₀. The linear model's
        // Hessian does not depend on w, so it skips the primal pass (Z, ∂Z) altogether.
        let width = sizes[1]
        let primal = layers > 1
        data.rowStart.withUnsafeBufferPointer { starts in
            data.colIndex.withUnsafeBufferPointer { cols in
                data.values.withUnsafeBufferPointer { vals in
                    for n in 0..<batch {
                        let r = Int(rows[n])
                        let zn = z[0].pointer + n * width, rzn = rz[0].pointer + n * width
                        rzn.update(from: u + bo[0], count: width)
                        for p in Int(starts[r])..<Int(starts[r + 1]) {
                            Vec.axpy(width, vals[p], u + wo[0] + Int(cols[p]) * width, rzn)
                        }
                        guard primal else { continue }
                        zn.update(from: w + bo[0], count: width)
                        for p in Int(starts[r])..<Int(starts[r + 1]) {
                            Vec.axpy(width, vals[p], w + wo[0] + Int(cols[p]) * width, zn)
                        }
                    }
                }
            }
        }

        // Dense layers.
        for l in 1..<layers {
            let nIn = sizes[l], nOut = sizes[l + 1]
            let zl = z[l - 1].constPointer, rzl = rz[l - 1].constPointer
            let al = a[l - 1].pointer, ral = ra[l - 1].pointer
            for i in 0..<(batch * nIn) {
                let on = zl[i] > 0
                al[i] = on ? zl[i] : 0
                ral[i] = on ? rzl[i] : 0
            }
            let zo = z[l].pointer, rzo = rz[l].pointer
            for n in 0..<batch {
                (zo + n * nOut).update(from: w + bo[l], count: nOut)
                (rzo + n * nOut).update(from: u + bo[l], count: nOut)
            }
            Double.gemm(transA: false, transB: false, m: batch, n: nOut, k: nIn, alpha: 1, a: al, lda: nIn,
                        b: w + wo[l], ldb: nOut, beta: 1, c: zo, ldc: nOut)
            Double.gemm(transA: false, transB: false, m: batch, n: nOut, k: nIn, alpha: 1, a: ral, lda: nIn,
                        b: w + wo[l], ldb: nOut, beta: 1, c: rzo, ldc: nOut)
            Double.gemm(transA: false, transB: false, m: batch, n: nOut, k: nIn, alpha: 1, a: al, lda: nIn,
                        b: u + wo[l], ldb: nOut, beta: 1, c: rzo, ldc: nOut)
        }

        // Output: ∂Y = s·(Y − T), R{∂Y} = s·R{Y}.
        let outSize = sizes[layers]
        let s = 2 * kind.scale / Double(batch * outSize)
        let y = z[layers - 1].constPointer, ry = rz[layers - 1].constPointer
        let dy = dz[layers - 1].pointer, rdy = rdz[layers - 1].pointer
        data.labels.withUnsafeBufferPointer { labels in
            for n in 0..<batch {
                let label = Int(labels[Int(rows[n])])
                for o in 0..<outSize {
                    let i = n * outSize + o
                    if primal { dy[i] = s * (y[i] - (o == label ? 1 : 0)) }
                    rdy[i] = s * ry[i]
                }
            }
        }

        // Backward through dense layers l = L−1 … 1.
        var l = layers - 1
        while l >= 1 {
            let nIn = sizes[l], nOut = sizes[l + 1]
            let dOut = dz[l].constPointer, rdOut = rdz[l].constPointer
            let al = a[l - 1].constPointer, ral = ra[l - 1].constPointer
            // R{∂W_l} = R{A_l}ᵀ·∂Z_{l+1} + A_lᵀ·R{∂Z_{l+1}}
            Double.gemm(transA: true, transB: false, m: nIn, n: nOut, k: batch, alpha: 1, a: ral, lda: nIn,
                        b: dOut, ldb: nOut, beta: 0, c: hv + wo[l], ldc: nOut)
            Double.gemm(transA: true, transB: false, m: nIn, n: nOut, k: batch, alpha: 1, a: al, lda: nIn,
                        b: rdOut, ldb: nOut, beta: 1, c: hv + wo[l], ldc: nOut)
            columnSums(rdOut, rows: batch, cols: nOut, into: hv + bo[l])
            // ∂Z_l = (∂Z_{l+1}·W_lᵀ) ⊙ mask;  R{∂Z_l} = (R{∂Z_{l+1}}·W_lᵀ + ∂Z_{l+1}·U_lᵀ) ⊙ mask
            let dIn = dz[l - 1].pointer, rdIn = rdz[l - 1].pointer
            Double.gemm(transA: false, transB: true, m: batch, n: nIn, k: nOut, alpha: 1, a: dOut, lda: nOut,
                        b: w + wo[l], ldb: nOut, beta: 0, c: dIn, ldc: nIn)
            Double.gemm(transA: false, transB: true, m: batch, n: nIn, k: nOut, alpha: 1, a: rdOut, lda: nOut,
                        b: w + wo[l], ldb: nOut, beta: 0, c: rdIn, ldc: nIn)
            Double.gemm(transA: false, transB: true, m: batch, n: nIn, k: nOut, alpha: 1, a: dOut, lda: nOut,
                        b: u + wo[l], ldb: nOut, beta: 1, c: rdIn, ldc: nIn)
            let zIn = z[l - 1].constPointer
            for i in 0..<(batch * nIn) where zIn[i] <= 0 {
                dIn[i] = 0
                rdIn[i] = 0
            }
            l -= 1
        }

        // Input layer: R{∂W₀}[j,:] = Σ_n x_nj·R{∂Z₁}[n,:].
        let rd1 = rdz[0].constPointer
        hv.update(repeating: 0, count: shape.inputSize * width)
        data.rowStart.withUnsafeBufferPointer { starts in
            data.colIndex.withUnsafeBufferPointer { cols in
                data.values.withUnsafeBufferPointer { vals in
                    for n in 0..<batch {
                        let r = Int(rows[n])
                        for p in Int(starts[r])..<Int(starts[r + 1]) {
                            Vec.axpy(width, vals[p], rd1 + n * width, hv + wo[0] + Int(cols[p]) * width)
                        }
                    }
                }
            }
        }
        columnSums(rd1, rows: batch, cols: width, into: hv + bo[0])
    }

    private func columnSums(_ m: UnsafePointer<Double>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Double>) {
        out.update(repeating: 0, count: cols)
        for r in 0..<rows { Vec.axpy(cols, 1, m + r * cols, out) }
    }
}
