import Foundation
@preconcurrency import Glibc
import SystemIO

/// Writes a metrics file in JSON Lines format: one compact JSON value per line, typically one
/// object per logged step.
///
/// Each ``write(_:)`` hands the whole line, newline included, to the kernel in one `write(2)`
/// call before returning; nothing is buffered in the process. A run that is killed therefore
/// leaves only complete lines behind (durability against power loss would need `fsync`, which
/// this type deliberately does not pay for on every step).
///
/// Non-finite doubles are written as `null`; see ``JSONRecord``.
///
/// Call ``close()`` when done; in debug builds, dropping an open writer is an assertion failure.
public final class JSONLinesWriter: @unchecked Sendable {
    // @unchecked Sendable: the only mutable state is `fd`, and every access to it holds
    // `lock`, so whole lines from different threads never interleave.

    /// The file being written.
    public let path: String

    private let lock = NSLock()
    private var fd: Int32

    /// Opens `path` for writing, creating missing parent directories.
    ///
    /// - Parameters:
    ///   - path: The file to write, e.g. `runs/mnist/metrics.jsonl`.
    ///   - append: `false` (the default) truncates an existing file; `true` appends to it, for
    ///     a run resumed from a checkpoint.
    public init(path: String, append: Bool = false) throws(TelemetryError) {
        self.path = path
        try SystemCall.makeDirectories(SystemCall.parent(of: path))
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC)
        fd = try SystemCall.check("open", path) { open(path, flags, 0o644) }
    }

    deinit {
        assert(fd < 0, "JSONLinesWriter for \(path) was not closed")
        if fd >= 0 { _ = Glibc.close(fd) }
    }

    /// Whether ``close()`` has not been called yet.
    public var isOpen: Bool {
        lock.withLock { fd >= 0 }
    }

    /// Appends `record` as one line of compact JSON and hands it to the kernel.
    ///
    /// - Precondition: the writer is open.
    public func write(_ record: JSONRecord) throws(TelemetryError) {
        let line = try TelemetryError.encoding(record, pretty: false, subject: path) + "\n"
        lock.lock()
        defer { lock.unlock() }
        precondition(fd >= 0, "JSONLinesWriter.write after close() for \(path)")
        try SystemCall.writeAll(fd, line, subject: path)
    }

    /// Closes the file. Calling it again does nothing.
    public func close() throws(TelemetryError) {
        lock.lock()
        defer { lock.unlock() }
        guard fd >= 0 else { return }
        let closing = fd
        fd = -1
        try SystemCall.close(closing, subject: path)
    }
}
