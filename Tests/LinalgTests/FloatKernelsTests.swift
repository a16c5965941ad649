import Testing
import Linalg

/// Deterministic values: normals scaled by `scale`.
private func normals(_ n: Int, seed: UInt64, scale: Double = 1) -> [Float] {
    var rng = Philox(seed: seed, step: 0, task: 0, stream: 77)
    return (0..<n).map { _ in Float(scale * rng.nextNormal()) }
}

@Suite struct FloatKernelsTests {
    static let lengths = [0, 1, 7, 8, 9, 16, 37]

    @Test("adam matches the scalar formula evaluated in Double", arguments: lengths)
    func adamMatchesScalar(n: Int) {
        let beta1: Float = 0.9, beta2: Float = 0.999, alpha: Float = 0.01, epsHat: Float = 1e-8, gradScale: Float = 0.5
        var p = normals(n, seed: 1), m = normals(n, seed: 2, scale: 0.1)
        var v = normals(n, seed: 3, scale: 0.1).map { $0 * $0 }
        let g = normals(n, seed: 4)
        var pd = p.map(Double.init), md = m.map(Double.init), vd = v.map(Double.init)
        for _ in 0..<3 {
            FloatKernels.adam(params: &p, grad: g, m: &m, v: &v, count: n, gradScale: gradScale,
                              beta1: beta1, beta2: beta2, alpha: alpha, epsHat: epsHat)
            for i in 0..<n {
                let gi = Double(g[i]) * Double(gradScale)
                md[i] = Double(beta1) * md[i] + (1 - Double(beta1)) * gi
                vd[i] = Double(beta2) * vd[i] + (1 - Double(beta2)) * gi * gi
                pd[i] -= Double(alpha) * md[i] / (vd[i].squareRoot() + Double(epsHat))
            }
        }
        for i in 0..<n {
            #expect(abs(Double(m[i]) - md[i]) <= 1e-6 * (abs(md[i]) + 1e-3), "m[\(i)]")
            #expect(abs(Double(v[i]) - vd[i]) <= 1e-6 * (abs(vd[i]) + 1e-6), "v[\(i)]")
            #expect(abs(Double(p[i]) - pd[i]) <= 1e-5, "p[\(i)]: \(p[i]) vs \(pd[i])")
        }
    }

    @Test("adam leaves memory past count untouched", arguments: lengths)
    func adamBounds(n: Int) {
        let guardCount = 9
        var p = normals(n + guardCount, seed: 5), m = p, v = p.map(abs)
        let g = normals(n + guardCount, seed: 6)
        let (p0, m0, v0) = (p, m, v)
        FloatKernels.adam(params: &p, grad: g, m: &m, v: &v, count: n, gradScale: 1,
                          beta1: 0.9, beta2: 0.999, alpha: 0.1, epsHat: 1e-8)
        #expect(Array(p[n...]) == Array(p0[n...]))
        #expect(Array(m[n...]) == Array(m0[n...]))
        #expect(Array(v[n...]) == Array(v0[n...]))
        #expect(zip(p[..<n], p0[..<n]).allSatisfy { $0 != $1 })
    }

    @Test("adam's vector lanes and scalar tail give bit-identical results for the same element")
    func adamLaneTailAgree() {
        // The kernel documents that results do not depend on where the vector part ends: an
        // element updated in an 8-lane block equals the same element updated alone (tail).
        let n = 24
        let g = normals(n, seed: 7), p0 = normals(n, seed: 8), m0 = normals(n, seed: 9, scale: 0.1)
        let v0 = normals(n, seed: 10, scale: 0.1).map { $0 * $0 }
        var p = p0, m = m0, v = v0
        FloatKernels.adam(params: &p, grad: g, m: &m, v: &v, count: n, gradScale: 0.5,
                          beta1: 0.9, beta2: 0.999, alpha: 0.003, epsHat: 1e-8)
        for i in 0..<n {
            var pi = [p0[i]], mi = [m0[i]], vi = [v0[i]]
            FloatKernels.adam(params: &pi, grad: [g[i]], m: &mi, v: &vi, count: 1, gradScale: 0.5,
                              beta1: 0.9, beta2: 0.999, alpha: 0.003, epsHat: 1e-8)
            #expect(pi[0] == p[i] && mi[0] == m[i] && vi[0] == v[i], "element \(i)")
        }
    }

    @Test("add computes dst[i] + src[i] exactly and touches nothing past count", arguments: lengths)
    func add(n: Int) {
        let src = normals(n + 3, seed: 11)
        var dst = normals(n + 3, seed: 12)
        let d0 = dst
        FloatKernels.add(src, into: &dst, count: n)
        for i in 0..<n { #expect(dst[i] == d0[i] + src[i], "element \(i)") }
        #expect(Array(dst[n...]) == Array(d0[n...]))
    }

    @Test("add into itself doubles every element")
    func addAliased() {
        let buf = AlignedBuffer<Float>(normals(37, seed: 13))
        let before = buf.array
        FloatKernels.add(buf.constPointer, into: buf.pointer, count: buf.count)
        #expect(buf.array == before.map { $0 * 2 })
    }
}
