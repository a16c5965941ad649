/// A histogram in TensorBoard's `HistogramProto` form.
///
/// Bucket `i` counts the values `v` with `bucketLimits[i − 1] ≤ v < bucketLimits[i]` (the first
/// bucket is open below), as in TensorFlow. The buckets are equal-width between the smallest
/// and largest value rather than TensorFlow's fixed ±1e−12·1.1ᵏ ladder: that ladder is 10 %
/// wide at every scale, so components of λ̂ that differ by a few hundredths around −3.4 would
/// all land in one bucket and TensorBoard would draw a single block. The last limit is
/// `Double.greatestFiniteMagnitude` (so the largest value has a bucket); TensorBoard replaces
/// the outer edges by `min` and `max` when it draws.
public struct TensorBoardHistogram: Sendable, Equatable {
    /// The smallest value.
    public var min: Double
    /// The largest value.
    public var max: Double
    /// How many values.
    public var count: Double
    /// The sum of the values.
    public var sum: Double
    /// The sum of their squares.
    public var sumOfSquares: Double
    /// Right edges of the buckets, increasing.
    public var bucketLimits: [Double]
    /// Values per bucket, parallel to ``bucketLimits``.
    public var bucketCounts: [Double]

    /// Every field given explicitly.
    public init(min: Double, max: Double, count: Double, sum: Double, sumOfSquares: Double,
                bucketLimits: [Double], bucketCounts: [Double]) {
        precondition(bucketLimits.count == bucketCounts.count,
                     "histogram has \(bucketLimits.count) bucket limits but \(bucketCounts.count) counts")
        self.min = min
        self.max = max
        self.count = count
        self.sum = sum
        self.sumOfSquares = sumOfSquares
        self.bucketLimits = bucketLimits
        self.bucketCounts = bucketCounts
    }

    /// The histogram of the finite elements of `values` in `bucketCount` equal-width buckets
    /// spanning them (one bucket when they are all equal); `nil` when there are none (NaN and
    /// ±∞ have no bucket, and TensorBoard cannot draw an empty histogram).
    public init?(values: some Sequence<Double>, bucketCount: Int = 30) {
        precondition(bucketCount >= 1, "histogram needs at least one bucket, got \(bucketCount)")
        let finite = values.filter(\.isFinite)
        guard let low = finite.min(), let high = finite.max() else { return nil }
        // One bucket when all values are equal or their range overflows a double.
        let k = high > low && (high - low).isFinite ? bucketCount : 1
        let width = (high - low) / Double(k)
        var limits = (1..<k).map { low + width * Double($0) }
        limits.append(.greatestFiniteMagnitude)
        var counts = [Double](repeating: 0, count: k)
        for v in finite { counts[Self.bucketIndex(of: v, limits: limits)] += 1 }
        self.init(min: low, max: high, count: Double(finite.count), sum: finite.reduce(0, +),
                  sumOfSquares: finite.reduce(0) { $0 + $1 * $1 }, bucketLimits: limits, bucketCounts: counts)
    }

    /// The index of the first limit greater than `value` (C++ `std::upper_bound`), clamped to
    /// the last bucket.
    static func bucketIndex(of value: Double, limits: [Double]) -> Int {
        var low = 0, high = limits.count
        while low < high {
            let mid = (low + high) / 2
            if limits[mid] <= value { low = mid + 1 } else { high = mid }
        }
        return Swift.min(low, limits.count - 1)
    }
}
