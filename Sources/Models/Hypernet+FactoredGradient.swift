import Linalg

extension Hypernet where T == Float {
    /// `backward` for a training task whose `∂L/∂φ` is to be summed into the step's φ update:
    /// instead of writing the φ-sized gradient, records its factors (`x`, `h`, `∂z`, `∂w`) in
    /// slot `slot` of `factors` (`∂z` is computed here exactly as `backward` computes it).
    public func backward(phi: UnsafePointer<Float>, lambda: UnsafePointer<Float>, gradW: UnsafePointer<Float>,
                         recordingInto factors: PhiGradientFactors, slot t: Int) {
        precondition(factors.inputCount == inputCount && factors.outputCount == outputCount
                     && factors.hiddenCount == hiddenCount, "Hypernet: factors of another shape")
        let hh = inputCount, d = outputCount, k = hiddenCount
        (factors.x.pointer + t * hh).update(from: lambda, count: hh)
        let gwSlot = factors.gradW(slot: t)
        if UnsafePointer(gwSlot) != gradW { gwSlot.update(from: gradW, count: d) }
        guard k > 0 else { return }
        // ∂h = B·∂w, then through the activation (as in `backward`).
        Vec.rowDots(rows: k, cols: d, phi + (hh * k + k), gradW, into: gz.pointer)
        if case .mlp = kind {
            for i in 0..<k where z.pointer[i] <= 0 { gz.pointer[i] = 0 }
        }
        (factors.gz.pointer + t * factors.hiddenStride).update(from: gz.constPointer, count: k)
        (factors.h.pointer + t * k).update(from: h.constPointer, count: k)
    }

    /// Calls `body(offset, count, values)` with consecutive stretches of the sum over slots
    /// `0..<tasks` of the recorded task gradients, covering `φ` once in order. Each element is
    /// `((0 + p₀) + p₁) + …` with every product rounded: the bits of `beginStep`, then
    /// `backward(…, accumulate: true)` for the tasks in order. `values` is valid during the call.
    public func forEachGradientSumChunk(_ f: PhiGradientFactors, tasks n: Int,
                                        _ body: (_ offset: Int, _ count: Int, _ values: UnsafePointer<Float>) -> Void) {
        precondition(n > 0 && n <= f.capacity, "Hypernet: \(n) tasks of \(f.capacity) slots")
        precondition(f.inputCount == inputCount && f.outputCount == outputCount && f.hiddenCount == hiddenCount,
                     "Hypernet: factors of another shape")
        let hh = inputCount, d = outputCount, k = hiddenCount
        let out = f.chunk.pointer
        let target = PhiGradientFactors.chunkTarget
        let x = f.x.constPointer, gw = f.gw.constPointer
        /// Rows `[rows]` of `Σₜ coefₜ[row]·∂wₜ` (a `rows × D` block), in column chunks.
        func outerWithGradW(_ coef: UnsafePointer<Float>, coefStride: Int, rows: Int, at base: Int) {
            for r in 0..<rows {
                var c = 0
                while c < d {
                    let w = min(target, d - c)
                    Self.sumScaled(n, coef + r, coefStride, gw + c, d, w, into: out)
                    body(base + r * d + c, w, UnsafePointer(out))
                    c += w
                }
            }
        }
        /// `Σₜ ∂wₜ` (the output bias), in chunks.
        func sumGradW(at base: Int) {
            var c = 0
            while c < d {
                let w = min(target, d - c)
                Self.sum(n, gw + c, d, w, into: out)
                body(base + c, w, UnsafePointer(out))
                c += w
            }
        }
        if k == 0 {
            outerWithGradW(x, coefStride: hh, rows: hh, at: 0)       // ∂A
            sumGradW(at: hh * d)                                     // ∂b
            return
        }
        // ∂C [H, K], a chunk of whole rows at a time.
        let rowsPerChunk = max(1, target / k)
        var i = 0
        while i < hh {
            let r = min(rowsPerChunk, hh - i)
            Self.outerRows(n, x + i, hh, f.gz.constPointer, f.hiddenStride, rows: r, cols: k, into: out)
            body(i * k, r * k, UnsafePointer(out))
            i += r
        }
        Self.sum(n, f.gz.constPointer, f.hiddenStride, k, into: out)        // ∂c
        body(hh * k, k, UnsafePointer(out))
        outerWithGradW(f.h.constPointer, coefStride: k, rows: k, at: hh * k + k)   // ∂B
        sumGradW(at: hh * k + k + k * d)                                     // ∂b
    }

