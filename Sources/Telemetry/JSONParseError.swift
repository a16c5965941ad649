/// Why a text could not be parsed as JSON, and where.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was wrong, e.g. `expected ':' after object key`.
    public let message: String
    /// Byte offset into the UTF-8 input where the problem was found.
    public let offset: Int

    /// Creates a parse error at `offset` (a UTF-8 byte offset).
    public init(message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }

    /// `message at byte N`.
    public var description: String { "\(message) at byte \(offset)" }
}
