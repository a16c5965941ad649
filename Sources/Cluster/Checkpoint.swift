import Foundation
import HyperOpt
import Telemetry
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything the coordinator needs to continue a run exactly where it stopped (DESIGN §4):
/// φ, λ̂ and both optimizers' state, the run's configuration, a fingerprint of its data, free-form
/// counters and the wall time spent so far.
///
/// ## File format, version 1
/// Integers are little-endian; floats are IEEE-754 binary32, little-endian.
///
/// | offset      | bytes | contents                                                          |
/// |-------------|-------|-------------------------------------------------------------------|
/// | 0           | 8     | magic `HTCKPT01`                                                  |
/// | 8           | 4     | format version, `1`                                               |
/// | 12          | 4     | header length `H`                                                 |
/// | 16          | 8     | total file length, checksum included                              |
/// | 24          | `H`   | UTF-8 JSON header, space-padded so the arrays start at a multiple of 8 |
/// | 24 + `H`    | 4·n   | `phi`, `lambda_hat`, `phi_m`, `phi_v`, `lambda_m`, `lambda_v`     |
/// | end − 4     | 4     | CRC-32C (``CRC32C``) of every byte before it                      |
///
/// The header holds `config` (``ExperimentConfig``'s own `Codable` form), `step`,
/// `phi_version`, `lambda_version`, `phi_optimizer_steps`, `lambda_optimizer_steps`,
/// `data_fingerprint` (`"0x"` + 16 hex digits), `wall_seconds_so_far`, `counters` and `arrays`
/// (`[{"name", "count"}]` in file order). Unknown keys are rejected, so a file from a build
/// that records more than this one knows about is refused instead of silently losing a setting.
///
/// A file is accepted only if it is internally consistent: array lengths fit both the file
/// size and the configuration (`|φ|`, `H`; Adam moments have the parameters' length, SGD has
/// none), and every float is finite. ``write(to:)`` applies the same rules, so it never
/// produces a file that ``read(from:)`` rejects.
public struct Checkpoint: Sendable, Equatable {
    /// φ, λ̂, optimizer state and the step/version counters.
    public var snapshot: HyperState.Snapshot
    /// The run's resolved configuration.
    public var config: ExperimentConfig
    /// Fingerprint of the training/validation data the run used.
    public var dataFingerprint: UInt64
    /// Free-form counters (gradients applied, gradients rejected, …).
    public var counters: [String: UInt64]
    /// Wall-clock seconds the run had spent when the checkpoint was taken.
    public var wallSecondsSoFar: Double

    /// Memberwise.
    public init(snapshot: HyperState.Snapshot, config: ExperimentConfig, dataFingerprint: UInt64,
                counters: [String: UInt64] = [:], wallSecondsSoFar: Double) {
        self.snapshot = snapshot
        self.config = config
        self.dataFingerprint = dataFingerprint
        self.counters = counters
        self.wallSecondsSoFar = wallSecondsSoFar
    }

    /// The result of ``latestGood(at:)``: the checkpoint and which file it came from.
    public struct LatestGood: Sendable, Equatable {
        /// The checkpoint read.
        public var checkpoint: Checkpoint
        /// The file it was read from: `path` or `path.prev`.
        public var path: String
        /// Whether `path` was unusable and `path.prev` was read instead.
        public var usedPrevious: Bool
        /// Why `path` was unusable, when `usedPrevious`.
        public var latestError: CheckpointError?
    }

    static let magic: [UInt8] = Array("HTCKPT01".utf8)
    static let formatVersion: UInt32 = 1
    /// Magic, version, header length, total length.
    static let prefixSize = 24
    static let checksumSize = 4
    /// Array names in file order.
    static let arrayNames = ["phi", "lambda_hat", "phi_m", "phi_v", "lambda_m", "lambda_v"]

