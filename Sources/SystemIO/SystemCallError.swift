#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call: which call, on what, and the system's error number and text.
///
/// ``SystemCall`` throws it; each module maps it to its own boundary error where it has one
/// (a checkpoint's `CheckpointError.io`, a key file's `KeyFileError`), or passes it on.
public struct SystemCallError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The operation that failed, usually the name of the system call (`"open"`, `"bind"`).
    public let operation: String
    /// What the operation was applied to: a file path or a `host:port` address.
    public let subject: String
    /// The `errno` value; for `getaddrinfo` failures, its (negative) `EAI_*` code instead.
    public let code: Int32
    /// The system's text for `code` (`strerror` or `gai_strerror`).
    public let reason: String

    /// Creates an error for `operation` on `subject` that failed with `errno` value `code`.
    public init(operation: String, subject: String, code: Int32) {
        self.init(operation: operation, subject: subject, code: code, reason: String(cString: strerror(code)))
    }

    /// Creates an error with an explicit `reason`, for codes that are not `errno` values.
    public init(operation: String, subject: String, code: Int32, reason: String) {
        self.operation = operation
        self.subject = subject
        self.code = code
        self.reason = reason
    }

    /// A one-line description such as `open /runs/a/metrics.jsonl: Permission denied (13)`.
    public var description: String {
        "\(operation) \(subject): \(reason) (\(code))"
    }
}
