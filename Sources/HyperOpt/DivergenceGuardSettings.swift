/// When the divergence guard steps in (`DivergenceGuard`).
public struct DivergenceGuardSettings: Sendable, Codable, Equatable {
    /// Trigger when the smoothed validation batch loss exceeds this multiple of its running
    /// minimum.
    public var threshold: Double = 2
    /// Weight of the newest validation batch loss in the smoothed value (an exponential
    /// moving average).
    public var smoothing: Double = 0.05
    /// Steps before the minimum is tracked (the loss falls steeply at first).
    public var warmupSteps: Int = 200
    /// A good state is remembered every this many steps (when the smoothed loss is within
    /// 1.25× of its minimum).
    public var snapshotEvery: Int = 250
    /// Roll-backs allowed before the run stops with an error.
    public var maxRollbacks: Int = 8

    /// The defaults.
    public init() {}

    /// Problems, each a sentence.
    public func problems() -> [String] {
        var p: [String] = []
        if !(threshold > 1 && threshold.isFinite) { p.append("the divergence guard's threshold must be a number > 1") }
        if !(smoothing > 0 && smoothing <= 1) { p.append("the divergence guard's smoothing must be in (0, 1]") }
        if warmupSteps < 0 { p.append("the divergence guard's warm-up must be ≥ 0 steps") }
        if snapshotEvery < 1 { p.append("the divergence guard's snapshot interval must be ≥ 1 step") }
        if maxRollbacks < 0 { p.append("the divergence guard's roll-back limit must be ≥ 0") }
        return p
    }
}
