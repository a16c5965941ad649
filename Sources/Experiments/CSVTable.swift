import Foundation

/// A table of numbers and labels written as CSV (RFC 4180: comma-separated, a header row,
/// fields with commas, quotes or line breaks quoted). Non-finite numbers are written as empty
/// fields, which pandas and matplotlib's loaders read as missing.
public struct CSVTable: Sendable, Equatable {
    /// One cell.
    public enum Cell: Sendable, Equatable {
        case number(Double)
        case integer(Int)
        case text(String)
        case missing
    }

    /// Column names.
    public let columns: [String]
    /// Rows, each with `columns.count` cells.
    public private(set) var rows: [[Cell]] = []

    /// An empty table with these columns.
    public init(columns: [String]) {
        precondition(!columns.isEmpty, "CSVTable: no columns")
        self.columns = columns
    }

    /// Appends a row; it must have one cell per column.
    public mutating func append(_ row: [Cell]) {
        precondition(row.count == columns.count, "CSVTable: row has \(row.count) cells, table has \(columns.count) columns")
        rows.append(row)
    }

    /// The CSV text.
    public var text: String {
        var out = columns.map(Self.quote).joined(separator: ",") + "\n"
        for row in rows {
            out += row.map(Self.field).joined(separator: ",") + "\n"
        }
        return out
    }

    /// Writes the CSV text to `path` (atomically: a reader never sees half a table).
    public func write(to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    static func field(_ cell: Cell) -> String {
        switch cell {
        case .number(let x): x.isFinite ? Self.number(x) : ""
        case .integer(let i): String(i)
        case .text(let s): quote(s)
        case .missing: ""
        }
    }

    /// Shortest text that reads back as the same Double.
    static func number(_ x: Double) -> String { "\(x)" }

    static func quote(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

extension CSVTable.Cell: ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral, ExpressibleByStringLiteral {
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(integerLiteral value: Int) { self = .integer(value) }
    public init(stringLiteral value: String) { self = .text(value) }
}

extension CSVTable {
    /// The `secondsColumn` value of the first row whose `valueColumn` is a number at most
    /// `target` (nil when no row gets there).
    func firstSeconds(reaching target: Double, secondsColumn: String = "seconds", valueColumn: String = "valid_loss") -> Double? {
        guard let si = columns.firstIndex(of: secondsColumn), let vi = columns.firstIndex(of: valueColumn) else { return nil }
        func value(_ c: Cell) -> Double? {
            switch c {
            case .number(let x): x
            case .integer(let n): Double(n)
            default: nil
            }
        }
        for row in rows {
            if let v = value(row[vi]), v <= target, let s = value(row[si]) { return s }
        }
        return nil
    }
}
