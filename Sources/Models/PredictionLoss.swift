/// The prediction loss `L_pred` on one-hot targets (`--loss mse|gaussian`).
public enum PredictionLoss: String, Sendable, Codable, CaseIterable {
    /// Mean over batch and outputs of `(f(x) − t)²`.
    case mse
    /// The authors' `−mean log N(f(x); t, 0.1²)` = `50·MSE − 1.3836…` (per output).
    case gaussian

    /// Multiplier on the MSE.
    public var scale: Double { self == .mse ? 1 : 50 }
    /// Additive constant: `log(0.1·√(2π))` for the Gaussian variant.
    public var offset: Double { self == .mse ? 0 : -1.3836465597893728 }

    /// Converts an MSE value into this loss.
    public func fromMSE(_ mse: Double) -> Double { scale * mse + offset }
}
