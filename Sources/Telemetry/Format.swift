import Foundation

/// Number and duration formatting shared by the human-facing outputs.
enum Format {
    /// `value` with exactly `digits` decimals; `nan`, `inf`, `-inf` for non-finite values.
    static func fixed(_ value: Double, digits: Int) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        return String(format: "%.\(digits)f", value)
    }

    /// `value` with four significant digits (`0.4321`, `2.303`, `1.2e-05`); `nan`, `inf`, `-inf`
    /// for non-finite values.
    static func significant(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        return String(format: "%.4g", value)
    }

    /// A duration as `42s`, `5m09s` or `2h05m`; `?` when negative or not finite.
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        if seconds >= 100 * 3600 { return "\(Int(seconds / 3600))h" }
        let total = Int(seconds.rounded())
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m" + twoDigits(total % 60) + "s" }
        return "\(total / 3600)h" + twoDigits(total % 3600 / 60) + "m"
    }

    private static func twoDigits(_ value: Int) -> String {
        value < 10 ? "0\(value)" : "\(value)"
    }
}
