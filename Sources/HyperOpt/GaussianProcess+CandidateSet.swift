import Linalg

extension GaussianProcess {
    /// The posterior of latent f over a fixed set of points, kept so that conditioning on a
    /// further (fantasy) observation updates it in O(m·(n + t)) instead of a new O(n²·m) solve:
    /// for each point its mean and variance and its row of `V = L⁻¹K(X, C)`, extended by one
    /// column per observation added since (t of them). Greedy batch Bayesian optimization picks
    /// one point after another from such a set, each conditioned on the ones before.
    /// Standardized units inside; `prediction(_:)` gives original units.
    public struct CandidatePosterior: Sendable {
        /// The points (unit cube for Bayesian optimization).
        public let points: [[Double]]
        private let flat: [Double]
        private let dimension: Int
        /// Row j: L⁻¹k(c_j) followed by one entry per added observation (width `width`).
        private var v: [Double]
        private var width: Int
        private let stride: Int
        private var mean: [Double]
        private var variance: [Double]
        private let kernel: ARDKernel
        private let targetMean: Double, targetStd: Double

        init(model: GaussianProcess, points: [[Double]], capacity: Int) {
            let m = points.count, n = model.count, d = model.dimension
            self.points = points
            dimension = d
            flat = points.flatMap { $0 }
            kernel = model.kernelForCandidates
            targetMean = model.targetMean
            targetStd = model.targetStd
            let cross = kernel.cross(flat, count: m, model.inputsFlat, count: n, dimension: d)   // m × n
            let solved = model.factorForCandidates.solveLower(columns: cross, count: m)            // row j = L⁻¹k(c_j)
            stride = n + max(capacity, 0)
            width = n
            v = [Double](repeating: 0, count: m * stride)
            mean = model.standardizedMeans(cross: cross, count: m)
            variance = [Double](repeating: 0, count: m)
            for j in 0..<m {
                var explained = 0.0
                for i in 0..<n {
                    let value = solved[j * n + i]
                    v[j * stride + i] = value
                    explained += value * value
                }
                variance[j] = max(kernel.signalVariance - explained, 0)
            }
        }

        /// The posterior (latent f, original units) at point `j`.
        public func prediction(_ j: Int) -> Prediction {
            Prediction(mean: targetMean + targetStd * mean[j], variance: targetStd * targetStd * variance[j])
        }

        /// Conditions on an observation `target` (original units) at point `j` of the set, as
        /// `GaussianProcess.conditioned(on:target:)` would (same noise): every point's mean and
        /// variance, and one more column of V. Returns false when no capacity is left or the
        /// point's predictive variance is not positive.
        public mutating func condition(onPoint j: Int, target: Double) -> Bool {
            let m = points.count
            guard width < stride else { return false }
            let predictive = variance[j] + kernel.noiseVariance
            guard predictive > 0, predictive.isFinite else { return false }
            let s = predictive.squareRoot()
            let residual = (target - targetMean) / targetStd - mean[j]
            let u = Array(flat[j * dimension..<(j + 1) * dimension])
            let k = kernel.cross(flat, count: m, u, count: 1, dimension: dimension)   // k(c, u)
            let vu = Array(v[j * stride..<j * stride + width])
            var column = [Double](repeating: 0, count: m)
            v.withUnsafeBufferPointer { vb in
                vu.withUnsafeBufferPointer { x in
                    column.withUnsafeMutableBufferPointer { out in
                        // cov(c, u) = k(c, u) − V_c·V_u over the columns so far.
                        Double.gemv(trans: false, m: m, n: width, alpha: -1, a: vb.baseAddress!, lda: stride,
                                    x: x.baseAddress!, beta: 0, y: out.baseAddress!)
                    }
                }
            }
            for c in 0..<m {
                let entry = (k[c] + column[c]) / s
                v[c * stride + width] = entry
                variance[c] = max(variance[c] - entry * entry, 0)
                mean[c] += entry * residual / s
            }
            width += 1
            return true
        }
    }

    /// The posterior over `points`, ready for `capacity` fantasy observations.
    public func candidatePosterior(_ points: [[Double]], capacity: Int) -> CandidatePosterior {
        precondition(points.allSatisfy { $0.count == dimension }, "GaussianProcess.candidatePosterior: points of dimension \(dimension) expected")
        return CandidatePosterior(model: self, points: points, capacity: capacity)
    }
}
