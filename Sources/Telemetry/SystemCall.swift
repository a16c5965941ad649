@preconcurrency import Glibc

/// The one checked path into POSIX for this module: retries `EINTR` and turns `-1` into a
/// ``TelemetryError`` carrying `errno`.
enum SystemCall {
    /// Runs `body` until it does not fail with `EINTR`; throws if it returns `-1`.
    @discardableResult
    static func check<Result: SignedInteger>(
        _ operation: String,
        _ subject: @autoclosure () -> String,
        _ body: () -> Result
    ) throws(TelemetryError) -> Result {
        while true {
            let result = body()
            if result != -1 { return result }
            let code = errno
            if code == EINTR { continue }
            throw TelemetryError(operation: operation, subject: subject(), code: code)
        }
    }

    /// Writes all of `bytes` to the blocking descriptor `fd`, continuing after short writes.
    static func writeAll(
        _ fd: Int32, _ bytes: UnsafeRawBufferPointer, subject: @autoclosure () -> String
    ) throws(TelemetryError) {
        var offset = 0
        while offset < bytes.count {
            let written = try check("write", subject()) {
                Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            }
            offset += written
        }
    }

    /// Writes the UTF-8 encoding of `text` to the blocking descriptor `fd`.
    static func writeAll(_ fd: Int32, _ text: String, subject: @autoclosure () -> String) throws(TelemetryError) {
        var text = text
        // withUTF8 cannot forward a typed error, so carry it out by hand.
        var failure: TelemetryError?
        text.withUTF8 { utf8 in
            do throws(TelemetryError) {
                try writeAll(fd, UnsafeRawBufferPointer(utf8), subject: subject())
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
    }

    /// The whole contents of the file at `path`.
    static func readFile(_ path: String) throws(TelemetryError) -> [UInt8] {
        let fd = try check("open", path) { open(path, O_RDONLY | O_CLOEXEC) }
        defer { _ = Glibc.close(fd) }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = try check("read", path) { chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }
            if count == 0 { return contents }
            contents.append(contentsOf: chunk[..<count])
        }
    }

    /// Closes `fd`. `EINTR` from `close` is not retried: on Linux the descriptor is already gone.
    static func close(_ fd: Int32, subject: @autoclosure () -> String) throws(TelemetryError) {
        if Glibc.close(fd) == -1 && errno != EINTR {
            throw TelemetryError(operation: "close", subject: subject(), code: errno)
        }
    }

    /// Creates `directory` and any missing parents with mode 0755; existing directories are fine.
    static func makeDirectories(_ directory: String) throws(TelemetryError) {
        if directory.isEmpty || directory == "/" || directory == "." { return }
        var info = stat()
        if stat(directory, &info) == 0 {
            if (info.st_mode & S_IFMT) == S_IFDIR { return }
            throw TelemetryError(operation: "mkdir", subject: directory, code: ENOTDIR)
        }
        try makeDirectories(parent(of: directory))
        if mkdir(directory, 0o755) == -1 && errno != EEXIST {
            throw TelemetryError(operation: "mkdir", subject: directory, code: errno)
        }
    }

    /// The directory part of `path` (`"."` for a bare file name), like POSIX `dirname`.
    static func parent(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        let head = trimmed[..<slash]
        return head.isEmpty ? "/" : String(head)
    }

    /// The last path component of `path`, like POSIX `basename`.
    static func lastComponent(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return String(trimmed) }
        return String(trimmed[trimmed.index(after: slash)...])
    }
}
