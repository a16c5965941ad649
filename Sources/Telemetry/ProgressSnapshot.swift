/// What the progress line shows at one moment of training.
public struct ProgressSnapshot: Sendable, Equatable {
    /// Steps completed so far.
    public var step: Int
    /// Steps the run will take in total; zero or negative when unknown (no percentage or ETA).
    public var totalSteps: Int
    /// A short description of the current hyperparameters, usually from
    /// ``LambdaSummary/describe(_:)``; empty to leave it out.
    public var lambdaSummary: String
    /// The latest training loss, if one is known.
    public var trainLoss: Double?
    /// The latest validation loss, if one is known.
    public var validLoss: Double?
    /// Throughput measured by the caller. When `nil`, ``ProgressLine`` estimates it from the
    /// steps reported since its first update and its clock.
    public var stepsPerSecond: Double?
    /// Free text appended at the end of the line, e.g. `workers 8/8`.
    public var extra: String?

    /// Creates a snapshot; everything but the step counts is optional.
    public init(
        step: Int,
        totalSteps: Int,
        lambdaSummary: String = "",
        trainLoss: Double? = nil,
        validLoss: Double? = nil,
        stepsPerSecond: Double? = nil,
        extra: String? = nil
    ) {
        self.step = step
        self.totalSteps = totalSteps
        self.lambdaSummary = lambdaSummary
        self.trainLoss = trainLoss
        self.validLoss = validLoss
        self.stepsPerSecond = stepsPerSecond
        self.extra = extra
    }
}
