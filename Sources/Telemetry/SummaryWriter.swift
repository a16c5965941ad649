@preconcurrency import Glibc
import SystemIO

/// Writes the end-of-run summary (`lambda_hat`, `valid_loss`, `test_loss`, `steps`,
/// `wall_seconds`, …) as pretty-printed JSON, atomically.
public enum SummaryWriter {
    /// Writes `record` as indented JSON followed by a newline to `path`, replacing any existing
    /// file atomically.
    ///
    /// The text goes to a temporary file in the same directory, which is `fsync`ed and then
    /// `rename`d over `path`, and the directory is `fsync`ed. A reader therefore sees either the
    /// old summary or the complete new one, never a partial file, even after a crash. Missing
    /// parent directories are created. Non-finite doubles are written as `null`.
    public static func write(_ record: JSONRecord, to path: String) throws(TelemetryError) {
        let text = try TelemetryError.encoding(record, pretty: true, subject: path) + "\n"
        let directory = SystemCall.parent(of: path)
        try SystemCall.makeDirectories(directory)
        let name = SystemCall.lastComponent(of: path)
        let temporary = (directory == "/" ? "" : directory) + "/.\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"

        let fd = try SystemCall.check("open", temporary) {
            open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        }
        do {
            try SystemCall.writeAll(fd, text, subject: temporary)
            try SystemCall.check("fsync", temporary) { fsync(fd) }
        } catch {
            _ = Glibc.close(fd)
            unlink(temporary)
            throw error
        }
        do {
            try SystemCall.close(fd, subject: temporary)
            try SystemCall.check("rename", "\(temporary) -> \(path)") { rename(temporary, path) }
        } catch {
            unlink(temporary)
            throw error
        }
        // Make the rename itself durable. Some filesystems refuse fsync on a directory; the
        // file is already in place by then, so that is not worth failing the run for.
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            _ = fsync(directoryFD)
            _ = Glibc.close(directoryFD)
        }
    }
}
