@preconcurrency import Glibc

/// A failed system call in the telemetry layer: opening or writing a metrics file, or
/// resolving and binding the Prometheus endpoint.
///
/// Telemetry errors are never fatal to training by themselves; callers decide whether a lost
/// metrics file is worth stopping a run for.
public struct TelemetryError: Error, Sendable, Equatable, CustomStringConvertible {
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

extension TelemetryError {
    /// `record`'s JSON text, or an `encode` error on `subject` (JSONEncoder refuses only what
    /// cannot be JSON, e.g. a non-finite number nested inside a Codable value).
    static func encoding(_ record: JSONRecord, pretty: Bool, subject: String) throws(TelemetryError) -> String {
        do {
            return try record.encoded(pretty: pretty)
        } catch {
            throw TelemetryError(operation: "encode", subject: subject, code: EINVAL, reason: String(describing: error))
        }
    }
}
