/// Images as a sparse matrix in compressed sparse row (CSR) form, one image per row, pixel
/// values scaled to `[0, 1]` (byte/255). MNIST is about 81% zeros, and the input layer of
/// the training code multiplies this form directly.
///
/// Row `r`'s non-zeros are `colIndex[rowStart[r] ..< rowStart[r+1]]` with values
/// `values[rowStart[r] ..< rowStart[r+1]]`, columns ascending.
public struct CSRImages: Sendable {
    /// Number of images.
    public let rows: Int
    /// Pixels per image (784 for MNIST).
    public let cols: Int
    /// Offsets into `colIndex`/`values`: `rows + 1` entries, starting at 0, non-decreasing.
    public let rowStart: [Int32]
    /// Column of each stored value, ascending within a row.
    public let colIndex: [Int32]
    /// The non-zero pixel values, byte/255.
    public let values: [Float]

    /// Wraps CSR arrays, checking their structure (a programmer error when broken).
    public init(rows: Int, cols: Int, rowStart: [Int32], colIndex: [Int32], values: [Float]) {
        precondition(rows >= 0 && cols >= 0, "CSRImages: negative shape \(rows)×\(cols)")
        precondition(rowStart.count == rows + 1, "CSRImages: rowStart has \(rowStart.count) entries, expected \(rows + 1)")
        precondition(rowStart.first == 0, "CSRImages: rowStart[0] = \(rowStart[0]), expected 0")
        precondition(Int(rowStart[rows]) == colIndex.count && colIndex.count == values.count,
                     "CSRImages: rowStart[\(rows)] = \(rowStart[rows]), colIndex \(colIndex.count), values \(values.count)")
        self.rows = rows
        self.cols = cols
        self.rowStart = rowStart
        self.colIndex = colIndex
        self.values = values
    }

    /// Number of stored (non-zero) pixels.
    public var nonZeroCount: Int { values.count }

    /// Fraction of pixels that are non-zero (≈ 0.19 for MNIST).
    public var density: Double {
        rows * cols == 0 ? 0 : Double(nonZeroCount) / Double(rows * cols)
    }

    /// The rows `range` as a new matrix with offsets rebased to 0.
    public func slice(_ range: Range<Int>) -> CSRImages {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows,
                     "CSRImages.slice: \(range) out of 0..<\(rows)")
        let lo = Int(rowStart[range.lowerBound]), hi = Int(rowStart[range.upperBound])
        let base = rowStart[range.lowerBound]
        return CSRImages(
            rows: range.count, cols: cols,
            rowStart: rowStart[range.lowerBound ... range.upperBound].map { $0 - base },
            colIndex: Array(colIndex[lo ..< hi]),
            values: Array(values[lo ..< hi]))
    }

    /// Row `row` as a dense vector of `cols` values (zeros filled in). Meant for tests and
    /// inspection; training consumes the sparse form.
    public func dense(row: Int) -> [Float] {
        precondition(row >= 0 && row < rows, "CSRImages.dense: row \(row) out of 0..<\(rows)")
        var out = [Float](repeating: 0, count: cols)
        for k in Int(rowStart[row]) ..< Int(rowStart[row + 1]) {
            out[Int(colIndex[k])] = values[k]
        }
        return out
    }
}