    /// The float arrays in file order.
    var arrays: [[Float]] {
        [snapshot.phi, snapshot.lambdaHat, snapshot.phiM, snapshot.phiV, snapshot.lambdaM, snapshot.lambdaV]
    }

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
        let directory = POSIX.directory(of: path)
        try POSIX.makeDirectories(directory, writing: path)
        let temporary = "\(path).tmp.\(getpid())"
        try writeFile(temporary, head: head)
        try Self.install(temporary, at: path)
        try POSIX.syncDirectory(directory)
    }

    /// The fixed prefix and the padded JSON header.
    private func encodedHead(path: String) throws(CheckpointError) -> [UInt8] {
        let header = Header(
            config: config, step: snapshot.step, phiVersion: snapshot.phiVersion,
            lambdaVersion: snapshot.lambdaVersion, phiOptimizerSteps: snapshot.phiOptimizerSteps,
            lambdaOptimizerSteps: snapshot.lambdaOptimizerSteps,
            dataFingerprint: Self.hex(dataFingerprint), wallSecondsSoFar: wallSecondsSoFar,
            counters: counters,
            arrays: zip(Self.arrayNames, arrays).map { Header.ArrayEntry(name: $0, count: $1.count) })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]     // same checkpoint, same bytes
        var json: [UInt8]
        do { json = Array(try encoder.encode(header)) } catch {
            throw .invalidContents(file: path, reason: "cannot encode the header: \(error)")
        }
        while (Self.prefixSize + json.count) % 8 != 0 { json.append(UInt8(ascii: " ")) }
        let floatCount = arrays.reduce(0) { $0 + $1.count }
        let total = Self.prefixSize + json.count + 4 * floatCount + Self.checksumSize
        var head = Self.magic
        head.reserveCapacity(Self.prefixSize + json.count)
        Self.appendLittleEndian(Self.formatVersion, to: &head)
        Self.appendLittleEndian(UInt32(json.count), to: &head)
        Self.appendLittleEndian(UInt64(total), to: &head)
        head += json
        return head
    }

    /// Writes the whole file to `temporary` and `fsync`s it; removes it on failure.
    private func writeFile(_ temporary: String, head: [UInt8]) throws(CheckpointError) {
        let fd = try POSIX.check("open", temporary) { open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
        var crc = CRC32C()
        func emit(_ bytes: UnsafeRawBufferPointer) throws(CheckpointError) {
            crc.update(bytes)
            try POSIX.writeAll(fd, bytes, path: temporary)
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
            try withUnsafeBytes(of: &trailer) { bytes throws(CheckpointError) in try POSIX.writeAll(fd, bytes, path: temporary) }
            try POSIX.check("fsync", temporary) { fsync(fd) }
        } catch {
            _ = close(fd)
            _ = unlink(temporary)
            throw error
        }
        if close(fd) == -1 && errno != EINTR {
            let failure = POSIX.failure("close", temporary)
            _ = unlink(temporary)
            throw failure
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
                if unlink(staging) == -1 && errno != ENOENT { throw POSIX.failure("unlink", staging) }
                if link(path, staging) == -1 {
                    guard [EPERM, EOPNOTSUPP, ENOTSUP, EMLINK, ENOSYS].contains(errno) else {
                        throw POSIX.failure("link", "\(path) -> \(staging)")
                    }
                    // No hard links here: `path` is briefly absent, and a crash now leaves
                    // only the staging file; `latestGood(at:)` then falls back to `.prev`.
                    try POSIX.check("rename", "\(path) -> \(staging)") { rename(path, staging) }
                    movedCurrent = true
                }
                staged = true
            } else if errno != ENOENT {
                throw POSIX.failure("stat", path)
            }
            try POSIX.check("rename", "\(temporary) -> \(path)") { rename(temporary, path) }
        } catch {
            if movedCurrent { _ = rename(staging, path) } else if staged { _ = unlink(staging) }
            _ = unlink(temporary)
            throw error
        }
        // The new checkpoint is in place; failing to keep the old one is still an error,
        // because the caller was promised a `.prev`.
        if staged {
            try POSIX.check("rename", "\(staging) -> \(previous)") { rename(staging, previous) }
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
            throw POSIX.failure("open", path)
        }
        defer { _ = close(fd) }
        var info = stat()
        try POSIX.check("fstat", path) { fstat(fd, &info) }
        if (info.st_mode & S_IFMT) == S_IFDIR { throw .io(path: path, operation: "read", reason: "is a directory") }
        let size = Int(info.st_size)
        // Judge the fixed prefix before reading what may be a huge unrelated file.
        let prefix = try POSIX.readBytes(fd, count: min(size, prefixSize), path: path)
        let headerLength = try withBytes(of: prefix) { raw throws(CheckpointError) in
            try parsePrefix(raw, fileSize: size, file: path)
        }
        let bytes = try POSIX.readBytes(fd, count: size, path: path)
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

    /// Validates magic, version and declared length; returns the header length.
    private static func parsePrefix(_ raw: UnsafeRawBufferPointer, fileSize: Int, file: String) throws(CheckpointError) -> Int {
        let minimumSize = prefixSize + checksumSize
        if fileSize < magic.count {
            if magic.starts(with: raw) { throw .truncated(file: file, expected: minimumSize, found: fileSize) }
            throw .badMagic(file: file, found: Array(raw))
        }
        guard magic.elementsEqual(raw.prefix(magic.count)) else { throw .badMagic(file: file, found: Array(raw.prefix(magic.count))) }
        guard fileSize >= prefixSize else { throw .truncated(file: file, expected: minimumSize, found: fileSize) }
        let version = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        guard version == formatVersion else {
            throw .unsupportedVersion(file: file, found: version, supported: formatVersion)
        }
        let declared = Int(clamping: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
        if declared > fileSize { throw .truncated(file: file, expected: declared, found: fileSize) }
        if declared < fileSize { throw .sizeMismatch(file: file, expected: declared, found: fileSize) }
        if fileSize < minimumSize { throw .truncated(file: file, expected: minimumSize, found: fileSize) }
        return Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 12, as: UInt32.self)))
    }

    /// Decodes a whole file whose prefix `parsePrefix` accepted.
    private static func decode(_ raw: UnsafeRawBufferPointer, headerLength: Int, file: String) throws(CheckpointError) -> Checkpoint {
        let size = raw.count
        let stored = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: size - checksumSize, as: UInt32.self))
        let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[..<(size - checksumSize)]))
        guard stored == computed else { throw .checksumMismatch(file: file, stored: stored, computed: computed) }

        let dataStart = prefixSize + headerLength
        guard headerLength > 0, dataStart <= size - checksumSize else {
            throw .corruptHeader(file: file, reason: "a header length of \(headerLength) bytes does not fit in a \(size)-byte file")
        }
        let header = try Header.decode(UnsafeRawBufferPointer(rebasing: raw[prefixSize..<dataStart]), file: file)
        guard header.arrays.map(\.name) == arrayNames else {
            throw .corruptHeader(file: file, reason: "arrays must be \(arrayNames) in this order, found \(header.arrays.map(\.name))")
        }
        var floatCount = 0
        for entry in header.arrays {
            guard entry.count >= 0 else { throw .corruptHeader(file: file, reason: "\(entry.name) has a negative length \(entry.count)") }
            guard entry.count <= size / 4 else {   // keeps the sum below from overflowing
                throw .sizeMismatch(file: file, expected: Int(clamping: Int64(dataStart) + 4 * Int64(clamping: entry.count)), found: size)
            }
            floatCount += entry.count
        }
        let expected = dataStart + 4 * floatCount + checksumSize
        guard expected == size else { throw .sizeMismatch(file: file, expected: expected, found: size) }
        guard let fingerprint = parseHex(header.dataFingerprint) else {
            throw .corruptHeader(file: file, reason: "data_fingerprint \"\(header.dataFingerprint)\" is not 0x followed by 16 hex digits")
        }

        var offset = dataStart
        var arrays: [[Float]] = []
        for entry in header.arrays {
            arrays.append(floats(raw, at: offset, count: entry.count))
            offset += 4 * entry.count
        }
        let snapshot = HyperState.Snapshot(
            step: header.step, phiVersion: header.phiVersion, lambdaVersion: header.lambdaVersion,
            phi: arrays[0], lambdaHat: arrays[1],
            phiOptimizerSteps: header.phiOptimizerSteps, phiM: arrays[2], phiV: arrays[3],
            lambdaOptimizerSteps: header.lambdaOptimizerSteps, lambdaM: arrays[4], lambdaV: arrays[5])
        let checkpoint = Checkpoint(snapshot: snapshot, config: header.config, dataFingerprint: fingerprint,
                                    counters: header.counters, wallSecondsSoFar: header.wallSecondsSoFar)
        if let problem = checkpoint.contentProblem() { throw problem.error(file: file, writing: false) }
        return checkpoint
    }

    /// `count` floats stored little-endian at byte `offset` of `raw`, copied in one block.
    private static func floats(_ raw: UnsafeRawBufferPointer, at offset: Int, count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            let source = UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + 4 * count)])
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: source)
            #if _endian(big)
            for i in 0..<count { buffer[i] = Float(bitPattern: UInt32(littleEndian: buffer[i].bitPattern)) }
            #endif
            initialized = count
        }
    }

    // MARK: Resuming

    /// Settings that may change between the run that wrote a checkpoint and the run resuming
    /// from it: how long to run and how often to evaluate. Everything else shapes the
    /// trajectory or the meaning of φ and λ̂.
    public static let resumableSettings: Set<String> = ["steps", "evalEvery"]

    /// Why resuming this checkpoint under `config` (and, if given, data with
    /// `dataFingerprint`) would be wrong, one sentence each; empty when it is fine.
    ///
    /// Every stored property of ``ExperimentConfig`` is compared except
    /// ``resumableSettings``, so a setting added later is covered without touching this code.
    /// A `steps` below the checkpoint's step is also reported: the run would be over already.
    public func compatible(with config: ExperimentConfig, dataFingerprint: UInt64? = nil) -> [String] {
        var problems: [String] = []
        let saved = Mirror(reflecting: self.config).children
        let requested = Mirror(reflecting: config).children
        for (old, new) in zip(saved, requested) {
            guard let name = old.label, !Self.resumableSettings.contains(name) else { continue }
            let was = String(describing: old.value), now = String(describing: new.value)
            if was != now {
                problems.append("\(name) was \(was) when the checkpoint was written but is \(now) now")
            }
        }
        if let dataFingerprint, dataFingerprint != self.dataFingerprint {
            problems.append("the data differ from the checkpoint's (fingerprint \(Self.hex(dataFingerprint)), checkpoint \(Self.hex(self.dataFingerprint)))")
        }
        if config.steps >= 0 && UInt64(config.steps) < snapshot.step {
            problems.append("steps is \(config.steps) but the checkpoint is already at step \(snapshot.step)")
        }
        return problems
    }

    // MARK: Validation shared by write and read

    enum ContentProblem {
        case nonFinite(array: String, index: Int, value: Float)
        case invalid(String)

        func error(file: String, writing: Bool) -> CheckpointError {
            switch self {
            case let .nonFinite(array, index, value):
                return .nonFiniteValues(file: file, array: array, index: index, value: value)
            case let .invalid(reason):
                return writing ? .invalidContents(file: file, reason: reason) : .corruptHeader(file: file, reason: reason)
            }
        }
    }

    /// The first reason the contents are not a resumable state, if any.
    func contentProblem() -> ContentProblem? {
        let configProblems = config.problems()
        guard configProblems.isEmpty else {
            return .invalid("the configuration is invalid: \(configProblems.joined(separator: "; "))")
        }
        guard wallSecondsSoFar.isFinite && wallSecondsSoFar >= 0 else {
            return .invalid("wall_seconds_so_far must be finite and ≥ 0, got \(wallSecondsSoFar)")
        }
        guard snapshot.phiOptimizerSteps >= 0 && snapshot.lambdaOptimizerSteps >= 0 else {
            return .invalid("optimizer step counts must be ≥ 0, got \(snapshot.phiOptimizerSteps) and \(snapshot.lambdaOptimizerSteps)")
        }
        // The elementary model's size, overflow-checked and bounded by the arrays present
        // (φ always contains at least the output bias b of length D), before anything
        // allocates in proportion to it.
        var d = 0
        for (from, to) in zip(config.layers, config.layers.dropFirst()) {
            let (weights, o1) = from.multipliedReportingOverflow(by: to)
            let (layer, o2) = weights.addingReportingOverflow(to)
            let (sum, o3) = d.addingReportingOverflow(layer)
            guard !o1 && !o2 && !o3 else { return .invalid("layers \(config.layers) are too large") }
            d = sum
        }
        guard d <= snapshot.phi.count else {
            return .invalid("phi has \(snapshot.phi.count) values, fewer than the \(d) weights of layers \(config.shape)")
        }
        let phiCount = config.phiCount, h = config.hyperparameterCount
        let (phiMoments, lambdaMoments) = (config.phiOptimizer == .adam ? phiCount : 0, config.lambdaOptimizer == .adam ? h : 0)
        let expected = [phiCount, h, phiMoments, phiMoments, lambdaMoments, lambdaMoments]
        for (name, (values, count)) in zip(Self.arrayNames, zip(arrays, expected)) where values.count != count {
            return .invalid("\(name) has \(values.count) values, but layers \(config.shape), scope \(config.scope.rawValue), "
                + "hypernet \(config.hypernet) with \(config.phiOptimizer.rawValue)/\(config.lambdaOptimizer.rawValue) need \(count)")
        }
        for (name, values) in zip(Self.arrayNames, arrays) {
            if let index = Self.firstNonFinite(values) {
                return .nonFinite(array: name, index: index, value: values[index])
            }
        }
        return nil
    }

    /// Index of the first NaN or infinity; branch-free over blocks so the scan vectorizes.
    static func firstNonFinite(_ values: [Float]) -> Int? {
        values.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: UInt32.self) { bits in
                let block = 4096
                var start = 0
                while start < bits.count {
                    let end = min(start + block, bits.count)
                    // Exponent all ones ⇔ (bits & 0x7f800000) + 0x00800000 carries into bit 31.
                    var hit: UInt32 = 0
                    for i in start..<end { hit |= (bits[i] & 0x7f80_0000) &+ 0x0080_0000 }
                    if hit & 0x8000_0000 != 0 {
                        return (start..<end).first { bits[$0] & 0x7f80_0000 == 0x7f80_0000 }
                    }
                    start = end
                }
                return nil
            }
        }
    }

    // MARK: Helpers

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: 16 - digits.count) + digits
    }

    private static func parseHex(_ text: String) -> UInt64? {
        guard text.hasPrefix("0x"), text.count == 18 else { return nil }
        return UInt64(text.dropFirst(2), radix: 16)
    }

    private static func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}

