import Linalg

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

    /// `params ← update(params, grad·gradScale)`.
    public func step(params: UnsafeMutablePointer<T>, grad: UnsafePointer<T>, count: Int, gradScale: T = 1) {
        stepCount += 1
        let lr = T(learningRate)
        switch kind {
        case .sgd:
            for i in 0..<count { params[i] -= lr * (grad[i] * gradScale) }
        case .adam:
            precondition(count == m.count, "Optimizer.step: \(count) params, state for \(m.count)")
            let b1 = T(beta1), b2 = T(beta2), eps = T(epsilon)
            let c1 = T(1 - pow(beta1, Double(stepCount)))
            let c2 = T(1 - pow(beta2, Double(stepCount)))
            // Bias-corrected step size folded into one scalar: α·√(1−β₂ᵗ)/(1−β₁ᵗ).
            let alpha = lr * c2.squareRoot() / c1
            let epsHat = eps * c2.squareRoot()
            if T.self == Float.self {
                FloatKernels.adam(params: UnsafeMutableRawPointer(params).assumingMemoryBound(to: Float.self),
                                  grad: UnsafeRawPointer(grad).assumingMemoryBound(to: Float.self),
                                  m: UnsafeMutableRawPointer(m.pointer).assumingMemoryBound(to: Float.self),
                                  v: UnsafeMutableRawPointer(v.pointer).assumingMemoryBound(to: Float.self),
                                  count: count, gradScale: Float(gradScale), beta1: Float(b1), beta2: Float(b2),
                                  alpha: Float(alpha), epsHat: Float(epsHat))
                return
            }
            let mp = m.pointer, vp = v.pointer
            for i in 0..<count {
                let g = grad[i] * gradScale
                let mi = b1 * mp[i] + (1 - b1) * g
                let vi = b2 * vp[i] + (1 - b2) * g * g
                mp[i] = mi
                vp[i] = vi
                params[i] -= alpha * mi / (vi.squareRoot() + epsHat)
            }
        }
    }
}

import Foundation
