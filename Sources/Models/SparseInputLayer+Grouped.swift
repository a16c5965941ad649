import Linalg

/// Workspace of the column-grouped kernels: which rows of a group of up to 32 minibatch rows
/// have each input column (a bit mask per column) and their values (column-major), so that
/// each input column's weight row (forward) or gradient row (backward) is touched once per
/// group instead of once per nonzero, and the rows come in batch order (ascending bits).
final class ColumnGroups {
    /// Minibatch rows per group (bits of a mask).
    static let rows = 32
    let inputs: Int
    /// Per column: bit `q` is set when row `q` of the group has a nonzero there.
    let mask: UnsafeMutablePointer<UInt32>
    /// `value[q·inputs + j]`: row `q`'s value in column `j` (meaningful where the bit is set;
    /// row-major, so recording a row writes ascending addresses).
    let value: UnsafeMutablePointer<Float>
    /// The group's output rows (forward) or output gradients (backward), 104 lanes each
    /// (112 apart on the AVX-512 path: zmm rows on cache-line boundaries).
    let block: AlignedBuffer<Float>

    init(inputs: Int) {
        self.inputs = inputs
        mask = .allocate(capacity: max(inputs, 1))
        value = .allocate(capacity: Self.rows * max(inputs, 1))
        value.initialize(repeating: 0, count: Self.rows * max(inputs, 1))
        block = AlignedBuffer(count: Self.rows * 112)
    }

    deinit {
        mask.deallocate()
        value.deallocate()
    }

    /// Records the nonzeros of `rows[n0 ..< n0 + count]` (`count` ≤ 32) by column (the rows
    /// after them prefetched as it goes).
    @inline(__always)
    func gather(starts: UnsafePointer<Int32>, cols: UnsafePointer<Int32>, vals: UnsafePointer<Float>,
                rows: UnsafeBufferPointer<Int32>, from n0: Int, count: Int) {
        SparseGather.byColumn(inputs: inputs, starts: starts, cols: cols, vals: vals, rows: rows.baseAddress! + n0,
                              count: count, available: rows.count - n0, mask: mask, value: value)
    }
}

