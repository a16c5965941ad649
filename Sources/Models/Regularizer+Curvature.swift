extension Regularizer {
    /// Adds `∇²_w L_reg(w, λ)·u` into `hessianVector` and writes `∂/∂λ_g (∇_w L_reg·u)` into
    /// `mixed` (`groupCount` values, overwriting). With `e_g = exp(λ_g)`, `s_g = Σ_{i∈g} wᵢuᵢ`:
    /// - squared, `e_g·Σ wᵢ²`: `(H u)ᵢ = 2·e_g·uᵢ`, mixed `2·e_g·s_g`;
    /// - unsquared, `e_g·‖w_g‖` (`n_g = ‖w_g‖`): `(H u)ᵢ = e_g·(uᵢ/n_g − wᵢ·s_g/n_g³)`,
    ///   mixed `e_g·s_g/n_g`; a group that is exactly zero contributes nothing (as its gradient).
    ///
    /// `scratch` must hold `3·groupCount` values.
    public func addCurvature(
        w: UnsafePointer<Double>, u: UnsafePointer<Double>, lambda: UnsafePointer<Double>,
        hessianVector hv: UnsafeMutablePointer<Double>, mixed: UnsafeMutablePointer<Double>,
        scratch: UnsafeMutablePointer<Double>
    ) {
        let h = groupCount, d = parameterCount
        let coef = scratch, norms = scratch + h, dots = mixed
        for k in 0..<h { coef[k] = Double.exp(lambda[k]) }
        dots.update(repeating: 0, count: h)
        groupOf.withUnsafeBufferPointer { groups in
            switch norm {
            case .squared:
                for i in 0..<d {
                    let k = Int(groups[i])
                    guard k >= 0 else { continue }
                    hv[i] += 2 * coef[k] * u[i]
                    dots[k] += w[i] * u[i]
                }
                for k in 0..<h { mixed[k] = 2 * coef[k] * dots[k] }
            case .unsquared:
                norms.update(repeating: 0, count: h)
                for i in 0..<d {
                    let k = Int(groups[i])
                    guard k >= 0 else { continue }
                    norms[k] += w[i] * w[i]
                    dots[k] += w[i] * u[i]
                }
                for k in 0..<h { norms[k] = norms[k].squareRoot() }
                for i in 0..<d {
                    let k = Int(groups[i])
                    guard k >= 0, norms[k] > 0 else { continue }
                    let n = norms[k]
                    hv[i] += coef[k] * (u[i] / n - w[i] * dots[k] / (n * n * n))
                }
                for k in 0..<h { mixed[k] = norms[k] > 0 ? coef[k] * dots[k] / norms[k] : 0 }
            }
        }
    }
}