/// `body` over the bytes of `array` (`Array.withUnsafeBytes` does not forward typed errors).
private func withBytes<Element, Result>(
    of array: [Element], _ body: (UnsafeRawBufferPointer) throws(CheckpointError) -> Result
) throws(CheckpointError) -> Result {
    let outcome: Swift.Result<Result, CheckpointError> = array.withUnsafeBytes { bytes in
        do throws(CheckpointError) { return .success(try body(bytes)) } catch { return .failure(error) }
    }
    return try outcome.get()
}

/// The JSON header of format version 1.
private struct Header: Codable {
    var config: ExperimentConfig
    var step: UInt64
    var phiVersion: UInt64
    var lambdaVersion: UInt64
    var phiOptimizerSteps: Int
    var lambdaOptimizerSteps: Int
    var dataFingerprint: String
    var wallSecondsSoFar: Double
    var counters: [String: UInt64]
    var arrays: [ArrayEntry]

    struct ArrayEntry: Codable {
        var name: String
        var count: Int
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case config, step, counters, arrays
        case phiVersion = "phi_version", lambdaVersion = "lambda_version"
        case phiOptimizerSteps = "phi_optimizer_steps", lambdaOptimizerSteps = "lambda_optimizer_steps"
        case dataFingerprint = "data_fingerprint", wallSecondsSoFar = "wall_seconds_so_far"
    }

