#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one checked path into POSIX for every module that makes file or socket system calls:
/// retries `EINTR` and turns `-1` into a ``SystemCallError`` carrying `errno`.
///
/// A signal (SIGCHLD from a child worker, SIGWINCH, a profiler) interrupts a blocking call
/// with `EINTR`; that must not look like a failed write of a checkpoint or a metrics line.
public enum SystemCall {
    /// Runs `body` until it does not fail with `EINTR`; throws if it returns `-1`.
    @discardableResult
    public static func check<Result: SignedInteger>(
        _ operation: String,
        _ subject: @autoclosure () -> String,
        _ body: () -> Result
    ) throws(SystemCallError) -> Result {
        while true {
            let result = body()
            if result != -1 { return result }
            let code = errno
            if code == EINTR { continue }
            throw SystemCallError(operation: operation, subject: subject(), code: code)
        }
    }

    /// Writes all of `bytes` to the blocking descriptor `fd`, continuing after short writes.
    public static func writeAll(
        _ fd: Int32, _ bytes: UnsafeRawBufferPointer, subject: @autoclosure () -> String
    ) throws(SystemCallError) {
        var offset = 0
        while offset < bytes.count {
            let written = try check("write", subject()) {
                posixWrite(fd, bytes.baseAddress! + offset, min(bytes.count - offset, 1 << 30))
            }
            offset += written
        }
    }

    /// Writes the UTF-8 encoding of `text` to the blocking descriptor `fd`.
    public static func writeAll(_ fd: Int32, _ text: String, subject: @autoclosure () -> String) throws(SystemCallError) {
        var text = text
        // withUTF8 cannot forward a typed error, so carry it out by hand.
        var failure: SystemCallError?
        text.withUTF8 { utf8 in
            do throws(SystemCallError) {
                try writeAll(fd, UnsafeRawBufferPointer(utf8), subject: subject())
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
    }

    /// The whole contents of the file at `path`.
    public static func readFile(_ path: String) throws(SystemCallError) -> [UInt8] {
        let fd = try check("open", path) { open(path, O_RDONLY | O_CLOEXEC) }
        defer { _ = posixClose(fd) }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = try check("read", path) { chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }
            if count == 0 { return contents }
            contents.append(contentsOf: chunk[..<count])
        }
    }

    /// Closes `fd`. `EINTR` from `close` is not retried: on Linux the descriptor is already gone.
    public static func close(_ fd: Int32, subject: @autoclosure () -> String) throws(SystemCallError) {
        if posixClose(fd) == -1 && errno != EINTR {
            throw SystemCallError(operation: "close", subject: subject(), code: errno)
        }
    }

    /// Creates `directory` and any missing parents with mode 0755; existing directories are fine.
    public static func makeDirectories(_ directory: String) throws(SystemCallError) {
        if directory.isEmpty || directory == "/" || directory == "." { return }
        var info = stat()
        if stat(directory, &info) == 0 {
            if (info.st_mode & S_IFMT) == S_IFDIR { return }
            throw SystemCallError(operation: "mkdir", subject: directory, code: ENOTDIR)
        }
        try makeDirectories(parent(of: directory))
        if mkdir(directory, 0o755) == -1 && errno != EEXIST {
            throw SystemCallError(operation: "mkdir", subject: directory, code: errno)
        }
    }

    /// Up to `count` bytes from the start of `fd` (fewer at end of file), read with `pread`.
    public static func readPrefix(_ fd: Int32, count: Int, subject: @autoclosure () -> String) throws(SystemCallError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        var failure: SystemCallError?
        bytes.withUnsafeMutableBytes { buffer in
            do throws(SystemCallError) {
                while filled < count {
                    let got = try check("read", subject()) {
                        pread(fd, buffer.baseAddress! + filled, min(count - filled, 1 << 30), off_t(filled))
                    }
                    if got == 0 { break }
                    filled += got
                }
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        bytes.removeLast(count - filled)
        return bytes
    }

    /// Makes the renames in `directory` durable. A filesystem that cannot `fsync` a directory
    /// (or a directory that cannot be opened) is not an error; an I/O error is: the new file
    /// is in place but may not survive a crash.
    public static func syncDirectory(_ directory: String) throws(SystemCallError) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { _ = posixClose(fd) }
        if fsync(fd) == -1 && errno == EIO { throw SystemCallError(operation: "fsync", subject: directory, code: EIO) }
    }

    /// Replaces the file at `path` with `bytes` atomically, with exactly permissions `mode`
    /// whatever the umask.
    ///
    /// The bytes go to `path.tmp-<pid>`, which is `fsync`ed and renamed over `path`; the
    /// directory is then synced (best effort). A reader sees the old file or the new one,
    /// never a partial file. On failure the temporary file is removed and `path` is untouched.
    public static func writeFileAtomically(_ bytes: [UInt8], to path: String, mode: mode_t) throws(SystemCallError) {
        let temporary = path + ".tmp-\(getpid())"
        let fd = try check("open", temporary) { open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode) }
        do throws(SystemCallError) {
            try check("fchmod", temporary) { fchmod(fd, mode) }
            var failure: SystemCallError?
            bytes.withUnsafeBytes { raw in
                do throws(SystemCallError) { try writeAll(fd, raw, subject: temporary) } catch { failure = error }
            }
            if let failure { throw failure }
            try check("fsync", temporary) { fsync(fd) }
        } catch {
            _ = posixClose(fd)
            _ = unlink(temporary)
            throw error
        }
        do throws(SystemCallError) {
            try close(fd, subject: temporary)
            try check("rename", "\(temporary) -> \(path)") { rename(temporary, path) }
        } catch {
            _ = unlink(temporary)
            throw error
        }
        try? syncDirectory(parent(of: path))
    }

    /// The directory part of `path` (`"."` for a bare file name), like POSIX `dirname`.
    public static func parent(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        let head = trimmed[..<slash]
        return head.isEmpty ? "/" : String(head)
    }

    /// The last path component of `path`, like POSIX `basename`.
    public static func lastComponent(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return String(trimmed) }
        return String(trimmed[trimmed.index(after: slash)...])
    }
}

// File scope, so the names do not resolve to SystemCall.write / SystemCall.close.
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int { write(fd, buffer, count) }
private func posixClose(_ fd: Int32) -> Int32 { close(fd) }
