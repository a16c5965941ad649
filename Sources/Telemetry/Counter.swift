/// A handle to one counter series in a ``MetricsRegistry``: a value that only goes up, such as
/// gradients applied or bytes received. Copies refer to the same series.
public struct Counter: Sendable {
    let cell: MetricCell

    /// Adds `amount` to the counter.
    ///
    /// - Precondition: `amount` is non-negative (counters never decrease).
    public func inc(by amount: Double = 1) {
        precondition(amount >= 0, "counter increment must be non-negative, got \(amount)")
        cell.update { $0 += amount }
    }

    /// The current value.
    public var value: Double {
        cell.read()
    }
}