    /// Every key `ExperimentConfig` may encode — optional settings included, which a JSON
    /// encoding of a default config leaves out — so this stays right as fields are added.
    static let configKeys: Set<String> = {
        let recorder = TopLevelKeyRecorder()
        try! ExperimentConfig().encode(to: recorder)   // the recorder never throws
        return recorder.keys.keys
    }()

    /// Parses and checks the header bytes (trailing padding spaces allowed).
    static func decode(_ bytes: UnsafeRawBufferPointer, file: String) throws(CheckpointError) -> Header {
        let data = Data(bytes)
        guard let object = try? JSONSerialization.jsonObject(with: data) else {
            throw .corruptHeader(file: file, reason: "not valid JSON")
        }
        guard let top = object as? [String: Any] else { throw .corruptHeader(file: file, reason: "not a JSON object") }
        let unknown = Set(top.keys).subtracting(CodingKeys.allCases.map(\.rawValue))
        guard unknown.isEmpty else { throw .corruptHeader(file: file, reason: "unknown key(s) \(unknown.sorted())") }
        if let config = top["config"] as? [String: Any] {
            let unknownSettings = Set(config.keys).subtracting(configKeys)
            guard unknownSettings.isEmpty else {
                throw .corruptHeader(file: file, reason: "unknown configuration key(s) \(unknownSettings.sorted())")
            }
        }
        do {
            return try JSONDecoder().decode(Header.self, from: data)
        } catch {
            throw .corruptHeader(file: file, reason: describe(error))
        }
    }

