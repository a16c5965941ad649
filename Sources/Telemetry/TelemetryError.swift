import SystemIO

/// A failed system call in the telemetry layer: opening or writing a metrics file, or
/// resolving and binding the Prometheus endpoint. It is the shared ``SystemCallError``, so
/// telemetry reports a failed call the same way every other module does.
///
/// Telemetry errors are never fatal to training by themselves; callers decide whether a lost
/// metrics file is worth stopping a run for.
public typealias TelemetryError = SystemCallError
