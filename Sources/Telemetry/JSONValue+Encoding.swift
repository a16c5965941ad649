extension JSONValue {
    /// The JSON text of this value.
    ///
    /// - Parameter pretty: `false` (the default) gives compact single-line output, suitable for
    ///   JSON Lines; `true` gives two-space indented output with `"key": value` members.
    /// - Returns: Valid JSON. Non-finite doubles are written as `null`; finite doubles use the
    ///   shortest text that reads back to the same value and always contain a `.` or exponent,
    ///   so they parse back as ``double(_:)``.
    public func encoded(pretty: Bool = false) -> String {
        var output = ""
        encode(into: &output, pretty: pretty, depth: 0)
        return output
    }

    private func encode(into output: inout String, pretty: Bool, depth: Int) {
        switch self {
        case .null:
            output += "null"
        case let .bool(value):
            output += value ? "true" : "false"
        case let .int(value):
            output += String(value)
        case let .double(value):
            output += Self.numberText(value)
        case let .string(value):
            Self.appendQuoted(value, to: &output)
        case let .array(elements):
            if elements.isEmpty { output += "[]"; return }
            output += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { output += "," }
                if pretty { Self.newline(&output, depth: depth + 1) }
                element.encode(into: &output, pretty: pretty, depth: depth + 1)
            }
            if pretty { Self.newline(&output, depth: depth) }
            output += "]"
        case let .object(members):
            if members.isEmpty { output += "{}"; return }
            output += "{"
            for (index, member) in members.enumerated() {
                if index > 0 { output += "," }
                if pretty { Self.newline(&output, depth: depth + 1) }
                Self.appendQuoted(member.key, to: &output)
                output += pretty ? ": " : ":"
                member.value.encode(into: &output, pretty: pretty, depth: depth + 1)
            }
            if pretty { Self.newline(&output, depth: depth) }
            output += "}"
        }
    }

    private static func newline(_ output: inout String, depth: Int) {
        output += "\n"
        output += String(repeating: "  ", count: depth)
    }

    /// JSON number text for `value`, or `null` when it is NaN or infinite.
    static func numberText(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        // Swift's description is the shortest round-tripping form ("0.1", "1e-05", "1.0"),
        // and every finite form it produces is valid JSON number syntax.
        return value.description
    }

    /// Appends `text` as a quoted JSON string. Only what JSON requires is escaped (quote,
    /// backslash, U+0000–U+001F) plus U+2028/U+2029 so the line is also valid JavaScript;
    /// everything else is written as UTF-8.
    static func appendQuoted(_ text: String, to output: inout String) {
        output += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{08}": output += "\\b"
            case "\u{0C}": output += "\\f"
            case "\u{00}"..."\u{1F}", "\u{2028}", "\u{2029}":
                let hex = String(scalar.value, radix: 16, uppercase: false)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }
}

extension JSONValue: CustomStringConvertible {
    /// The compact JSON text, as from ``encoded(pretty:)``.
    public var description: String { encoded() }
}
