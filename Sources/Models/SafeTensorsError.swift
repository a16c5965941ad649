/// Why bytes are not a safetensors file that ``SafeTensors`` can hold.
public enum SafeTensorsError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Fewer than the 8 bytes of the header length.
    case truncated(size: Int)
    /// The declared header length runs past the end of the bytes.
    case headerPastEnd(headerLength: UInt64, available: Int)
    /// The header is not the JSON the format prescribes.
    case malformedHeader(String)
    /// A tensor's dtype is not `F32`.
    case unsupportedDType(tensor: String, dtype: String)
    /// A tensor's offsets are not `0 ≤ begin ≤ end ≤ data size`.
    case offsetsOutOfRange(tensor: String, begin: Int, end: Int, dataSize: Int)
    /// A tensor's byte range does not match its shape (4 bytes per element).
    case sizeMismatch(tensor: String, shape: [Int], expectedBytes: Int, foundBytes: Int)
    /// Two tensors' byte ranges overlap.
    case overlappingTensors(String, String)
    /// Bytes of the data region that no tensor covers.
    case uncoveredData(begin: Int, end: Int)

    /// One line naming the problem.
    public var description: String {
        switch self {
        case let .truncated(size):
            "truncated safetensors file: \(size) bytes, fewer than the 8-byte header length"
        case let .headerPastEnd(length, available):
            "truncated safetensors file: the header length \(length) runs past the end (\(available) bytes follow it)"
        case let .malformedHeader(reason):
            "malformed safetensors header: \(reason)"
        case let .unsupportedDType(tensor, dtype):
            "tensor '\(tensor)' has dtype '\(dtype)'; only F32 is supported"
        case let .offsetsOutOfRange(tensor, begin, end, dataSize):
            "tensor '\(tensor)': data_offsets [\(begin), \(end)] are outside the \(dataSize)-byte data region"
        case let .sizeMismatch(tensor, shape, expected, found):
            "tensor '\(tensor)': shape \(shape) needs \(expected) bytes of F32, its data_offsets span \(found)"
        case let .overlappingTensors(a, b):
            "tensors '\(a)' and '\(b)' overlap in the data region"
        case let .uncoveredData(begin, end):
            "bytes \(begin)..<\(end) of the data region belong to no tensor"
        }
    }
}
