/// One line of `hypertrain unrolled --metrics`: an outer iteration (JSON keys in snake_case;
/// a non-finite loss is `null`).
public struct UnrolledMetricsLine: Encodable, Sendable {
    public let step: Int
    public let elapsedSeconds: Double
    public let innerSteps: Int
    public let validLoss: Double
    public let hypergradientNorm: Double
    /// λ̂ in full when it has at most 16 components.
    public let lambdaHat: [Double]?
    public let lambdaHatMean: Double

    public init(report r: UnrolledReport, elapsedSeconds: Double) {
        step = r.iteration
        self.elapsedSeconds = elapsedSeconds
        innerSteps = r.innerSteps
        validLoss = r.validLoss
        hypergradientNorm = r.hypergradientNorm
        lambdaHat = r.lambdaHat.count <= 16 ? r.lambdaHat : nil
        lambdaHatMean = r.lambdaHat.reduce(0, +) / Double(max(r.lambdaHat.count, 1))
    }

    enum CodingKeys: String, CodingKey {
        case step, elapsedSeconds = "elapsed_seconds", innerSteps = "inner_steps", validLoss = "valid_loss"
        case hypergradientNorm = "hypergradient_norm", lambdaHat = "lambda_hat", lambdaHatMean = "lambda_hat_mean"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(step, forKey: .step)
        try c.encode(elapsedSeconds, forKey: .elapsedSeconds)
        try c.encode(innerSteps, forKey: .innerSteps)
        try c.encode(finite(validLoss), forKey: .validLoss)
        try c.encode(finite(hypergradientNorm), forKey: .hypergradientNorm)
        try c.encodeIfPresent(lambdaHat?.map(finite), forKey: .lambdaHat)
        try c.encode(finite(lambdaHatMean), forKey: .lambdaHatMean)
    }
}

/// The summary of `hypertrain unrolled --summary`.
public struct UnrolledSummary: Encodable, Sendable {
    public let result: UnrolledResult
    public let wallSeconds: Double
    public let config: UnrolledConfig

    public init(result: UnrolledResult, wallSeconds: Double, config: UnrolledConfig) {
        self.result = result
        self.wallSeconds = wallSeconds
        self.config = config
    }

    enum CodingKeys: String, CodingKey {
        case lambdaHat = "lambda_hat", trainLoss = "train_loss", validLoss = "valid_loss", testLoss = "test_loss"
        case testError = "test_error", steps, innerSteps = "inner_steps", wallSeconds = "wall_seconds"
        case stepsPerSecond = "steps_per_second", method, config
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        let e = result.evaluation
        try c.encode(result.lambdaHat.map(finite), forKey: .lambdaHat)
        try c.encode(finite(e.trainLoss), forKey: .trainLoss)
        try c.encode(finite(e.validLoss), forKey: .validLoss)
        try c.encode(finite(e.testLoss), forKey: .testLoss)
        try c.encode(finite(e.testError), forKey: .testError)
        try c.encode(result.iterations, forKey: .steps)
        try c.encode(result.innerSteps, forKey: .innerSteps)
        try c.encode(wallSeconds, forKey: .wallSeconds)
        try c.encode(Double(result.iterations) / max(wallSeconds, 1e-9), forKey: .stepsPerSecond)
        try c.encode("unrolled", forKey: .method)
        try c.encode(config, forKey: .config)
    }
}

/// JSON has no NaN or infinity: those are written as `null`.
private func finite(_ x: Double) -> Double? { x.isFinite ? x : nil }
