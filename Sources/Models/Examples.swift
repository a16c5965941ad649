import Linalg

/// Labelled examples with sparse inputs (CSR rows), as the elementary model consumes them.
///
/// MNIST digits are ~81 % zeros, so the input layer is computed from the nonzeros only
/// (see `MLP`); minibatches are index lists into these rows, never copies.
public struct Examples<T: BLASScalar>: Sendable {
    /// Number of examples.
    public let count: Int
    /// Input dimension (784 for MNIST).
    public let inputSize: Int
    /// CSR row starts, `count + 1` entries.
    public let rowStart: [Int32]
    /// CSR column of each nonzero.
    public let colIndex: [Int32]
    /// CSR value of each nonzero.
    public let values: [T]
    /// Class label of each example, `0..<classes`.
    public let labels: [UInt8]
    /// `true` when every row's columns are strictly ascending (nonzero order is column
    /// order), which lets the input layer visit a group of rows column by column.
    public let columnsAscend: Bool

    /// Wraps CSR arrays; checks their consistency.
    public init(inputSize: Int, rowStart: [Int32], colIndex: [Int32], values: [T], labels: [UInt8]) {
        precondition(rowStart.count == labels.count + 1, "Examples: \(rowStart.count) row starts for \(labels.count) labels")
        precondition(colIndex.count == values.count, "Examples: \(colIndex.count) columns for \(values.count) values")
        precondition(Int(rowStart.last ?? 0) == values.count, "Examples: last row start \(rowStart.last ?? 0) != nnz \(values.count)")
        precondition(colIndex.allSatisfy { $0 >= 0 && Int($0) < inputSize }, "Examples: column index out of 0..<\(inputSize)")
        self.count = labels.count
        self.inputSize = inputSize
        self.rowStart = rowStart
        self.colIndex = colIndex
        self.values = values
        self.labels = labels
        var ascending = true
        for r in 0..<labels.count {
            let a = Int(rowStart[r]), b = Int(rowStart[r + 1])
            if a < b { for p in (a + 1)..<b where colIndex[p] <= colIndex[p - 1] { ascending = false } }
        }
        columnsAscend = ascending
    }

    /// Builds examples from dense rows (tests and small problems).
    public init(dense rows: [[T]], labels: [UInt8]) {
        precondition(rows.count == labels.count, "Examples: \(rows.count) rows for \(labels.count) labels")
        let d = rows.first?.count ?? 0
        var starts: [Int32] = [0], cols: [Int32] = [], vals: [T] = []
        for r in rows {
            precondition(r.count == d, "Examples: ragged rows")
            for (j, v) in r.enumerated() where v != 0 { cols.append(Int32(j)); vals.append(v) }
            starts.append(Int32(vals.count))
        }
        self.init(inputSize: d, rowStart: starts, colIndex: cols, values: vals, labels: labels)
    }

    /// The same examples in another scalar type.
    public func converted<U: BLASScalar>(to: U.Type = U.self) -> Examples<U> {
        Examples<U>(inputSize: inputSize, rowStart: rowStart, colIndex: colIndex,
                    values: values.map { U($0) }, labels: labels)
    }
}
