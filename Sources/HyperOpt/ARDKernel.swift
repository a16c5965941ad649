import Foundation

/// The RBF/ARD kernel's constants and its matrices.
struct ARDKernel: Sendable {
    let inverseSquaredLengthScales: [Double]
    let signalVariance: Double
    let noiseVariance: Double

    init(_ h: GaussianProcess.Hyperparameters) {
        inverseSquaredLengthScales = h.logLengthScales.map { exp(-2 * $0) }
        signalVariance = exp(2 * h.logSignalStd)
        noiseVariance = exp(2 * h.logNoiseStd)
    }

    /// `σ_f² exp(−½ Σ_d (a_d − b_d)²/ℓ_d²)` for each row of `a` (m × d) against each row of `b`
    /// (n × d): m × n, row-major.
    func cross(_ a: [Double], count m: Int, _ b: [Double], count n: Int, dimension d: Int) -> [Double] {
        var out = [Double](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { ab in
            b.withUnsafeBufferPointer { bb in
                inverseSquaredLengthScales.withUnsafeBufferPointer { il in
                    out.withUnsafeMutableBufferPointer { o in
                        for j in 0..<m {
                            for i in 0..<n {
                                var r2 = 0.0
                                for c in 0..<d {
                                    let delta = ab[j * d + c] - bb[i * d + c]
                                    r2 += delta * delta * il[c]
                                }
                                o[j * n + i] = signalVariance * exp(-0.5 * r2)
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// The n × n signal part K_f of the kernel matrix (no noise), symmetric.
    func matrix(_ x: [Double], count n: Int, dimension d: Int) -> [Double] {
        var out = [Double](repeating: 0, count: n * n)
        x.withUnsafeBufferPointer { xb in
            inverseSquaredLengthScales.withUnsafeBufferPointer { il in
                out.withUnsafeMutableBufferPointer { o in
                    for i in 0..<n {
                        o[i * n + i] = signalVariance
                        for j in 0..<i {
                            var r2 = 0.0
                            for c in 0..<d {
                                let delta = xb[i * d + c] - xb[j * d + c]
                                r2 += delta * delta * il[c]
                            }
                            let v = signalVariance * exp(-0.5 * r2)
                            o[i * n + j] = v
                            o[j * n + i] = v
                        }
                    }
                }
            }
        }
        return out
    }
}
