import Linalg

/// The input layer computed from the nonzeros of each row:
/// forward `Z[n,:] = b + Σ_p x_p·W[col_p,:]` and backward `∂W[col_p,:] += x_p·∂Z[n,:]`.
///
/// `Float` runs an AVX2 kernel that keeps output rows in SIMD registers (8 lanes); other
/// scalar types (Double, for gradient checks) run the plain loops. The two agree to float
/// rounding (tested).
final class SparseInputLayer<T: BLASScalar> {
    private let padded: PaddedRows
    private let rowScratch: AlignedBuffer<Float>
    /// Column-grouped kernels' workspace (`Float` layers 97…104 wide).
    private let groups: ColumnGroups?
    /// Whether the column-grouped kernels (97…104 wide) and the 9…16-wide kernels run their
    /// AVX-512 version (C, the same bits); tests turn it off to compare with the AVX2 Swift loops.
    var usesAVX512 = AVX512Kernels.isAvailable

    init(inputs: Int, width: Int) {
        padded = PaddedRows(rows: T.self == Float.self ? inputs : 0, width: width)
        rowScratch = AlignedBuffer(count: padded.stride)
        groups = T.self == Float.self && padded.stride == 104 ? ColumnGroups(inputs: inputs) : nil
    }

    /// Forward pass into `out` (`rows.count × width`).
    func forward(
        data: Examples<T>, rows: UnsafeBufferPointer<Int32>,
        weights: UnsafePointer<T>, bias: UnsafePointer<T>, width: Int, out: UnsafeMutablePointer<T>
    ) {
        data.rowStart.withUnsafeBufferPointer { starts in
            data.colIndex.withUnsafeBufferPointer { cols in
                data.values.withUnsafeBufferPointer { vals in
                    if T.self == Float.self, let vb = vals.baseAddress {
                        if let groups, data.columnsAscend {
                            Self.forwardGrouped(starts: starts.baseAddress!, cols: cols.baseAddress!,
                                                vals: UnsafeRawPointer(vb).assumingMemoryBound(to: Float.self),
                                                rows: rows, weights: UnsafeRawPointer(weights).assumingMemoryBound(to: Float.self),
                                                bias: UnsafeRawPointer(bias).assumingMemoryBound(to: Float.self), width: width,
                                                out: UnsafeMutableRawPointer(out).assumingMemoryBound(to: Float.self),
                                                groups: groups, avx512: usesAVX512)
                            return
                        }
                        padded.load(UnsafeRawPointer(weights).assumingMemoryBound(to: Float.self))
                        if padded.stride == 16 && usesAVX512 {
                            AVX512Kernels.sparse16Forward(starts: starts.baseAddress!, cols: cols.baseAddress!,
                                                          vals: UnsafeRawPointer(vb).assumingMemoryBound(to: Float.self),
                                                          rows: rows, weights: padded.buffer.constPointer,
                                                          bias: UnsafeRawPointer(bias).assumingMemoryBound(to: Float.self),
                                                          width: width, out: UnsafeMutableRawPointer(out).assumingMemoryBound(to: Float.self))
                            return
                        }
                        Self.forwardFloat(starts: starts.baseAddress!, cols: cols.baseAddress!,
                                          vals: UnsafeRawPointer(vb).assumingMemoryBound(to: Float.self),
                                          rows: rows, weights: padded.buffer.constPointer, stride: padded.stride,
                                          bias: UnsafeRawPointer(bias).assumingMemoryBound(to: Float.self), width: width,
                                          out: UnsafeMutableRawPointer(out).assumingMemoryBound(to: Float.self),
                                          rowScratch: rowScratch.pointer)
                        return
                    }
                    for n in 0..<rows.count {
                        let r = Int(rows[n])
                        let o = out + n * width
                        o.update(from: bias, count: width)
                        for p in Int(starts[r])..<Int(starts[r + 1]) {
                            Vec.axpy(width, vals[p], weights + Int(cols[p]) * width, o)
                        }
                    }
                }
            }
        }
    }