    /// Writes the whole sum of slots `0..<tasks` into `gradPhi` (`parameterCount` values).
    public func writeGradientSum(_ f: PhiGradientFactors, tasks n: Int, into gradPhi: UnsafeMutablePointer<Float>) {
        forEachGradientSumChunk(f, tasks: n) { offset, count, values in (gradPhi + offset).update(from: values, count: count) }
    }

    /// `out[j] = ((0 + a₀·y₀[j]) + a₁·y₁[j]) + …` with `aₜ = coef[t·cs]`, `yₜ = y + t·ys`.
    @inline(__always)
    static func sumScaled(_ n: Int, _ coef: UnsafePointer<Float>, _ cs: Int, _ y: UnsafePointer<Float>, _ ys: Int,
                          _ w: Int, into out: UnsafeMutablePointer<Float>) {
        let a0 = coef[0]
        for j in 0..<w { let p = a0 * y[j]; out[j] = 0 + p }
        for t in 1..<max(n, 1) {
            let a = coef[t &* cs], yt = y + t &* ys
            for j in 0..<w { let p = a * yt[j]; out[j] = out[j] + p }
        }
    }

    /// `out[j] = ((0 + y₀[j]) + y₁[j]) + …` with `yₜ = y + t·ys`.
    @inline(__always)
    static func sum(_ n: Int, _ y: UnsafePointer<Float>, _ ys: Int, _ w: Int, into out: UnsafeMutablePointer<Float>) {
        for j in 0..<w { out[j] = 0 + y[j] }
        for t in 1..<max(n, 1) {
            let yt = y + t &* ys
            for j in 0..<w { out[j] = out[j] + yt[j] }
        }
    }

    /// Rows `q < rows` of `Σₜ xₜ[q]·zₜ` (`rows × cols`, `xₜ = x + t·xs`, `zₜ = z + t·zs` padded
    /// with zeros to whole 8-lane blocks), in 8-lane blocks; a row's last block spills into the
    /// next row, which is written after it (and `out` has 8 lanes of slack past the last row).
    @inline(__always)
    static func outerRows(_ n: Int, _ x: UnsafePointer<Float>, _ xs: Int, _ z: UnsafePointer<Float>, _ zs: Int,
                          rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>) {
        func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
        func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
            UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
        }
        if n == 2 && cols <= 16 && cols > 8 {
            // The common case (two tasks, K of 9…16): all four ∂z blocks stay in registers.
            let z00 = load(z), z01 = load(z + 8), z10 = load(z + zs), z11 = load(z + zs + 8)
            for q in 0..<rows {
                let a0 = SIMD8<Float>(repeating: x[q]), a1 = SIMD8<Float>(repeating: x[xs + q])
                let o = out + q &* cols
                store((SIMD8<Float>.zero + a0 * z00) + a1 * z10, o)
                store((SIMD8<Float>.zero + a0 * z01) + a1 * z11, o + 8)
            }
            return
        }
        for q in 0..<rows {
            let o = out + q &* cols
            var b = 0
            while b < cols {
                var s = SIMD8<Float>.zero + SIMD8<Float>(repeating: x[q]) * load(z + b)
                for t in 1..<max(n, 1) {
                    s = s + SIMD8<Float>(repeating: x[t &* xs + q]) * load(z + t &* zs + b)
                }
                store(s, o + b)
                b += 8
            }
        }
    }
}
