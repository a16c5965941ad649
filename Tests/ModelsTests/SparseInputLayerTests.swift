import Testing
import Linalg
@testable import Models

/// The sparse input layer's `Float` kernels against plain reference loops that apply the
/// same fused multiply-adds in the same order (nonzero order forward, batch order backward):
/// the blocking and the column-grouped backward pass must not change a single bit.
@Suite struct SparseInputLayerTests {
    private static func batch(inputs: Int, rows: Int, seed: UInt64) -> (Examples<Float>, [Int32]) {
        var rng = Philox(seed: seed, step: 0, task: 0, stream: 0)
        let dense: [[Float]] = (0..<rows).map { _ in
            (0..<inputs).map { _ in rng.nextUnit() < 0.8 ? 0 : Float(rng.nextUnit()) }
        }
        let labels = [UInt8](repeating: 0, count: rows)
        // With replacement, so some rows repeat (as in training minibatches).
        let picks: [Int32] = (0..<(rows + 7)).map { _ in Int32(rng.nextInt(below: rows)) }
        return (Examples<Float>(dense: dense, labels: labels), picks)
    }

    /// `b[c] + Σ_p fma(x_p, W[col_p, c])` per output, nonzeros in stored order: the
    /// reference the kernels must match.
    private static func referenceForward(data: Examples<Float>, rows: [Int32], weights w: [Float], bias b: [Float],
                                         width: Int) -> [Float] {
        var out = [Float](repeating: 0, count: rows.count * width)
        for (n, row) in rows.enumerated() {
            let r = Int(row)
            for c in 0..<width {
                var acc: Float = 0
                for p in Int(data.rowStart[r])..<Int(data.rowStart[r + 1]) {
                    acc = acc.addingProduct(data.values[p], w[Int(data.colIndex[p]) * width + c])
                }
                out[n * width + c] = b[c] + acc
            }
        }
        return out
    }

    /// `∂W[j, :] = Σ_n fma(x_nj, ∂Z[n, :])` in batch order: the backward reference.
    private static func referenceBackward(data: Examples<Float>, rows: [Int32], dOut: [Float], inputs: Int,
                                          width: Int) -> [Float] {
        var grad = [Float](repeating: 0, count: inputs * width)
        for (n, row) in rows.enumerated() {
            let r = Int(row)
            for p in Int(data.rowStart[r])..<Int(data.rowStart[r + 1]) {
                let j = Int(data.colIndex[p])
                for c in 0..<width {
                    grad[j * width + c] = grad[j * width + c].addingProduct(data.values[p], dOut[n * width + c])
                }
            }
        }
        return grad
    }

    private static func normals(_ n: Int, seed: UInt64) -> [Float] {
        var rng = Philox(seed: seed, step: 1, task: 0, stream: 0)
        return (0..<n).map { _ in Float(rng.nextNormal()) }
    }

    /// Bit for bit where every column block is a single accumulator chain (blocks of 104, 32,
    /// 24); the 8- and 16-wide tail blocks interleave two chains, so there only to rounding.
    @Test("forward equals bias + Σ_p fma(x_p, W[col_p, :]) in nonzero order",
          arguments: [3, 10, 16, 24, 50, 97, 100, 104, 130, 230])
    func forwardMatchesReference(width: Int) {
        let exact = ((width + 7) / 8 * 8) % 104 % 32 % 24 == 0
        let inputs = 60
        let (data, rows) = Self.batch(inputs: inputs, rows: 40, seed: UInt64(width))
        let w = Self.normals(inputs * width, seed: 1), b = Self.normals(width, seed: 2)
        let layer = SparseInputLayer<Float>(inputs: inputs, width: width)
        var out = [Float](repeating: .nan, count: rows.count * width)
        rows.withUnsafeBufferPointer { r in
            layer.forward(data: data, rows: r, weights: w, bias: b, width: width, out: &out)
        }
        let reference = Self.referenceForward(data: data, rows: rows, weights: w, bias: b, width: width)
        for n in rows.indices {
            for c in 0..<width {
                let want = reference[n * width + c]
                if exact {
                    #expect(out[n * width + c] == want, "row \(n) column \(c)")
                } else {
                    #expect(abs(out[n * width + c] - want) <= 1e-5 * max(1, abs(want)), "row \(n) column \(c)")
                }
            }
        }
    }