    /// Backward pass: writes `∂W` (`inputs × width`, overwritten) from `dOut`.
    func backward(
        data: Examples<T>, rows: UnsafeBufferPointer<Int32>,
        dOut: UnsafePointer<T>, width: Int, gradWeights: UnsafeMutablePointer<T>
    ) {
        data.rowStart.withUnsafeBufferPointer { starts in
            data.colIndex.withUnsafeBufferPointer { cols in
                data.values.withUnsafeBufferPointer { vals in
                    if T.self == Float.self, let vb = vals.baseAddress {
                        if let groups, data.columnsAscend {
                            let g = UnsafeMutableRawPointer(gradWeights).assumingMemoryBound(to: Float.self)
                            g.update(repeating: 0, count: data.inputSize * width)
                            Self.backwardGrouped(starts: starts.baseAddress!, cols: cols.baseAddress!,
                                                 vals: UnsafeRawPointer(vb).assumingMemoryBound(to: Float.self),
                                                 rows: rows, dOut: UnsafeRawPointer(dOut).assumingMemoryBound(to: Float.self),
                                                 width: width, grad: g, groups: groups, avx512: usesAVX512)
                            return
                        }
                        padded.buffer.zero()
                        if padded.stride == 16 && usesAVX512 {
                            AVX512Kernels.sparse16Backward(starts: starts.baseAddress!, cols: cols.baseAddress!,
                                                           vals: UnsafeRawPointer(vb).assumingMemoryBound(to: Float.self),
                                                           rows: rows, dOut: UnsafeRawPointer(dOut).assumingMemoryBound(to: Float.self),
                                                           width: width, grad: padded.buffer.pointer)
                        } else {
                            Self.backwardFloat(starts: starts.baseAddress!, cols: cols.baseAddress!,
                                               vals: UnsafeRawPointer(vb).assumingMemoryBound(to: Float.self),
                                               rows: rows, dOut: UnsafeRawPointer(dOut).assumingMemoryBound(to: Float.self),
                                               width: width, grad: padded.buffer.pointer, stride: padded.stride,
                                               rowScratch: rowScratch.pointer)
                        }
                        padded.unload(into: UnsafeMutableRawPointer(gradWeights).assumingMemoryBound(to: Float.self))
                        return
                    }
                    gradWeights.update(repeating: 0, count: data.inputSize * width)
                    for n in 0..<rows.count {
                        let r = Int(rows[n])
                        let d = dOut + n * width
                        for p in Int(starts[r])..<Int(starts[r + 1]) {
                            Vec.axpy(width, vals[p], d, gradWeights + Int(cols[p]) * width)
                        }
                    }
                }
            }
        }
    }

}

/// Workspace for the `Float` kernels: the input weights (or their gradient) with rows padded
/// to a multiple of 8 columns, so every nonzero touches whole 8-lane blocks with no tails.
final class PaddedRows {
    let rows: Int
    let width: Int
    let stride: Int
    let buffer: AlignedBuffer<Float>

    init(rows: Int, width: Int) {
        self.rows = rows
        self.width = width
        stride = (width + 7) / 8 * 8
        buffer = AlignedBuffer(count: rows * stride)
    }

    /// Copies a `rows × width` matrix in (padding lanes stay zero).
    func load(_ m: UnsafePointer<Float>) {
        let b = buffer.pointer
        for r in 0..<rows { (b + r * stride).update(from: m + r * width, count: width) }
    }

    /// Copies the `rows × width` part out.
    func unload(into m: UnsafeMutablePointer<Float>) {
        let b = buffer.constPointer
        for r in 0..<rows { (m + r * width).update(from: b + r * stride, count: width) }
    }
}

