import Foundation

/// Box-constrained L-BFGS (projected quasi-Newton; Bertsekas 1982, with the L-BFGS two-loop
/// recursion of Nocedal 1980 on the free variables) and an Armijo backtracking line search.
/// Minimizes; `objective` returns `nil` where it cannot be evaluated (treated as +∞).
struct BoxMinimizer {
    var lower: [Double]
    var upper: [Double]
    var maxEvaluations: Int
    var memory = 6
    /// Largest change of any coordinate in one step.
    var maxStep = 2.0
    var gradientTolerance = 1e-6

    func minimize(from start: [Double], _ objective: ([Double]) -> (value: Double, gradient: [Double])?)
        -> (x: [Double], value: Double, evaluations: Int)
    {
        let dim = start.count
        var x = project(start)
        var evaluations = 1
        guard var (fx, g) = objective(x) else { return (x, .infinity, evaluations) }
        var s: [[Double]] = [], y: [[Double]] = []
        while evaluations < maxEvaluations {
            // Variables held at a bound by the gradient do not move.
            var free = [Bool](repeating: true, count: dim)
            var pg = g
            for i in 0..<dim where (x[i] <= lower[i] && g[i] > 0) || (x[i] >= upper[i] && g[i] < 0) {
                free[i] = false
                pg[i] = 0
            }
            if pg.reduce(0, { max($0, abs($1)) }) < gradientTolerance { break }
            var direction = twoLoop(pg, s, y).map { -$0 }
            for i in 0..<dim where !free[i] { direction[i] = 0 }
            if zip(direction, pg).reduce(0, { $0 + $1.0 * $1.1 }) >= 0 {
                direction = pg.map { -$0 }
                s.removeAll(); y.removeAll()
            }
            let longest = direction.reduce(0) { max($0, abs($1)) }
            var t = min(1, maxStep / longest)
            var accepted: (x: [Double], value: Double, gradient: [Double])? = nil
            while evaluations < maxEvaluations {
                let trial = project(zip(x, direction).map { $0 + t * $1 })
                if trial == x { break }
                evaluations += 1
                if let (fv, gv) = objective(trial) {
                    let decrease = zip(g, zip(trial, x)).reduce(0) { $0 + $1.0 * ($1.1.0 - $1.1.1) }
                    if fv <= fx + 1e-4 * decrease { accepted = (trial, fv, gv); break }
                }
                t *= 0.25
            }
            guard let next = accepted else {
                if s.isEmpty { break }
                s.removeAll(); y.removeAll()   // a stale curvature model; retry along −∇
                continue
            }
            let sk = zip(next.x, x).map { $0 - $1 }, yk = zip(next.gradient, g).map { $0 - $1 }
            if zip(sk, yk).reduce(0, { $0 + $1.0 * $1.1 }) > 1e-12 {
                s.append(sk); y.append(yk)
                if s.count > memory { s.removeFirst(); y.removeFirst() }
            }
            let improvement = fx - next.value
            x = next.x; fx = next.value; g = next.gradient
            if improvement <= 1e-10 * max(1, abs(fx)) { break }
        }
        return (x, fx, evaluations)
    }

    private func project(_ v: [Double]) -> [Double] {
        (0..<v.count).map { min(max(v[$0], lower[$0]), upper[$0]) }
    }

    /// H·q by the L-BFGS two-loop recursion, with H₀ = (sᵀy / yᵀy)·I.
    private func twoLoop(_ q0: [Double], _ s: [[Double]], _ y: [[Double]]) -> [Double] {
        func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        var q = q0
        var a = [Double](repeating: 0, count: s.count)
        for k in stride(from: s.count - 1, through: 0, by: -1) {
            a[k] = dot(s[k], q) / dot(y[k], s[k])
            for i in q.indices { q[i] -= a[k] * y[k][i] }
        }
        if let sl = s.last, let yl = y.last {
            let gamma = dot(sl, yl) / dot(yl, yl)
            for i in q.indices { q[i] *= gamma }
        }
        for k in 0..<s.count {
            let b = dot(y[k], q) / dot(y[k], s[k])
            for i in q.indices { q[i] += (a[k] - b) * s[k][i] }
        }
        return q
    }
}
