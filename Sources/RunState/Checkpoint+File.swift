import HyperOpt
import SystemIO
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writing and reading checkpoint files: atomic replacement with a `.prev` kept, and the
/// fallback to `.prev` when the latest file is unusable. Every system call goes through
/// ``SystemCall``.
extension Checkpoint {
    // MARK: Writing

    /// Writes the checkpoint to `path` atomically, keeping the checkpoint it replaces as
    /// `path.prev`.
    ///
    /// The file is written to `path.tmp.<pid>` in the same directory and `fsync`ed; then the
    /// current `path` (if any) is hard-linked to `path.prev.tmp.<pid>` (renamed where the
    /// filesystem has no hard links), the temporary file is renamed over `path`, the staged
    /// old file is renamed over `path.prev`, and the directory is `fsync`ed. Missing parent
    /// directories are created. A failure before the new file is in place removes the
    /// temporary files and leaves `path` and `path.prev` as they were, so `path` is always
    /// either the old or the new complete checkpoint. Contents that
    /// ``read(from:)`` would reject (non-finite values, lengths that do not fit the
    /// configuration) are refused before anything is touched. Writes to one path must not
    /// run concurrently.
    public func write(to path: String) throws(CheckpointError) {
        if let problem = contentProblem() { throw problem.error(file: path, writing: true) }
        // A checkpoint replaces a file; it never moves a directory (a user's folder) away.
        var info = stat()
        if stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR {
            throw .io(path: path, operation: "write", reason: "is a directory; give a file path such as \(path)/checkpoint.bin")
        }
        let head = try encodedHead(path: path)
        let directory = SystemCall.parent(of: path)
        try FileCall.makeDirectories(directory)
        let temporary = "\(path).tmp.\(getpid())"
        try writeFile(temporary, head: head)
        try Self.install(temporary, at: path)
        try FileCall.syncDirectory(directory)
    }