extension SparseInputLayer {
    @inline(__always) private static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }
    @inline(__always) private static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    /// `out[n, 0..<width] = bias + Σ_p x_p·W[col_p, :]` with `W` padded to `stride` columns.
    /// Column blocks of 104 (thirteen registers: a whole 100-wide hidden layer in one pass over
    /// the row's nonzeros, with enough independent FMA chains to hide their latency), then
    /// blocks of 32 (four registers), then one block of 24, 16 or 8; the narrow blocks use two
    /// interleaved accumulator sets. Each block width has its own loop, so no branch sits in
    /// the inner loops. Every output lane is `Σ_p` in nonzero order with fused multiply-adds
    /// from zero, whichever block computes it, so the blocking does not change the bits.
    static func forwardFloat(
        starts: UnsafePointer<Int32>, cols: UnsafePointer<Int32>, vals: UnsafePointer<Float>,
        rows: UnsafeBufferPointer<Int32>, weights: UnsafePointer<Float>, stride: Int, bias: UnsafePointer<Float>,
        width: Int, out: UnsafeMutablePointer<Float>, rowScratch: UnsafeMutablePointer<Float>
    ) {
        for n in 0..<rows.count {
            let r = Int(rows[n])
            let p0 = Int(starts[r]), p1 = Int(starts[r + 1])
            var c = 0
            while c + 104 <= stride {
                block104(p0, p1, cols, vals, weights + c, stride, rowScratch + c)
                c += 104
            }
            while c + 32 <= stride {
                block32(p0, p1, cols, vals, weights + c, stride, rowScratch + c)
                c += 32
            }
            switch stride - c {
            case 24: block24(p0, p1, cols, vals, weights + c, stride, rowScratch + c)
            case 16: block16(p0, p1, cols, vals, weights + c, stride, rowScratch + c)
            case 8: block8(p0, p1, cols, vals, weights + c, stride, rowScratch + c)
            default: break
            }
            let o = out + n &* width
            for j in 0..<width { o[j] = bias[j] + rowScratch[j] }
        }
    }

    @inline(__always)
    private static func block104(_ p0: Int, _ p1: Int, _ cols: UnsafePointer<Int32>, _ vals: UnsafePointer<Float>,
                                 _ w: UnsafePointer<Float>, _ stride: Int, _ o: UnsafeMutablePointer<Float>) {
        var a0 = SIMD8<Float>.zero, a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0
        var a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0, a12 = a0
        for p in p0..<p1 {
            let v = SIMD8<Float>(repeating: vals[p])
            let wr = w + Int(cols[p]) &* stride
            a0.addProduct(v, load(wr)); a1.addProduct(v, load(wr + 8))
            a2.addProduct(v, load(wr + 16)); a3.addProduct(v, load(wr + 24))
            a4.addProduct(v, load(wr + 32)); a5.addProduct(v, load(wr + 40))
            a6.addProduct(v, load(wr + 48)); a7.addProduct(v, load(wr + 56))
            a8.addProduct(v, load(wr + 64)); a9.addProduct(v, load(wr + 72))
            a10.addProduct(v, load(wr + 80)); a11.addProduct(v, load(wr + 88))
            a12.addProduct(v, load(wr + 96))
        }
        store(a0, o); store(a1, o + 8); store(a2, o + 16); store(a3, o + 24)
        store(a4, o + 32); store(a5, o + 40); store(a6, o + 48); store(a7, o + 56)
        store(a8, o + 64); store(a9, o + 72); store(a10, o + 80); store(a11, o + 88)
        store(a12, o + 96)
    }

    @inline(__always)
    private static func block32(_ p0: Int, _ p1: Int, _ cols: UnsafePointer<Int32>, _ vals: UnsafePointer<Float>,
                                _ w: UnsafePointer<Float>, _ stride: Int, _ o: UnsafeMutablePointer<Float>) {
        var a0 = SIMD8<Float>.zero, a1 = a0, a2 = a0, a3 = a0
        for p in p0..<p1 {
            let v = SIMD8<Float>(repeating: vals[p])
            let wr = w + Int(cols[p]) &* stride
            a0.addProduct(v, load(wr)); a1.addProduct(v, load(wr + 8))
            a2.addProduct(v, load(wr + 16)); a3.addProduct(v, load(wr + 24))
        }
        store(a0, o); store(a1, o + 8); store(a2, o + 16); store(a3, o + 24)
    }

    @inline(__always)
    private static func block24(_ p0: Int, _ p1: Int, _ cols: UnsafePointer<Int32>, _ vals: UnsafePointer<Float>,
                                _ w: UnsafePointer<Float>, _ stride: Int, _ o: UnsafeMutablePointer<Float>) {
        var a0 = SIMD8<Float>.zero, a1 = a0, a2 = a0
        for p in p0..<p1 {
            let v = SIMD8<Float>(repeating: vals[p])
            let wr = w + Int(cols[p]) &* stride
            a0.addProduct(v, load(wr)); a1.addProduct(v, load(wr + 8)); a2.addProduct(v, load(wr + 16))
        }
        store(a0, o); store(a1, o + 8); store(a2, o + 16)
    }

    @inline(__always)
    private static func block16(_ p0: Int, _ p1: Int, _ cols: UnsafePointer<Int32>, _ vals: UnsafePointer<Float>,
                                _ w: UnsafePointer<Float>, _ stride: Int, _ o: UnsafeMutablePointer<Float>) {
        var a0 = SIMD8<Float>.zero, b0 = a0, a1 = a0, b1 = a0
        var p = p0
        while p + 1 < p1 {
            let v0 = SIMD8<Float>(repeating: vals[p]), v1 = SIMD8<Float>(repeating: vals[p + 1])
            let w0 = w + Int(cols[p]) &* stride, w1 = w + Int(cols[p + 1]) &* stride
            a0.addProduct(v0, load(w0)); b0.addProduct(v0, load(w0 + 8))
            a1.addProduct(v1, load(w1)); b1.addProduct(v1, load(w1 + 8))
            p += 2
        }
        if p < p1 {
            let v0 = SIMD8<Float>(repeating: vals[p])
            let w0 = w + Int(cols[p]) &* stride
            a0.addProduct(v0, load(w0)); b0.addProduct(v0, load(w0 + 8))
        }
        store(a0 + a1, o); store(b0 + b1, o + 8)
    }

    @inline(__always)
    private static func block8(_ p0: Int, _ p1: Int, _ cols: UnsafePointer<Int32>, _ vals: UnsafePointer<Float>,
                               _ w: UnsafePointer<Float>, _ stride: Int, _ o: UnsafeMutablePointer<Float>) {
        var a0 = SIMD8<Float>.zero, a1 = a0
        var p = p0
        while p + 1 < p1 {
            a0.addProduct(SIMD8<Float>(repeating: vals[p]), load(w + Int(cols[p]) &* stride))
            a1.addProduct(SIMD8<Float>(repeating: vals[p + 1]), load(w + Int(cols[p + 1]) &* stride))
            p += 2
        }
        if p < p1 { a0.addProduct(SIMD8<Float>(repeating: vals[p]), load(w + Int(cols[p]) &* stride)) }
        store(a0 + a1, o)
    }

    /// `G[col_p, :] += x_p·∂Z[n, :]` into the padded gradient `G` (zeroed by the caller).
    static func backwardFloat(
        starts: UnsafePointer<Int32>, cols: UnsafePointer<Int32>, vals: UnsafePointer<Float>,
        rows: UnsafeBufferPointer<Int32>, dOut: UnsafePointer<Float>, width: Int,
        grad: UnsafeMutablePointer<Float>, stride: Int, rowScratch: UnsafeMutablePointer<Float>
    ) {
        for j in width..<stride { rowScratch[j] = 0 }
        for n in 0..<rows.count {
            let r = Int(rows[n])
            let p0 = Int(starts[r]), p1 = Int(starts[r + 1])
            rowScratch.update(from: dOut + n &* width, count: width)
            if stride == 16 {
                // 784→10 (and 9…16 wide): the output row's gradient stays in two registers.
                let d0 = load(rowScratch), d1 = load(rowScratch + 8)
                for p in p0..<p1 {
                    let v = SIMD8<Float>(repeating: vals[p])
                    let g = grad + Int(cols[p]) &* stride
                    store(load(g).addingProduct(v, d0), g)
                    store(load(g + 8).addingProduct(v, d1), g + 8)
                }
                continue
            }
            var c = 0
            while c + 104 <= stride {
                // A 100-wide layer: the output row's gradient stays in thirteen registers.
                backBlock104(p0, p1, cols, vals, rowScratch + c, grad + c, stride)
                c += 104
            }
            if c == stride { continue }
            for p in p0..<p1 {
                let v = SIMD8<Float>(repeating: vals[p])
                let g = grad + Int(cols[p]) &* stride
                var cc = c
                while cc < stride {
                    store(load(g + cc).addingProduct(v, load(rowScratch + cc)), g + cc)
                    cc += 8
                }
            }
        }
    }

    /// `G[col_p, c..<c+104] += x_p·d` for the row's nonzeros, `d` (104 lanes) held in registers.
    @inline(__always)
    private static func backBlock104(_ p0: Int, _ p1: Int, _ cols: UnsafePointer<Int32>, _ vals: UnsafePointer<Float>,
                                     _ d: UnsafePointer<Float>, _ grad: UnsafeMutablePointer<Float>, _ stride: Int) {
        let d0 = load(d), d1 = load(d + 8), d2 = load(d + 16), d3 = load(d + 24), d4 = load(d + 32)
        let d5 = load(d + 40), d6 = load(d + 48), d7 = load(d + 56), d8 = load(d + 64), d9 = load(d + 72)
        let d10 = load(d + 80), d11 = load(d + 88), d12 = load(d + 96)
        for p in p0..<p1 {
            let v = SIMD8<Float>(repeating: vals[p])
            let g = grad + Int(cols[p]) &* stride
            store(load(g).addingProduct(v, d0), g); store(load(g + 8).addingProduct(v, d1), g + 8)
            store(load(g + 16).addingProduct(v, d2), g + 16); store(load(g + 24).addingProduct(v, d3), g + 24)
            store(load(g + 32).addingProduct(v, d4), g + 32); store(load(g + 40).addingProduct(v, d5), g + 40)
            store(load(g + 48).addingProduct(v, d6), g + 48); store(load(g + 56).addingProduct(v, d7), g + 56)
            store(load(g + 64).addingProduct(v, d8), g + 64); store(load(g + 72).addingProduct(v, d9), g + 72)
            store(load(g + 80).addingProduct(v, d10), g + 80); store(load(g + 88).addingProduct(v, d11), g + 88)
            store(load(g + 96).addingProduct(v, d12), g + 96)
        }
    }
}
