import Testing
import Linalg
@testable import Models

/// `Hypernet.fanInParameters`: the block-wise statistics it promises, determinism, and that
/// φ(0) is exactly the elementary initialisation `b`.
@Suite struct HypernetInitializationTests {
    /// Mean and standard deviation of `x[range]`.
    private static func moments(_ x: [Float], _ range: Range<Int>) -> (mean: Double, std: Double) {
        let n = Double(range.count)
        let mean = x[range].reduce(0.0) { $0 + Double($1) } / n
        let variance = x[range].reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n
        return (mean, variance.squareRoot())
    }

    @Test("factorized:K — C ~ N(0, 1/H), c = 0, B ~ scale·N(0, 1/K), b He/LeCun per layer with zero biases",
          arguments: [HypernetKind.factorized(hidden: 10), .mlp(hidden: 6)])
    func hiddenKindStatistics(kind: HypernetKind) {
        let shape = MLPShape([784, 30, 20, 10])
        let h = 5_000, k = kind.hidden!, d = shape.parameterCount
        let net = Hypernet<Float>(kind: kind, inputCount: h, outputCount: d)
        let scale = 0.01
        let phi = net.fanInParameters(seed: 7, scale: scale, elementary: shape)
        #expect(phi.count == net.parameterCount)
        let (cOff, bOff, bBiasOff) = (h * k, h * k + k, h * k + k + k * d)

        let C = Self.moments(phi, 0..<cOff)
        #expect(abs(C.mean) < 0.05 / Double(h).squareRoot() && abs(C.std * Double(h).squareRoot() - 1) < 0.02, "C: \(C)")
        #expect(phi[cOff..<bOff].allSatisfy { $0 == 0 }, "c must start at 0")
        let B = Self.moments(phi, bOff..<bBiasOff)
        let bStd = scale / Double(k).squareRoot()
        #expect(abs(B.mean) < 0.05 * bStd && abs(B.std / bStd - 1) < 0.02, "B: \(B), expected std \(bStd)")

        let b = Array(phi[bBiasOff...])
        for l in 0..<shape.layerCount {
            let fanIn = shape.sizes[l]
            let expected = ((l + 1 < shape.layerCount ? 2.0 : 1.0) / Double(fanIn)).squareRoot()
            let wRange = shape.weightOffset[l]..<shape.biasOffset[l]
            let m = Self.moments(b, wRange)
            // Relative tolerance from the sample size: the std of a sample std is ≈ σ/√(2n).
            let tolerance = 5 / (2 * Double(wRange.count)).squareRoot()
            #expect(abs(m.mean) < 5 * expected / Double(wRange.count).squareRoot() && abs(m.std / expected - 1) < tolerance,
                    "layer \(l): \(m), expected std \(expected)")
            #expect(b[shape.biasOffset[l]..<(shape.biasOffset[l] + shape.sizes[l + 1])].allSatisfy { $0 == 0 }, "layer \(l) biases")
        }
    }

    @Test("linear — A ~ scale·N(0, 1/H), b the elementary initialisation")
    func linearStatistics() {
        let shape = MLPShape([784, 10])
        let h = 10, d = shape.parameterCount
        let net = Hypernet<Float>(kind: .linear, inputCount: h, outputCount: d)
        let phi = net.fanInParameters(seed: 3, scale: 0.1, elementary: shape)
        let A = Self.moments(phi, 0..<(h * d))
        let aStd = 0.1 / Double(h).squareRoot()
        #expect(abs(A.std / aStd - 1) < 0.03, "A: \(A), expected std \(aStd)")
        let W = Self.moments(phi, (h * d)..<(h * d + 7_840))
        #expect(abs(W.std / (1 / 784.0).squareRoot() - 1) < 0.05, "W: \(W)")
        #expect(phi[(h * d + 7_840)...].allSatisfy { $0 == 0 })
    }

    @Test("the same seed gives the same φ, another seed another φ; φ(λ = 0) is b exactly")
    func deterministicAndZeroInputIsB() {
        let shape = MLPShape([784, 16, 10])
        let h = 300, d = shape.parameterCount
        let net = Hypernet<Float>(kind: .factorized(hidden: 4), inputCount: h, outputCount: d)
        let a = net.fanInParameters(seed: 11, scale: 0.01, elementary: shape)
        #expect(a == net.fanInParameters(seed: 11, scale: 0.01, elementary: shape))
        #expect(a != net.fanInParameters(seed: 12, scale: 0.01, elementary: shape))
        var w = [Float](repeating: .nan, count: d)
        let zero = [Float](repeating: 0, count: h)
        net.forward(phi: a, lambda: zero, w: &w)
        #expect(w == Array(a[(net.parameterCount - d)...]))
    }
}
