import Foundation

/// A JSON object assembled field by field — a metrics line, a summary — and written by
/// Foundation's `JSONEncoder`.
///
/// The records this project writes have a shape that depends on the run (λ̂'s components only
/// when there are at most 16, the full-split losses only at `--eval-every`, a command's extra
/// summary fields), so a record is a list of named `Encodable` values rather than one struct
/// per shape. Nothing here formats or parses JSON: `JSONEncoder` does (keys sorted, so the
/// output does not depend on hashing), and readers use `JSONDecoder`, which reads every
/// `Double` back bit for bit.
///
/// JSON has no NaN or infinity: a non-finite `Double` or `Float` (alone, optional, or in an
/// array) is written as `null`, so a diverged loss reads back as `null`.
public struct JSONRecord: Encodable, Sendable {
    /// A field's value: any `Encodable` (numbers, strings, arrays, optionals, nested records,
    /// a Codable configuration).
    public typealias Value = any Encodable & Sendable

    /// The fields in the order they were added. A repeated key keeps its last value.
    public var fields: [(key: String, value: Value)]

    /// A record with `fields`.
    public init(_ fields: [(String, Value)] = []) {
        self.fields = fields.map { (key: $0.0, value: $0.1) }
    }

    /// Adds `value` under `key`.
    public mutating func append(_ key: String, _ value: Value) {
        fields.append((key: key, value: value))
    }

    /// Adds every field of `more`.
    public mutating func append(contentsOf more: [(String, Value)]) {
        fields += more.map { (key: $0.0, value: $0.1) }
    }

    private struct Key: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    /// Encodes the fields as one object, non-finite floating-point values as `null`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        for (key, value) in fields {
            try container.encode(FiniteOrNull(value), forKey: Key(stringValue: key))
        }
    }

    /// The record as JSON text: compact on one line (a JSON Lines record), or indented.
    public func encoded(pretty: Bool = false) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
                                          : [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}

/// One field value with non-finite `Double`s and `Float`s replaced by `null` (JSONEncoder
/// would otherwise refuse them).
private struct FiniteOrNull: Encodable {
    let value: any Encodable

    init(_ value: any Encodable) { self.value = value }

    func encode(to encoder: any Encoder) throws {
        switch value {
        case let x as Double: try Self.number(x, encoder)
        case let x as Double?: try Self.number(x, encoder)
        case let x as Float: try Self.number(Double(x), encoder)
        case let x as [Double]: try x.map { $0.isFinite ? $0 : nil }.encode(to: encoder)
        case let x as [Double?]: try x.map { $0.flatMap { $0.isFinite ? $0 : nil } }.encode(to: encoder)
        default: try value.encode(to: encoder)
        }
    }

    private static func number(_ x: Double?, _ encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let x, x.isFinite { try container.encode(x) } else { try container.encodeNil() }
    }
}
