/// A JSON value with object keys kept in insertion order.
///
/// Built for metrics records: `["step": 120, "train_loss": .double(loss)]` encodes as
/// `{"step":120,"train_loss":0.25}` with keys in the order written. Integers and doubles are
/// distinct cases so that a step count round-trips as an integer.
///
/// JSON has no NaN or infinity: a non-finite ``double(_:)`` is **encoded as `null`**. A
/// diverged loss therefore reads back as ``null``, not as a number.
///
/// Equality is structural and order-sensitive for objects (`{"a":1,"b":2}` differs from
/// `{"b":2,"a":1}`), and follows IEEE rules for doubles (`.double(.nan) != .double(.nan)`).
public enum JSONValue: Sendable, Equatable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// An integer number.
    case int(Int)
    /// A floating-point number; non-finite values encode as `null`.
    case double(Double)
    /// A string; encoded with JSON escapes for quotes, backslashes and control characters.
    case string(String)
    /// An array of values.
    case array([JSONValue])
    /// An object whose members keep the order in which they were given.
    case object([(key: String, value: JSONValue)])

    /// Structural equality; object members are compared in order.
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.double(a), .double(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }
}

// MARK: - Convenience initializers and accessors

extension JSONValue {
    /// Wraps an optional double: `nil` becomes ``null``.
    public init(_ value: Double?) {
        self = value.map(JSONValue.double) ?? .null
    }

    /// Wraps a list of doubles as an array (non-finite entries will encode as `null`).
    public init(_ values: [Double]) {
        self = .array(values.map(JSONValue.double))
    }

    /// The member named `key` of an object (the last one if the key is repeated), else `nil`.
    public subscript(key: String) -> JSONValue? {
        guard case let .object(members) = self else { return nil }
        return members.last(where: { $0.key == key })?.value
    }

    /// The element at `index` of an array, or `nil` if this is not an array or the index is out of range.
    public subscript(index: Int) -> JSONValue? {
        guard case let .array(elements) = self, elements.indices.contains(index) else { return nil }
        return elements[index]
    }

    /// The numeric value of an ``int(_:)`` or ``double(_:)``, else `nil`.
    public var doubleValue: Double? {
        switch self {
        case let .double(value): return value
        case let .int(value): return Double(value)
        default: return nil
        }
    }

    /// The value of an ``int(_:)``, or of a ``double(_:)`` that is exactly an integer; else `nil`.
    public var intValue: Int? {
        switch self {
        case let .int(value): return value
        case let .double(value): return Int(exactly: value)
        default: return nil
        }
    }

    /// The value of a ``string(_:)``, else `nil`.
    public var stringValue: String? {
        if case let .string(value) = self { return value }
        return nil
    }

    /// The value of a ``bool(_:)``, else `nil`.
    public var boolValue: Bool? {
        if case let .bool(value) = self { return value }
        return nil
    }

    /// The elements of an ``array(_:)``, else `nil`.
    public var arrayValue: [JSONValue]? {
        if case let .array(value) = self { return value }
        return nil
    }

    /// The members of an ``object(_:)`` in order, else `nil`.
    public var objectMembers: [(key: String, value: JSONValue)]? {
        if case let .object(value) = self { return value }
        return nil
    }

    /// Whether this is ``null``.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

// MARK: - Literals

extension JSONValue: ExpressibleByNilLiteral {
    /// `nil` is ``null``.
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue: ExpressibleByBooleanLiteral {
    /// A boolean literal is ``bool(_:)``.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension JSONValue: ExpressibleByIntegerLiteral {
    /// An integer literal is ``int(_:)``.
    public init(integerLiteral value: Int) { self = .int(value) }
}

extension JSONValue: ExpressibleByFloatLiteral {
    /// A floating-point literal is ``double(_:)``.
    public init(floatLiteral value: Double) { self = .double(value) }
}

extension JSONValue: ExpressibleByStringLiteral {
    /// A string literal is ``string(_:)``.
    public init(stringLiteral value: String) { self = .string(value) }
}

extension JSONValue: ExpressibleByArrayLiteral {
    /// An array literal is ``array(_:)``.
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
}

extension JSONValue: ExpressibleByDictionaryLiteral {
    /// A dictionary literal is ``object(_:)`` with members in the order written.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(elements.map { (key: $0.0, value: $0.1) })
    }
}
