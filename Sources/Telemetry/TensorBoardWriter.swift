import Foundation
@preconcurrency import Glibc
import SystemIO

/// Writes a TensorBoard event file: TFRecord-framed `Event` messages that
/// `tensorboard --logdir DIR` (and its `EventAccumulator`) reads.
///
/// Each writer creates a new file `events.out.tfevents.<unix seconds>.<hostname>.<pid>` in its
/// directory and never touches existing ones; TensorBoard merges all the files of a directory
/// into one run, ordered by name. The first record carries `file_version: "brain.Event:2"`.
///
/// Each ``write(step:values:wallTime:)`` frames one `Event` holding all of the step's values and
/// hands it to the kernel in one `write(2)` before returning; nothing is buffered in the
/// process, so a crash loses at most the step being written. ``close()`` `fsync`s the file.
///
/// Call ``close()`` when done; in debug builds, dropping an open writer is an assertion failure.
public final class TensorBoardWriter: @unchecked Sendable {
    // @unchecked Sendable: the only mutable state is `fd`, and every access to it holds
    // `lock`, so records from different threads never interleave.

    /// The directory the file is in.
    public let directory: String
    /// The event file being written.
    public let path: String

    private let lock = NSLock()
    private var fd: Int32

    /// Creates `directory` if needed, creates a new event file in it and writes the
    /// `file_version` record.
    ///
    /// - Parameters:
    ///   - directory: The log directory, e.g. `runs/mnist/tb`.
    ///   - restartStep: For a run resumed from a checkpoint, the first step it will write;
    ///     a `SessionLog START` record at that step makes TensorBoard discard what earlier files
    ///     recorded from that step on (steps logged after the checkpoint by the interrupted run).
    ///   - wallTime: Seconds since the Unix epoch, for the file name and the first records.
    /// - Throws: ``TelemetryError`` when the directory cannot be created or the file cannot be
    ///   created or written (e.g. `open runs/tb/events.out.tfevents…: Permission denied (13)`).
    public init(directory: String, restartStep: Int64? = nil, wallTime: Double = TensorBoardWriter.now()) throws(TelemetryError) {
        self.directory = directory
        try SystemCall.makeDirectories(directory)
        let base = (directory.hasSuffix("/") ? directory : directory + "/")
            + "events.out.tfevents.\(Int64(wallTime.rounded(.down))).\(Self.hostname()).\(getpid())"
        (fd, path) = try Self.createFile(base)
        var records: [UInt8] = []
        TFRecord.append(TensorBoardEvent.header(wallTime: wallTime), to: &records)
        if let restartStep {
            TFRecord.append(TensorBoardEvent.restart(wallTime: wallTime, step: restartStep), to: &records)
        }
        do {
            try writeRecords(records)
        } catch {
            _ = Glibc.close(fd)
            fd = -1
            throw error
        }
    }

    deinit {
        assert(fd < 0, "TensorBoardWriter for \(path) was not closed")
        if fd >= 0 { _ = Glibc.close(fd) }
    }

    /// Whether ``close()`` has not been called yet.
    public var isOpen: Bool {
        lock.withLock { fd >= 0 }
    }

    /// Appends one `Event` at `step` whose summary holds `values`, and hands it to the kernel.
    /// Does nothing when `values` is empty.
    ///
    /// - Precondition: the writer is open.
    public func write(step: Int64, values: [TensorBoardValue], wallTime: Double = TensorBoardWriter.now()) throws(TelemetryError) {
        guard !values.isEmpty else { return }
        try writeRecords(TFRecord.frame(TensorBoardEvent.summary(wallTime: wallTime, step: step, values: values)))
    }

    /// `fsync`s and closes the file. Calling it again does nothing.
    public func close() throws(TelemetryError) {
        lock.lock()
        defer { lock.unlock() }
        guard fd >= 0 else { return }
        let closing = fd
        fd = -1
        let synced = fsync(closing) == 0 ? 0 : errno
        try SystemCall.close(closing, subject: path)
        if synced != 0 { throw TelemetryError(operation: "fsync", subject: path, code: synced) }
    }

    /// Seconds since the Unix epoch (`CLOCK_REALTIME`), TensorBoard's `wall_time`.
    public static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    private func writeRecords(_ bytes: [UInt8]) throws(TelemetryError) {
        lock.lock()
        defer { lock.unlock() }
        precondition(fd >= 0, "TensorBoardWriter.write after close() for \(path)")
        var failure: TelemetryError?
        bytes.withUnsafeBytes { raw in
            do throws(TelemetryError) {
                try SystemCall.writeAll(fd, raw, subject: path)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
    }

    /// Creates `base`, or `base.1`, `base.2`, … when another writer of this process already
    /// created that name in the same second.
    private static func createFile(_ base: String) throws(TelemetryError) -> (Int32, String) {
        var attempt = 0
        while true {
            let name = attempt == 0 ? base : base + ".\(attempt)"
            do throws(SystemCallError) {
                return (try SystemCall.check("open", name) { open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644) }, name)
            } catch let error where error.code == EEXIST && attempt < 1000 {
                attempt += 1
            }
        }
    }

    /// This machine's name with `/` (impossible in practice) replaced, for the file name.
    private static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name.replacingOccurrences(of: "/", with: "_")
    }
}