    /// A short reason for a decoding failure, naming the key path.
    private static func describe(_ error: any Error) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error as? DecodingError {
        case let .keyNotFound(key, context)?:
            return "missing key \(path(context.codingPath + [key]))"
        case let .typeMismatch(type, context)?:
            return "\(path(context.codingPath)) is not a \(type)"
        case let .valueNotFound(type, context)?:
            return "\(path(context.codingPath)) is null, expected \(type)"
        case let .dataCorrupted(context)?:
            return context.codingPath.isEmpty ? context.debugDescription : "\(path(context.codingPath)): \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }
}

/// The checked POSIX calls behind checkpoints: retry `EINTR`, turn `-1` into
/// ``CheckpointError/io(path:operation:reason:)``.
private enum POSIX {
    @discardableResult
    static func check(_ operation: String, _ subject: @autoclosure () -> String, _ body: () -> Int32) throws(CheckpointError) -> Int32 {
        while true {
            let result = body()
            if result != -1 { return result }
            if errno == EINTR { continue }
            throw failure(operation, subject())
        }
    }

    /// The error for the current `errno`.
    static func failure(_ operation: String, _ subject: String) -> CheckpointError {
        .io(path: subject, operation: operation, reason: String(cString: strerror(errno)))
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(CheckpointError) {
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, min(bytes.count - offset, 1 << 30))
            if written == -1 {
                if errno == EINTR { continue }
                throw failure("write", path)
            }
            offset += written
        }
    }

