import Linalg
import Foundation

/// Which update rule.
public enum OptimizerKind: String, Sendable, Codable, CaseIterable {
    /// Adam (Kingma & Ba), β₁ = 0.9, β₂ = 0.999, ε = 1e-8.
    case adam
    /// Plain stochastic gradient descent.
    case sgd
}

/// A first-order optimizer's state for a parameter vector: Adam's moments and step count.
///
/// The state is plain data (`[Float]`-like buffers and a counter) so the coordinator can
/// checkpoint it and a resumed run continues bit for bit.
public final class Optimizer<T: BLASScalar> {
    /// The rule.
    public let kind: OptimizerKind
    /// Step size.
    public let learningRate: Double
    /// First moment (Adam).
    public let m: AlignedBuffer<T>
    /// Second moment (Adam).
    public let v: AlignedBuffer<T>
    /// Updates applied so far.
    public private(set) var stepCount: Int = 0
    /// Multiplies `learningRate` in the next updates (a schedule's factor; 1 leaves the
    /// step size's bits unchanged).
    public var learningRateScale: Double = 1

    /// Adam constants.
    public let beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8

    /// - Parameters:
    ///   - kind: Adam or SGD.
    ///   - count: length of the parameter vector.
    ///   - learningRate: the step size.
    public init(kind: OptimizerKind, count: Int, learningRate: Double) {
        self.kind = kind
        self.learningRate = learningRate
        m = AlignedBuffer(count: kind == .adam ? count : 0)
        v = AlignedBuffer(count: kind == .adam ? count : 0)
    }

    /// Restores saved state (from a checkpoint).
    public func restore(stepCount: Int, m: [T], v: [T]) {
        precondition(m.count == self.m.count && v.count == self.v.count, "Optimizer.restore: size mismatch")
        self.stepCount = stepCount
        self.m.load(m)
        self.v.load(v)
    }

    /// The constants of one update (Adam's bias correction at its step count), from
    /// `beginUpdate`; apply it to every parameter exactly once, in any pieces, with `apply`.
    public struct Update {
        let gradScale: T
        let learningRate: T
        let alpha: T
        let epsHat: T
    }

    /// Starts one update: advances the step count and fixes the update's constants.
    public func beginUpdate(gradScale: T = 1) -> Update {
        stepCount += 1
        let lr = T(learningRate * learningRateScale)
        guard kind == .adam else { return Update(gradScale: gradScale, learningRate: lr, alpha: 0, epsHat: 0) }
        let eps = T(epsilon)
        let c1 = T(1 - pow(beta1, Double(stepCount)))
        let c2 = T(1 - pow(beta2, Double(stepCount)))
        // Bias-corrected step size folded into one scalar: α·√(1−β₂ᵗ)/(1−β₁ᵗ).
        let alpha = lr * c2.squareRoot() / c1
        let epsHat = eps * c2.squareRoot()
        return Update(gradScale: gradScale, learningRate: lr, alpha: alpha, epsHat: epsHat)
    }

    /// Applies `u` to `params[offset ..< offset + count]` with `grad` holding those elements'
    /// gradients (`grad[0]` is element `offset`). Returns `true` when the updated parameters
    /// are finite (checked as they are written, so no second pass is needed). `source`: where
    /// the parameters before the update are, when not in `params` (an out-of-place update with
    /// the same operations: `params` receives the new values).
    @discardableResult
    public func apply(_ u: Update, params: UnsafeMutablePointer<T>, grad: UnsafePointer<T>, offset: Int, count: Int,
                      source: UnsafePointer<T>? = nil) -> Bool {
        let p = params + offset
        let from = source.map { $0 + offset } ?? UnsafePointer(p)
        switch kind {
        case .sgd:
            let lr = u.learningRate, gradScale = u.gradScale
            for i in 0..<count { p[i] = from[i] - lr * (grad[i] * gradScale) }
            return Vec.allFinite(count, UnsafePointer(p))
        case .adam:
            precondition(offset >= 0 && offset + count <= m.count, "Optimizer.apply: \(offset)+\(count) params, state for \(m.count)")
            let b1 = T(beta1), b2 = T(beta2)
            let alpha = u.alpha, epsHat = u.epsHat, gradScale = u.gradScale
            if T.self == Float.self {
                return FloatKernels.adam(params: UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self),
                                         grad: UnsafeRawPointer(grad).assumingMemoryBound(to: Float.self),
                                         m: UnsafeMutableRawPointer(m.pointer + offset).assumingMemoryBound(to: Float.self),
                                         v: UnsafeMutableRawPointer(v.pointer + offset).assumingMemoryBound(to: Float.self),
                                         count: count, gradScale: Float(gradScale), beta1: Float(b1), beta2: Float(b2),
                                         alpha: Float(alpha), epsHat: Float(epsHat),
                                         source: source.map { UnsafeRawPointer($0 + offset).assumingMemoryBound(to: Float.self) })
            }
            let mp = m.pointer + offset, vp = v.pointer + offset
            for i in 0..<count {
                let g = grad[i] * gradScale
                let mi = b1 * mp[i] + (1 - b1) * g
                let vi = b2 * vp[i] + (1 - b2) * g * g
                mp[i] = mi
                vp[i] = vi
                p[i] = from[i] - alpha * mi / (vi.squareRoot() + epsHat)
            }
            return Vec.allFinite(count, UnsafePointer(p))
        }
    }

    /// `params ← update(params, grad·gradScale)`; returns `true` when the new parameters are finite.
    @discardableResult
    public func step(params: UnsafeMutablePointer<T>, grad: UnsafePointer<T>, count: Int, gradScale: T = 1,
                     source: UnsafePointer<T>? = nil) -> Bool {
        if kind == .adam { precondition(count == m.count, "Optimizer.step: \(count) params, state for \(m.count)") }
        let u = beginUpdate(gradScale: gradScale)
        return apply(u, params: params, grad: grad, offset: 0, count: count, source: source)
    }
}
