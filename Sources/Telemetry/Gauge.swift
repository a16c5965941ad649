/// A handle to one gauge series in a ``MetricsRegistry``: a value that goes up and down, such
/// as connected workers or the current validation loss. Copies refer to the same series.
public struct Gauge: Sendable {
    let cell: MetricCell

    /// Sets the gauge to `value`.
    public func set(_ value: Double) {
        cell.update { $0 = value }
    }

    /// Adds `amount` (which may be negative) to the gauge.
    public func inc(by amount: Double = 1) {
        cell.update { $0 += amount }
    }

    /// Subtracts `amount` from the gauge.
    public func dec(by amount: Double = 1) {
        cell.update { $0 -= amount }
    }

    /// The current value.
    public var value: Double {
        cell.read()
    }
}
