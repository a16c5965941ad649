import Foundation

/// Named `F32` tensors and string metadata in the safetensors format
/// (https://huggingface.co/docs/safetensors), encoded and decoded in memory: no file I/O.
///
/// ## Layout
/// | bytes | contents                                                                       |
/// |-------|--------------------------------------------------------------------------------|
/// | 8     | header length `N`, unsigned little-endian                                      |
/// | `N`   | UTF-8 JSON `{"name": {"dtype", "shape", "data_offsets": [begin, end]}, …, "__metadata__": {…}}`, space-padded to a multiple of 8 |
/// | rest  | the tensors' little-endian values; offsets are relative to the start of this region |
///
/// ``encoded()`` writes the tensors in their order here, back to back. ``init(decoding:)``
/// accepts what the format allows and this type can hold: `F32` tensors whose offsets lie in
/// the data region, match their shape's size and together cover it exactly once.
public struct SafeTensors: Sendable, Equatable {
    /// One tensor: its shape (row-major, last index fastest) and values.
    public struct Tensor: Sendable, Equatable {
        /// Dimensions; `[]` is a scalar.
        public var shape: [Int]
        /// `shape`'s product values.
        public var values: [Float]

        /// - Precondition: `values.count` is the product of `shape`, every dimension ≥ 0.
        public init(shape: [Int], values: [Float]) {
            precondition(shape.allSatisfy { $0 >= 0 } && shape.reduce(1, *) == values.count,
                         "SafeTensors.Tensor: shape \(shape) does not hold \(values.count) values")
            self.shape = shape
            self.values = values
        }
    }

    /// The key that holds the metadata in the header.
    public static let metadataKey = "__metadata__"
    /// Headers longer than this are refused (the reference implementation's limit).
    public static let maximumHeaderLength = 100_000_000

    /// The tensors, in file order.
    public var tensors: [(name: String, tensor: Tensor)]
    /// Free-form string metadata.
    public var metadata: [String: String]

