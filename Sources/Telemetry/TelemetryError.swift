import Foundation
import SystemIO

/// A failed system call in the telemetry layer: opening or writing a metrics file, or
/// resolving and binding the Prometheus endpoint. It is the shared ``SystemCallError``, so
/// telemetry reports a failed call the same way every other module does.
///
/// Telemetry errors are never fatal to training by themselves; callers decide whether a lost
/// metrics file is worth stopping a run for.
public typealias TelemetryError = SystemCallError

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
