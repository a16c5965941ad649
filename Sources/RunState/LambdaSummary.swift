import Foundation

/// Short human-readable descriptions of a hyperparameter vector λ̂ for progress lines and logs.
public enum LambdaSummary {
    /// Describes `lambda` in one short phrase.
    ///
    /// - One value: `λ̂=-1.234`.
    /// - Two or three values: `λ̂=(-1.234, 0.500, 2.000)`.
    /// - More: mean and range, `λ̂ mean -2.10 [-3.40, 0.51] (n=7850)`.
    /// - Empty: `λ̂=()`.
    ///
    /// NaN entries make the mean print as `nan` and are left out of the range, so a diverged
    /// component stays visible without hiding the spread of the others. `symbol` names the
    /// vector (`λ` for a λ that is not the run's λ̂).
    public static func describe(_ lambda: [Double], symbol: String = "λ̂") -> String {
        switch lambda.count {
        case 0:
            return symbol + "=()"
        case 1:
            return symbol + "=" + fixed(lambda[0], digits: 3)
        case 2...3:
            return symbol + "=(" + lambda.map { fixed($0, digits: 3) }.joined(separator: ", ") + ")"
        default:
            var sum = 0.0
            var low = Double.nan
            var high = Double.nan
            for value in lambda {
                sum += value
                // minimum/maximum ignore a quiet NaN operand, so NaN entries drop out of the range.
                low = Double.minimum(low, value)
                high = Double.maximum(high, value)
            }
            let mean = sum / Double(lambda.count)
            return "\(symbol) mean \(fixed(mean, digits: 2)) [\(fixed(low, digits: 2)), \(fixed(high, digits: 2))] (n=\(lambda.count))"
        }
    }

    /// `value` with exactly `digits` decimals; `nan`, `inf`, `-inf` for non-finite values.
    private static func fixed(_ value: Double, digits: Int) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        return String(format: "%.\(digits)f", value)
    }
}
