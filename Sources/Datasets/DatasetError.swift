/// Everything that can go wrong while reading, fetching or splitting a data set.
///
/// Each message names the file (or directory) concerned and what is wrong with it, e.g.
/// `train-images.idx3-ubyte: truncated: expected 47040016 bytes, found 1000`.
/// Format errors name the file by its last path component; errors about a location
/// (missing file, unreadable file) give the full path.
public enum DatasetError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No file exists at `path`.
    case fileNotFound(path: String)
    /// A directory lacks one of the files a data set needs; `tried` lists the names looked for.
    case missingFile(directory: String, tried: [String])
    /// The file exists but could not be read or written.
    case io(path: String, reason: String)
    /// The IDX header's magic number is not the one expected for this kind of file.
    case badMagic(file: String, expected: UInt32, found: UInt32)
    /// The IDX dimensions are not the expected ones (e.g. images that are not 28×28).
    case badDimensions(file: String, expected: String, found: [Int])
    /// The file is shorter than its header says.
    case truncated(file: String, expected: Int, found: Int)
    /// The file is longer than its header says.
    case trailingBytes(file: String, expected: Int, found: Int)
    /// A label outside `0…9`, at the given zero-based index.
    case badLabel(file: String, index: Int, value: UInt8)
    /// A gzip stream that zlib could not decompress.
    case corruptGzip(file: String, reason: String)
    /// An images file and its labels file disagree on the number of examples.
    case countMismatch(images: String, imageCount: Int, labels: String, labelCount: Int)
    /// The data set has more non-zero pixels than 32-bit CSR indices can address.
    case tooManyNonZeros(file: String, count: Int)
    /// A file's size differs from the published one.
    case sizeMismatch(file: String, expected: Int, found: Int)
    /// A file's SHA-256 differs from the published one.
    case checksumMismatch(file: String, expected: String, found: String)
    /// Split sizes that the data set cannot satisfy.
    case invalidSplit(String)
    /// Fetching the data set failed; the message says which step and why.
    case fetchFailed(String)

    /// A one-line message naming the file and the problem.
    public var description: String {
        switch self {
        case let .fileNotFound(path):
            return "\(path): no such file"
        case let .missingFile(directory, tried):
            return "\(directory): missing file: looked for \(tried.joined(separator: ", "))"
        case let .io(path, reason):
            return "\(path): \(reason)"
        case let .badMagic(file, expected, found):
            return "\(file): bad magic number \(hex(found)), expected \(hex(expected)) (\(kind(expected)))"
        case let .badDimensions(file, expected, found):
            let shape = found.map(String.init).joined(separator: "×")
            return "\(file): wrong dimensions: expected \(expected), found \(shape)"
        case let .truncated(file, expected, found):
            return "\(file): truncated: expected \(expected) bytes, found \(found)"
        case let .trailingBytes(file, expected, found):
            return "\(file): trailing bytes: expected \(expected) bytes, found \(found)"
        case let .badLabel(file, index, value):
            return "\(file): bad label \(value) at index \(index), expected 0…9"
        case let .corruptGzip(file, reason):
            return "\(file): corrupt gzip data: \(reason)"
        case let .countMismatch(images, imageCount, labels, labelCount):
            return "\(images): \(imageCount) images but \(labels) has \(labelCount) labels"
        case let .tooManyNonZeros(file, count):
            return "\(file): \(count) non-zero pixels exceed the 32-bit CSR index range"
        case let .sizeMismatch(file, expected, found):
            return "\(file): wrong size: expected \(expected) bytes, found \(found)"
        case let .checksumMismatch(file, expected, found):
            return "\(file): sha256 mismatch: expected \(expected), found \(found)"
        case let .invalidSplit(message):
            return "invalid split: \(message)"
        case let .fetchFailed(message):
            return "MNIST fetch failed: \(message)"
        }
    }
}

private func hex(_ v: UInt32) -> String {
    let digits = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}

private func kind(_ magic: UInt32) -> String {
    switch magic {
    case IDXReader.imagesMagic: return "IDX images, uint8, 3 dimensions"
    case IDXReader.labelsMagic: return "IDX labels, uint8, 1 dimension"
    default: return "IDX"
    }
}
