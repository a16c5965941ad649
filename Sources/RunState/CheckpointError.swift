/// Why a checkpoint could not be read or written.
///
/// Every message names the file and what is wrong with it, e.g.
/// `/runs/a/ckpt: truncated: expected 22620964 bytes, found 4096`. A read that fails changes
/// nothing; a write that fails leaves the previous checkpoint (and its `.prev`) as they were.
public enum CheckpointError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No file exists at `path`.
    case missing(path: String)
    /// A system call failed (permissions, disk full, I/O error, …); `operation` is the call and
    /// `reason` the system's message.
    case io(path: String, operation: String, reason: String)
    /// The file ends before the length it declares (or before the fixed-size prefix).
    case truncated(file: String, expected: Int, found: Int)
    /// The first eight bytes are not `HTCKPT01`: not a Hypertrain checkpoint.
    case badMagic(file: String, found: [UInt8])
    /// A checkpoint format this build does not read.
    case unsupportedVersion(file: String, found: UInt32, supported: UInt32)
    /// The CRC-32C stored at the end differs from the one computed over the rest of the file.
    case checksumMismatch(file: String, stored: UInt32, computed: UInt32)
    /// The JSON header is not valid JSON, misses or adds a key, or holds an impossible value.
    case corruptHeader(file: String, reason: String)
    /// The file is longer than it declares, or the header's array lengths do not add up to
    /// the file's size.
    case sizeMismatch(file: String, expected: Int, found: Int)
    /// A NaN or infinity in one of the float arrays (`phi`, `lambda_hat`, `phi_m`, …); `index`
    /// is the first offending element. Raised by reads and by writes (which then write nothing).
    case nonFiniteValues(file: String, array: String, index: Int, value: Float)
    /// A write refused contents that a read would reject (array lengths that do not fit the
    /// configuration, a non-finite wall time, an invalid configuration).
    case invalidContents(file: String, reason: String)
    /// Neither the checkpoint nor its `.prev` could be read.
    indirect case noUsableCheckpoint(latest: CheckpointError, previous: CheckpointError)

    /// A one-line message naming the file and the problem.
    public var description: String {
        switch self {
        case let .missing(path):
            return "\(path): no such checkpoint"
        case let .io(path, operation, reason):
            return "\(path): \(operation) failed: \(reason)"
        case let .truncated(file, expected, found):
            return "\(file): truncated checkpoint: expected \(expected) bytes, found \(found)"
        case let .badMagic(file, found):
            return "\(file): not a Hypertrain checkpoint: bad magic \(Self.show(found)), expected \"HTCKPT01\""
        case let .unsupportedVersion(file, found, supported):
            return "\(file): unsupported checkpoint format version \(found) (this build reads version \(supported))"
        case let .checksumMismatch(file, stored, computed):
            return "\(file): checksum mismatch: stored CRC-32C \(Self.hex(stored)), computed \(Self.hex(computed)); the file is corrupt"
        case let .corruptHeader(file, reason):
            return "\(file): corrupt checkpoint header: \(reason)"
        case let .sizeMismatch(file, expected, found):
            return "\(file): size mismatch: the header implies \(expected) bytes, the file has \(found)"
        case let .nonFiniteValues(file, array, index, value):
            return "\(file): non-finite value \(value) in \(array) at index \(index)"
        case let .invalidContents(file, reason):
            return "\(file): refusing to write checkpoint: \(reason)"
        case let .noUsableCheckpoint(latest, previous):
            return "no usable checkpoint: \(latest); \(previous)"
        }
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// Printable ASCII as is, anything else as `\xNN`, in quotes.
    private static func show(_ bytes: [UInt8]) -> String {
        var text = "\""
        for byte in bytes {
            if (0x20..<0x7f).contains(byte) && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") {
                text.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let digits = String(byte, radix: 16)
                text += "\\x" + (digits.count == 1 ? "0" : "") + digits
            }
        }
        return text + "\""
    }
}