extension SparseInputLayer {
    @inline(__always) private static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }
    @inline(__always) private static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }
    /// The last block of a row of `count` (1…8) lanes: a whole 8-lane load (the lanes past the
    /// row belong to the next row and are never stored or output), lane by lane for the
    /// matrix's last row so nothing past its end is read.
    @inline(__always) private static func tail(_ p: UnsafePointer<Float>, _ count: Int, last: Bool) -> SIMD8<Float> {
        if !last { return load(p) }
        var v = SIMD8<Float>.zero
        for c in 0..<count { v[c] = p[c] }
        return v
    }

    /// Forward for a 97…104-wide layer on unpadded weights, by groups of rows sorted by column: each
    /// column's weight row is held in thirteen registers while `x·W[col, :]` is added into
    /// the group's output rows (in L1). Each output lane receives the same fused
    /// multiply-adds from zero as in `forwardFloat` — in column order, which is the nonzero
    /// order when every row's columns ascend (callers check `Examples.columnsAscend`).
    static func forwardGrouped(
        starts: UnsafePointer<Int32>, cols: UnsafePointer<Int32>, vals: UnsafePointer<Float>,
        rows: UnsafeBufferPointer<Int32>, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>,
        width: Int, out: UnsafeMutablePointer<Float>, groups g: ColumnGroups, avx512: Bool
    ) {
        let stride = avx512 ? 112 : 104, last = g.inputs - 1
        var n0 = 0
        while n0 < rows.count {
            let count = min(ColumnGroups.rows, rows.count - n0)
            defer { n0 += count }
            g.gather(starts: starts, cols: cols, vals: vals, rows: rows, from: n0, count: count)
            let z = g.block.pointer
            z.update(repeating: 0, count: count * stride)
            if avx512 {
                AVX512Kernels.groupedForward(inputs: g.inputs, mask: g.mask, value: g.value, weights: weights,
                                             width: width, z: z, stride: stride)
            } else {
                for j in 0..<g.inputs {
                    var bits = g.mask[j]
                    if bits == 0 { continue }
                    let values = g.value + j
                    let w = weights + j &* width
                    let w0 = load(w), w1 = load(w + 8), w2 = load(w + 16), w3 = load(w + 24), w4 = load(w + 32)
                    let w5 = load(w + 40), w6 = load(w + 48), w7 = load(w + 56), w8 = load(w + 64), w9 = load(w + 72)
                    let w10 = load(w + 80), w11 = load(w + 88), w12 = tail(w + 96, width - 96, last: j == last)
                    while bits != 0 {
                        let q = bits.trailingZeroBitCount
                        bits &= bits &- 1
                        let v = SIMD8<Float>(repeating: values[q &* g.inputs])
                        let o = z + q &* stride
                        store(load(o).addingProduct(v, w0), o); store(load(o + 8).addingProduct(v, w1), o + 8)
                        store(load(o + 16).addingProduct(v, w2), o + 16); store(load(o + 24).addingProduct(v, w3), o + 24)
                        store(load(o + 32).addingProduct(v, w4), o + 32); store(load(o + 40).addingProduct(v, w5), o + 40)
                        store(load(o + 48).addingProduct(v, w6), o + 48); store(load(o + 56).addingProduct(v, w7), o + 56)
                        store(load(o + 64).addingProduct(v, w8), o + 64); store(load(o + 72).addingProduct(v, w9), o + 72)
                        store(load(o + 80).addingProduct(v, w10), o + 80); store(load(o + 88).addingProduct(v, w11), o + 88)
                        store(load(o + 96).addingProduct(v, w12), o + 96)
                    }
                }
            }
            for q in 0..<count {
                let o = out + (n0 + q) &* width, zq = z + q &* stride
                for c in 0..<width { o[c] = bias[c] + zq[c] }
            }
        }
    }

    /// Backward for a 97…104-wide layer straight into the unpadded gradient (zeroed by the
    /// caller), by groups of rows sorted by column: each touched gradient row is loaded into thirteen registers once per group, receives the group's
    /// `x·∂Z[n, :]` in row order (the rows' `∂Z` padded in L1), and is stored once. The same
    /// fused multiply-adds in the same (batch) order as `backwardFloat` (ascending columns).
    static func backwardGrouped(
        starts: UnsafePointer<Int32>, cols: UnsafePointer<Int32>, vals: UnsafePointer<Float>,
        rows: UnsafeBufferPointer<Int32>, dOut: UnsafePointer<Float>, width: Int,
        grad: UnsafeMutablePointer<Float>, groups g: ColumnGroups, avx512: Bool
    ) {
        let stride = avx512 ? 112 : 104, last = g.inputs - 1
        var n0 = 0
        while n0 < rows.count {
            let count = min(ColumnGroups.rows, rows.count - n0)
            defer { n0 += count }
            g.gather(starts: starts, cols: cols, vals: vals, rows: rows, from: n0, count: count)
            let d = g.block.pointer
            for q in 0..<count {
                let dq = d + q &* stride
                dq.update(from: dOut + (n0 + q) &* width, count: width)
                for c in width..<stride { dq[c] = 0 }
            }
            if avx512 {
                AVX512Kernels.groupedBackward(inputs: g.inputs, mask: g.mask, value: g.value, d: UnsafePointer(d),
                                              stride: stride, width: width, grad: grad)
                continue
            }
            for j in 0..<g.inputs {
                var bits = g.mask[j]
                if bits == 0 { continue }
                let values = g.value + j
                let gr = grad + j &* width
                var a0 = load(gr), a1 = load(gr + 8), a2 = load(gr + 16), a3 = load(gr + 24), a4 = load(gr + 32)
                var a5 = load(gr + 40), a6 = load(gr + 48), a7 = load(gr + 56), a8 = load(gr + 64), a9 = load(gr + 72)
                var a10 = load(gr + 80), a11 = load(gr + 88), a12 = tail(gr + 96, width - 96, last: j == last)
                while bits != 0 {
                    let q = bits.trailingZeroBitCount
                    bits &= bits &- 1
                    let v = SIMD8<Float>(repeating: values[q &* g.inputs])
                    let dr = d + q &* stride
                    a0.addProduct(v, load(dr)); a1.addProduct(v, load(dr + 8))
                    a2.addProduct(v, load(dr + 16)); a3.addProduct(v, load(dr + 24))
                    a4.addProduct(v, load(dr + 32)); a5.addProduct(v, load(dr + 40))
                    a6.addProduct(v, load(dr + 48)); a7.addProduct(v, load(dr + 56))
                    a8.addProduct(v, load(dr + 64)); a9.addProduct(v, load(dr + 72))
                    a10.addProduct(v, load(dr + 80)); a11.addProduct(v, load(dr + 88))
                    a12.addProduct(v, load(dr + 96))
                }
                store(a0, gr); store(a1, gr + 8); store(a2, gr + 16); store(a3, gr + 24); store(a4, gr + 32)
                store(a5, gr + 40); store(a6, gr + 48); store(a7, gr + 56); store(a8, gr + 64); store(a9, gr + 72)
                store(a10, gr + 80); store(a11, gr + 88)
                for c in 0..<(width - 96) { gr[96 + c] = a12[c] }
            }
        }
    }
}