    /// Writes the whole file to `temporary` and `fsync`s it; removes it on failure.
    private func writeFile(_ temporary: String, head: [UInt8]) throws(CheckpointError) {
        let fd = try FileCall.check("open", temporary) { open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
        var crc = CRC32C()
        func emit(_ bytes: UnsafeRawBufferPointer) throws(CheckpointError) {
            crc.update(bytes)
            try FileCall.writeAll(fd, bytes, path: temporary)
        }
        do throws(CheckpointError) {
            try withBytes(of: head) { bytes throws(CheckpointError) in try emit(bytes) }
            for values in arrays {
                #if _endian(little)
                try withBytes(of: values) { bytes throws(CheckpointError) in try emit(bytes) }
                #else
                let swapped = values.map { $0.bitPattern.littleEndian }
                try withBytes(of: swapped) { bytes throws(CheckpointError) in try emit(bytes) }
                #endif
            }
            var trailer = crc.value.littleEndian
            try withUnsafeBytes(of: &trailer) { bytes throws(CheckpointError) in try FileCall.writeAll(fd, bytes, path: temporary) }
            try FileCall.check("fsync", temporary) { fsync(fd) }
        } catch {
            _ = close(fd)
            _ = unlink(temporary)
            throw error
        }
        do throws(CheckpointError) {
            try FileCall.close(fd, path: temporary)
        } catch {
            _ = unlink(temporary)
            throw error
        }
    }

    /// Renames `temporary` over `path`, keeping the file it replaces as `path.prev`.
    ///
    /// The current file is first linked (or, without hard links, renamed) to a staging name,
    /// so a failure before the final rename can restore everything exactly as it was; the
    /// staging name then replaces `.prev` in one rename.
    private static func install(_ temporary: String, at path: String) throws(CheckpointError) {
        let previous = path + ".prev"
        let staging = "\(previous).tmp.\(getpid())"
        var staged = false, movedCurrent = false
        do throws(CheckpointError) {
            var info = stat()
            if lstat(path, &info) == 0 {
                if unlink(staging) == -1 && errno != ENOENT { throw FileCall.failure("unlink", staging) }
                if link(path, staging) == -1 {
                    guard [EPERM, EOPNOTSUPP, ENOTSUP, EMLINK, ENOSYS].contains(errno) else {
                        throw FileCall.failure("link", "\(path) -> \(staging)")
                    }
                    // No hard links here: `path` is briefly absent, and a crash now leaves
                    // only the staging file; `latestGood(at:)` then falls back to `.prev`.
                    try FileCall.check("rename", "\(path) -> \(staging)") { rename(path, staging) }
                    movedCurrent = true
                }
                staged = true
            } else if errno != ENOENT {
                throw FileCall.failure("stat", path)
            }
            try FileCall.check("rename", "\(temporary) -> \(path)") { rename(temporary, path) }
        } catch {
            if movedCurrent { _ = rename(staging, path) } else if staged { _ = unlink(staging) }
            _ = unlink(temporary)
            throw error
        }
        // The new checkpoint is in place; failing to keep the old one is still an error,
        // because the caller was promised a `.prev`.
        if staged {
            try FileCall.check("rename", "\(staging) -> \(previous)") { rename(staging, previous) }
        }
    }

    // MARK: Reading

    /// Reads and validates the checkpoint at `path`.
    ///
    /// Checks, in order: the file exists and is readable; magic; format version; the declared
    /// total length against the file size (shorter: ``CheckpointError/truncated(file:expected:found:)``,
    /// longer: ``CheckpointError/sizeMismatch(file:expected:found:)``); the CRC-32C; the JSON
    /// header (syntax, keys, types, values); the array lengths against the file size and the
    /// configuration; finiteness of every float. A file that passes is bit-identical to what
    /// ``write(to:)`` wrote.
    public static func read(from path: String) throws(CheckpointError) -> Checkpoint {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd == -1 {
            if errno == ENOENT { throw .missing(path: path) }
            throw FileCall.failure("open", path)
        }
        defer { _ = close(fd) }
        var info = stat()
        try FileCall.check("fstat", path) { fstat(fd, &info) }
        if (info.st_mode & S_IFMT) == S_IFDIR { throw .io(path: path, operation: "read", reason: "is a directory") }
        let size = Int(info.st_size)
        // Judge the fixed prefix before reading what may be a huge unrelated file.
        let prefix = try FileCall.readBytes(fd, count: min(size, prefixSize), path: path)
        let headerLength = try withBytes(of: prefix) { raw throws(CheckpointError) in
            try parsePrefix(raw, fileSize: size, file: path)
        }
        let bytes = try FileCall.readBytes(fd, count: size, path: path)
        if bytes.count < size { throw .truncated(file: path, expected: size, found: bytes.count) }   // shrank while read
        return try withBytes(of: bytes) { raw throws(CheckpointError) in
            try decode(raw, headerLength: headerLength, file: path)
        }
    }

    /// Reads `path`, or `path.prev` when `path` is missing or unusable.
    public static func readLatestGood(at path: String) throws(CheckpointError) -> Checkpoint {
        try latestGood(at: path).checkpoint
    }

    /// Reads `path`, or `path.prev` when `path` is missing or unusable, and says which.
    ///
    /// Throws ``CheckpointError/missing(path:)`` when neither file exists, `path`'s own error
    /// when it is unusable and there is no `.prev`, and
    /// ``CheckpointError/noUsableCheckpoint(latest:previous:)`` when both are unusable.
    public static func latestGood(at path: String) throws(CheckpointError) -> LatestGood {
        let latestError: CheckpointError
        do throws(CheckpointError) {
            return LatestGood(checkpoint: try read(from: path), path: path, usedPrevious: false, latestError: nil)
        } catch {
            latestError = error
        }
        let previous = path + ".prev"
        do throws(CheckpointError) {
            return LatestGood(checkpoint: try read(from: previous), path: previous, usedPrevious: true, latestError: latestError)
        } catch {
            if case .missing = error { throw latestError }
            throw .noUsableCheckpoint(latest: latestError, previous: error)
        }
    }
}

/// The system calls behind checkpoint files, on ``SystemCall`` (which retries `EINTR`); its
/// ``SystemCallError`` becomes ``CheckpointError/io(path:operation:reason:)``.
private enum FileCall {
    @discardableResult
    static func check(_ operation: String, _ subject: @autoclosure () -> String, _ body: () -> Int32) throws(CheckpointError) -> Int32 {
        do throws(SystemCallError) { return try SystemCall.check(operation, subject(), body) } catch { throw CheckpointError(error) }
    }

    /// The error for the current `errno`.
    static func failure(_ operation: String, _ subject: String) -> CheckpointError {
        CheckpointError(SystemCallError(operation: operation, subject: subject, code: errno))
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(CheckpointError) {
        do throws(SystemCallError) { try SystemCall.writeAll(fd, bytes, subject: path) } catch { throw CheckpointError(error) }
    }

    static func close(_ fd: Int32, path: String) throws(CheckpointError) {
        do throws(SystemCallError) { try SystemCall.close(fd, subject: path) } catch { throw CheckpointError(error) }
    }

    /// Up to `count` bytes from the start of `fd` (fewer at end of file).
    static func readBytes(_ fd: Int32, count: Int, path: String) throws(CheckpointError) -> [UInt8] {
        do throws(SystemCallError) { return try SystemCall.readPrefix(fd, count: count, subject: path) } catch { throw CheckpointError(error) }
    }

    static func makeDirectories(_ directory: String) throws(CheckpointError) {
        do throws(SystemCallError) { try SystemCall.makeDirectories(directory) } catch { throw CheckpointError(error) }
    }

    static func syncDirectory(_ directory: String) throws(CheckpointError) {
        do throws(SystemCallError) { try SystemCall.syncDirectory(directory) } catch { throw CheckpointError(error) }
    }
}

extension CheckpointError {
    /// The checkpoint error for a failed system call on a checkpoint file.
    init(_ error: SystemCallError) {
        self = .io(path: error.subject, operation: error.operation, reason: error.reason)
    }
}