    /// Up to `count` bytes from the start of `fd` (fewer at end of file).
    static func readBytes(_ fd: Int32, count: Int, path: String) throws(CheckpointError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        var failed = false
        bytes.withUnsafeMutableBytes { buffer in
            while filled < count {
                let got = pread(fd, buffer.baseAddress! + filled, min(count - filled, 1 << 30), off_t(filled))
                if got == 0 { break }
                if got == -1 {
                    if errno == EINTR { continue }
                    failed = true
                    break
                }
                filled += got
            }
        }
        if failed { throw failure("read", path) }
        bytes.removeLast(count - filled)
        return bytes
    }

    /// The directory part of `path` (`"."` for a bare name).
    static func directory(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        let head = trimmed[..<slash]
        return head.isEmpty ? "/" : String(head)
    }

    /// Creates `directory` and missing parents (mode 0755).
    static func makeDirectories(_ directory: String, writing path: String) throws(CheckpointError) {
        if directory == "." || directory == "/" { return }
        var info = stat()
        if stat(directory, &info) == 0 {
            if (info.st_mode & S_IFMT) == S_IFDIR { return }
            throw .io(path: directory, operation: "mkdir", reason: "exists and is not a directory")
        }
        try makeDirectories(self.directory(of: directory), writing: path)
        if mkdir(directory, 0o755) == -1 && errno != EEXIST { throw failure("mkdir", directory) }
    }

    /// Makes the renames in `directory` durable. A filesystem that cannot `fsync` a directory
    /// is not an error; an I/O error is (the new file is in place but may not survive a crash).
    static func syncDirectory(_ directory: String) throws(CheckpointError) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { _ = close(fd) }
        if fsync(fd) == -1 && errno == EIO { throw failure("fsync", directory) }
    }
}

/// An `Encoder` that only records the top-level keys a value encodes, including those of nil
/// optionals (`encodeIfPresent` is recorded whatever the value).
private final class TopLevelKeyRecorder: Encoder {
    final class Keys { var keys: Set<String> = [] }
    let keys = Keys()
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] = [:]

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(Container<Key>(keys: keys))
    }
    func unkeyedContainer() -> any UnkeyedEncodingContainer { preconditionFailure("ExperimentConfig is a keyed value") }
    func singleValueContainer() -> any SingleValueEncodingContainer { preconditionFailure("ExperimentConfig is a keyed value") }

    struct Container<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let keys: Keys
        var codingPath: [any CodingKey] = []
        mutating func encodeNil(forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: String?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: Double?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: Int?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: Float?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: Int8?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: Int16?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: Int32?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: UInt?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: UInt8?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: UInt16?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: UInt32?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: UInt64?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            keys.keys.insert(key.stringValue)
            return KeyedEncodingContainer(Container<NestedKey>(keys: Keys()))
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            preconditionFailure("not used by ExperimentConfig's top level")
        }
        mutating func superEncoder() -> any Encoder { TopLevelKeyRecorder() }
        mutating func superEncoder(forKey key: Key) -> any Encoder { keys.keys.insert(key.stringValue); return TopLevelKeyRecorder() }
    }
}
