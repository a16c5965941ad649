import Foundation
import HyperOpt
import SystemIO

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
/// | 24 + `H`    | 4·n   | `phi`, `lambda_hat`, `phi_m`, `phi_v`, `lambda_m`, `lambda_v` (a pipelined run adds `task_phi`, `task_lambda_hat`) |
/// | end − 4     | 4     | CRC-32C (``CRC32C``) of every byte before it                      |
///
/// The header holds `config` (``ExperimentConfig``'s own `Codable` form), `step`,
/// `phi_version`, `lambda_version`, `phi_optimizer_steps`, `lambda_optimizer_steps`,
/// `data_fingerprint` (`"0x"` + 16 hex digits), `wall_seconds_so_far`, `counters` and `arrays`
/// (`[{"name", "count"}]` in file order); a pipelined run's adds `task_phi_version` and
/// `task_lambda_version` (its task parameters' versions). Unknown keys are rejected, so a file from a build
/// that records more than this one knows about is refused instead of silently losing a setting.
///
/// A file is accepted only if it is internally consistent: array lengths fit both the file
/// size and the configuration (`|φ|`, `H`; Adam moments have the parameters' length, SGD has
/// none), and every float is finite. ``write(to:)`` applies the same rules, so it never
/// produces a file that ``read(from:)`` rejects.
extension Checkpoint {
    static let magic: [UInt8] = Array("HTCKPT01".utf8)
    static let formatVersion: UInt32 = 1
    /// Magic, version, header length, total length.
    static let prefixSize = 24
    static let checksumSize = 4

    /// The fixed prefix and the padded JSON header.
    func encodedHead(path: String) throws(CheckpointError) -> [UInt8] {
        let header = CheckpointHeader(
            config: config, step: snapshot.step, phiVersion: snapshot.phiVersion,
            lambdaVersion: snapshot.lambdaVersion, phiOptimizerSteps: snapshot.phiOptimizerSteps,
            lambdaOptimizerSteps: snapshot.lambdaOptimizerSteps,
            dataFingerprint: Self.hex(dataFingerprint), wallSecondsSoFar: wallSecondsSoFar,
            counters: counters,
            arrays: zip(names, arrays).map { CheckpointHeader.ArrayEntry(name: $0, count: $1.count) },
            taskPhiVersion: snapshot.taskParameters?.phiVersion, taskLambdaVersion: snapshot.taskParameters?.lambdaVersion)
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


    /// Validates magic, version and declared length; returns the header length.
    static func parsePrefix(_ raw: UnsafeRawBufferPointer, fileSize: Int, file: String) throws(CheckpointError) -> Int {
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
    static func decode(_ raw: UnsafeRawBufferPointer, headerLength: Int, file: String) throws(CheckpointError) -> Checkpoint {
        let size = raw.count
        let stored = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: size - checksumSize, as: UInt32.self))
        let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[..<(size - checksumSize)]))
        guard stored == computed else { throw .checksumMismatch(file: file, stored: stored, computed: computed) }

        let dataStart = prefixSize + headerLength
        guard headerLength > 0, dataStart <= size - checksumSize else {
            throw .corruptHeader(file: file, reason: "a header length of \(headerLength) bytes does not fit in a \(size)-byte file")
        }
        let header = try CheckpointHeader.decode(UnsafeRawBufferPointer(rebasing: raw[prefixSize..<dataStart]), file: file)
        let names = header.arrays.map(\.name)
        guard names == arrayNames || names == arrayNames + taskArrayNames else {
            throw .corruptHeader(file: file, reason: "arrays must be \(arrayNames) in this order (a pipelined run's followed by \(taskArrayNames)), found \(names)")
        }
        let hasTaskParameters = names.count > arrayNames.count
        guard hasTaskParameters == (header.taskPhiVersion != nil) && hasTaskParameters == (header.taskLambdaVersion != nil) else {
            throw .corruptHeader(file: file, reason: "task_phi_version and task_lambda_version must be given exactly when the task arrays are")
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
            lambdaOptimizerSteps: header.lambdaOptimizerSteps, lambdaM: arrays[4], lambdaV: arrays[5],
            taskParameters: hasTaskParameters
                ? HyperState.TaskParameters(phi: arrays[6], lambdaHat: arrays[7], phiVersion: header.taskPhiVersion!,
                                            lambdaVersion: header.taskLambdaVersion!)
                : nil)
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
func withBytes<Element, Result>(
    of array: [Element], _ body: (UnsafeRawBufferPointer) throws(CheckpointError) -> Result
) throws(CheckpointError) -> Result {
    let outcome: Swift.Result<Result, CheckpointError> = array.withUnsafeBytes { bytes in
        do throws(CheckpointError) { return .success(try body(bytes)) } catch { return .failure(error) }
    }
    return try outcome.get()
}
