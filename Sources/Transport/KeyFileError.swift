/// A key file (or authorized-keys file) that could not be read, written or understood.
/// Messages name the file and line, never a key's secret half.
public struct KeyFileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file involved.
    public let path: String
    /// The 1-based line, when the problem is on one line.
    public let line: Int?
    /// What is wrong.
    public let reason: String

    /// Creates an error.
    public init(path: String, line: Int? = nil, reason: String) {
        self.path = path
        self.line = line
        self.reason = reason
    }

    /// "path:line: reason".
    public var description: String {
        if let line { return "\(path):\(line): \(reason)" }
        return "\(path): \(reason)"
    }
}