    @Test("backward equals Σ_n fma(x_nj, ∂Z[n, :]) in batch order, bit for bit",
          arguments: [3, 10, 16, 24, 50, 97, 100, 104, 130, 230])
    func backwardBitIdentical(width: Int) {
        let inputs = 60
        let (data, rows) = Self.batch(inputs: inputs, rows: 40, seed: UInt64(width) + 100)
        let dOut = Self.normals(rows.count * width, seed: 3)
        let layer = SparseInputLayer<Float>(inputs: inputs, width: width)
        let reference = Self.referenceBackward(data: data, rows: rows, dOut: dOut, inputs: inputs, width: width)
        // Twice: the second call reuses (and must fully overwrite) the workspaces.
        for _ in 0..<2 {
            var grad = [Float](repeating: .nan, count: inputs * width)
            rows.withUnsafeBufferPointer { r in
                layer.backward(data: data, rows: r, dOut: dOut, width: width, gradWeights: &grad)
            }
            #expect(grad == reference)
        }
        // A smaller batch after a larger one (buffers sized for the larger).
        let few = Array(rows.prefix(5))
        let small = Self.referenceBackward(data: data, rows: few, dOut: dOut, inputs: inputs, width: width)
        var grad = [Float](repeating: .nan, count: inputs * width)
        few.withUnsafeBufferPointer { r in
            layer.backward(data: data, rows: r, dOut: dOut, width: width, gradWeights: &grad)
        }
        #expect(grad == small)
    }
    @Test("the column-grouped kernels (100-wide) stay bit-identical when some rows' columns are not ascending")
    func unsortedRowsFallBack() {
        let inputs = 60, width = 100
        let (sorted, rows) = Self.batch(inputs: inputs, rows: 90, seed: 7)
        // Reverse the nonzeros of every fifth example: nonzero order is then not column order.
        var cols = sorted.colIndex, vals = sorted.values
        for r in stride(from: 0, to: sorted.count, by: 5) {
            let a = Int(sorted.rowStart[r]), b = Int(sorted.rowStart[r + 1])
            cols[a..<b].reverse(); vals[a..<b].reverse()
        }
        let data = Examples<Float>(inputSize: inputs, rowStart: sorted.rowStart, colIndex: cols, values: vals, labels: sorted.labels)
        let w = Self.normals(inputs * width, seed: 4), b = Self.normals(width, seed: 5)
        let dOut = Self.normals(rows.count * width, seed: 6)
        let layer = SparseInputLayer<Float>(inputs: inputs, width: width)
        var out = [Float](repeating: .nan, count: rows.count * width)
        var grad = [Float](repeating: .nan, count: inputs * width)
        rows.withUnsafeBufferPointer { r in
            layer.forward(data: data, rows: r, weights: w, bias: b, width: width, out: &out)
            layer.backward(data: data, rows: r, dOut: dOut, width: width, gradWeights: &grad)
        }
        let forward = Self.referenceForward(data: data, rows: rows, weights: w, bias: b, width: width)
        #expect(out.map(\.bitPattern) == forward.map(\.bitPattern))
        let reference = Self.referenceBackward(data: data, rows: rows, dOut: dOut, inputs: inputs, width: width)
        #expect(grad.map(\.bitPattern) == reference.map(\.bitPattern))
    }
    @Test("the AVX-512 kernels (column-grouped 97…104 wide, row-interleaved 9…16 wide) give the bits of the AVX2 Swift ones",
          arguments: [9, 10, 13, 16, 97, 98, 100, 103, 104])
    func avx512MatchesPortable(width: Int) {
        guard AVX512Kernels.isAvailable else { return }   // nothing to compare on this CPU
        let inputs = 70
        for batchRows in [1, 3, 4, 7, 31, 45, 96] {
            let (data, rows) = Self.batch(inputs: inputs, rows: batchRows, seed: UInt64(width * 1000 + batchRows))
            let w = Self.normals(inputs * width, seed: 8), b = Self.normals(width, seed: 9)
            let dOut = Self.normals(rows.count * width, seed: 10)
            let portable = SparseInputLayer<Float>(inputs: inputs, width: width)
            portable.usesAVX512 = false
            let avx512 = SparseInputLayer<Float>(inputs: inputs, width: width)
            #expect(avx512.usesAVX512)
            var outs: [[UInt32]] = [], grads: [[UInt32]] = []
            for layer in [portable, avx512] {
                var out = [Float](repeating: .nan, count: rows.count * width)
                var grad = [Float](repeating: .nan, count: inputs * width)
                rows.withUnsafeBufferPointer { r in
                    layer.forward(data: data, rows: r, weights: w, bias: b, width: width, out: &out)
                    layer.backward(data: data, rows: r, dOut: dOut, width: width, gradWeights: &grad)
                }
                outs.append(out.map(\.bitPattern)); grads.append(grad.map(\.bitPattern))
            }
            #expect(outs[0] == outs[1], "forward, width \(width), \(batchRows) rows")
            #expect(grads[0] == grads[1], "backward, width \(width), \(batchRows) rows")
        }
    }
}

