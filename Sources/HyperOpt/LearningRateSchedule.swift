import Foundation

/// How the step sizes of φ and λ̂ move over a run: a factor of the configured step size that
/// is a function of the step alone (so the cluster and a resumed run apply the same one).
public struct LearningRateSchedule: Sendable, Codable, Equatable, CustomStringConvertible {
    /// The curve from 1 at step 0 to `finalFraction` at the last step.
    public enum Shape: String, Sendable, Codable, CaseIterable {
        /// Always 1.
        case constant
        /// Half a cosine from 1 down to `finalFraction`.
        case cosine
        /// A straight line from 1 down to `finalFraction`.
        case linear
    }

    /// How the factor falls from 1 to `finalFraction` over the run.
    public var shape: Shape
    /// The factor at the last step (for `cosine` and `linear`).
    public var finalFraction: Double

    /// A schedule of `shape` ending at `finalFraction` of the base step size.
    public init(shape: Shape, finalFraction: Double = 0.1) {
        self.shape = shape
        self.finalFraction = finalFraction
    }

    /// Parses `constant`, `cosine`, `linear`, optionally with the final fraction: `cosine:0.05`.
    public init?(parsing text: String) {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard let shape = Shape(rawValue: parts[0]) else { return nil }
        var fraction = 0.1
        if parts.count == 2 {
            guard let f = Double(parts[1]) else { return nil }
            fraction = f
        }
        self.init(shape: shape, finalFraction: fraction)
    }

    /// `cosine:0.1` and so on.
    public var description: String {
        shape == .constant ? "constant" : "\(shape.rawValue):\(finalFraction)"
    }

    /// Problems, each a sentence.
    public func problems() -> [String] {
        finalFraction > 0 && finalFraction <= 1 ? [] : ["the schedule's final fraction must be in (0, 1], got \(finalFraction)"]
    }

    /// The factor at `step` of a run of `total` steps (1 for the constant schedule; steps past
    /// the end keep the final factor).
    public func factor(step: UInt64, total: Int) -> Double {
        guard shape != .constant, total > 1 else { return 1 }
        let progress = min(Double(step) / Double(total - 1), 1)
        switch shape {
        case .constant: return 1
        case .linear: return 1 - (1 - finalFraction) * progress
        case .cosine: return finalFraction + (1 - finalFraction) * 0.5 * (1 + cos(Double.pi * progress))
        }
    }
}