    /// - Precondition: names are distinct and none is ``metadataKey``.
    public init(tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:]) {
        let names = tensors.map(\.name)
        precondition(Set(names).count == names.count && !names.contains(Self.metadataKey),
                     "SafeTensors: tensor names must be distinct and not \(Self.metadataKey): \(names)")
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The tensor named `name`.
    public subscript(name: String) -> Tensor? {
        tensors.first { $0.name == name }?.tensor
    }

    public static func == (lhs: SafeTensors, rhs: SafeTensors) -> Bool {
        lhs.metadata == rhs.metadata && lhs.tensors.elementsEqual(rhs.tensors) { $0.name == $1.name && $0.tensor == $1.tensor }
    }

    // MARK: Encoding

    /// The file's bytes. The header's keys are sorted, so equal contents give equal bytes.
    public func encoded() -> [UInt8] {
        var entries: [String: Header.Entry] = [:]
        var offset = 0
        for (name, tensor) in tensors {
            let size = 4 * tensor.values.count
            entries[name] = Header.Entry(dtype: "F32", shape: tensor.shape, dataOffsets: [offset, offset + size])
            offset += size
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // A dictionary of strings and plain structs always encodes.
        var json = Array(try! encoder.encode(Header(entries: entries, metadata: metadata.isEmpty ? nil : metadata)))
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }

        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { bytes += $0 }
        bytes += json
        for (_, tensor) in tensors {
            for v in tensor.values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
        }
        return bytes
    }

    // MARK: Decoding

    /// Decodes and validates a file's bytes.
    public init(decoding bytes: [UInt8]) throws(SafeTensorsError) {
        guard bytes.count >= 8 else { throw .truncated(size: bytes.count) }
        let declared = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard declared <= UInt64(bytes.count - 8) else {
            throw .headerPastEnd(headerLength: declared, available: bytes.count - 8)
        }
        let headerLength = Int(declared)
        guard headerLength <= Self.maximumHeaderLength else {
            throw .malformedHeader("header of \(headerLength) bytes exceeds the limit of \(Self.maximumHeaderLength)")
        }
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: Data(bytes[8 ..< 8 + headerLength]))
        } catch {
            throw .malformedHeader(Self.describe(error))
        }

        let dataStart = 8 + headerLength
        let dataSize = bytes.count - dataStart
        var placed: [(name: String, begin: Int, end: Int, shape: [Int])] = []
        for (name, entry) in header.entries {
            guard entry.dtype == "F32" else { throw .unsupportedDType(tensor: name, dtype: entry.dtype) }
            guard entry.dataOffsets.count == 2 else {
                throw .malformedHeader("\(name): data_offsets must be [begin, end], got \(entry.dataOffsets)")
            }
            let (begin, end) = (entry.dataOffsets[0], entry.dataOffsets[1])
            guard 0 <= begin, begin <= end, end <= dataSize else {
                throw .offsetsOutOfRange(tensor: name, begin: begin, end: end, dataSize: dataSize)
            }
            guard let count = Self.elementCount(entry.shape) else {
                throw .malformedHeader("\(name): bad shape \(entry.shape)")
            }
            guard end - begin == 4 * count else {
                throw .sizeMismatch(tensor: name, shape: entry.shape, expectedBytes: 4 * count, foundBytes: end - begin)
            }
            placed.append((name, begin, end, entry.shape))
        }
        placed.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var covered = 0
        for (i, p) in placed.enumerated() {
            if p.begin < covered { throw .overlappingTensors(placed[i - 1].name, p.name) }
            if p.begin > covered { throw .uncoveredData(begin: covered, end: p.begin) }
            covered = p.end
        }
        if covered != dataSize { throw .uncoveredData(begin: covered, end: dataSize) }

        tensors = placed.map { p in
            let count = (p.end - p.begin) / 4
            let values = bytes.withUnsafeBytes { raw in
                (0..<count).map { i in
                    Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: dataStart + p.begin + 4 * i, as: UInt32.self)))
                }
            }
            return (p.name, Tensor(shape: p.shape, values: values))
        }
        metadata = header.metadata ?? [:]
    }

    /// The product of `shape`, nil when a dimension is negative or the product overflows.
    private static func elementCount(_ shape: [Int]) -> Int? {
        var count = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product <= Int.max / 4 else { return nil }
            count = product
        }
        return count
    }

    /// A decoding error as one line: what was wrong and where.
    private static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "not JSON: \(error)" }
        switch error {
        case let .dataCorrupted(c), let .typeMismatch(_, c), let .valueNotFound(_, c), let .keyNotFound(_, c):
            let path = c.codingPath.map(\.stringValue).joined(separator: ".")
            return (path.isEmpty ? "" : "\(path): ") + c.debugDescription
        @unknown default:
            return "\(error)"
        }
    }

    /// The JSON header: one entry per tensor, plus the optional metadata.
    private struct Header: Codable {
        struct Entry: Codable {
            var dtype: String
            var shape: [Int]
            var dataOffsets: [Int]
            enum CodingKeys: String, CodingKey { case dtype, shape, dataOffsets = "data_offsets" }
        }
        var entries: [String: Entry]
        var metadata: [String: String]?

        init(entries: [String: Entry], metadata: [String: String]?) {
            self.entries = entries
            self.metadata = metadata
        }

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: Key.self)
            entries = [:]
            metadata = nil
            for key in c.allKeys {
                if key.stringValue == SafeTensors.metadataKey {
                    metadata = try c.decode([String: String].self, forKey: key)
                } else {
                    entries[key.stringValue] = try c.decode(Entry.self, forKey: key)
                }
            }
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: Key.self)
            for (name, entry) in entries { try c.encode(entry, forKey: Key(stringValue: name)) }
            if let metadata { try c.encode(metadata, forKey: Key(stringValue: SafeTensors.metadataKey)) }
        }
    }
}
