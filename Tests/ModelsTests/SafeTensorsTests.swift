import Foundation
import Testing
@testable import Models

/// `SafeTensors`: bytes that round-trip, the layout the format prescribes, and a clear refusal
/// of every kind of malformed file.
@Suite struct SafeTensorsTests {
    static let sample = SafeTensors(
        tensors: [("0.weight", .init(shape: [2, 3], values: [1, -2, 3.5, 0, .leastNonzeroMagnitude, -0.0])),
                  ("0.bias", .init(shape: [2], values: [0.25, -7])),
                  ("scalar", .init(shape: [], values: [42])),
                  ("empty", .init(shape: [0, 4], values: []))],
        metadata: ["format": "test", "config": #"{"a": [1, 2], "b": "x/y \"q\""}"#])

    /// A file built by hand: `header` (JSON text) padded as the format requires, then `data`.
    static func file(header: String, data: [UInt8]) -> [UInt8] {
        var json = Array(header.utf8)
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        return withUnsafeBytes(of: UInt64(json.count).littleEndian, Array.init) + json + data
    }

    @Test("encoding then decoding gives the same tensors, in order, and the same metadata")
    func roundTrip() throws {
        let decoded = try SafeTensors(decoding: Self.sample.encoded())
        #expect(decoded == Self.sample)
        #expect(decoded.tensors.map(\.name) == ["0.weight", "0.bias", "scalar", "empty"])
        #expect(decoded["0.weight"]?.values[5].sign == .minus, "−0 keeps its sign bit")
    }

    @Test("the layout: little-endian header length, space-padded JSON to a multiple of 8, little-endian F32 data back to back")
    func layout() throws {
        let bytes = Self.sample.encoded()
        let n = Int(bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        #expect(n % 8 == 0 && 8 + n <= bytes.count)
        let header = try #require(JSONSerialization.jsonObject(with: Data(bytes[8 ..< 8 + n])) as? [String: Any])
        let bias = try #require(header["0.bias"] as? [String: Any])
        #expect(bias["dtype"] as? String == "F32")
        #expect(bias["shape"] as? [Int] == [2])
        #expect(bias["data_offsets"] as? [Int] == [24, 32])
        #expect((header["__metadata__"] as? [String: String])?["format"] == "test")
        // 0.25 is 0x3E800000: little-endian bytes 00 00 80 3E at data offset 24.
        #expect(Array(bytes[8 + n + 24 ..< 8 + n + 28]) == [0x00, 0x00, 0x80, 0x3E])
        #expect(bytes.count == 8 + n + 4 * (6 + 2 + 1))
    }

    @Test("a file without tensors or metadata round-trips")
    func emptyFile() throws {
        let empty = SafeTensors(tensors: [])
        #expect(try SafeTensors(decoding: empty.encoded()) == empty)
    }

    @Test("a file written by another writer (keys in any order, offsets not in name order, no padding beyond the rule) decodes")
    func foreignFile() throws {
        let header = #"{"b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "__metadata__": {"k": "v"}, "a": {"shape": [2], "data_offsets": [4, 12], "dtype": "F32"}}"#
        let data: [UInt8] = [0, 0, 0x80, 0x3F, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40]     // 1, 2, 3
        let file = try SafeTensors(decoding: Self.file(header: header, data: data))
        #expect(file["b"]?.values == [1])
        #expect(file["a"]?.values == [2, 3])
        #expect(file.metadata == ["k": "v"])
    }

    @Test("fewer than 8 bytes: truncated")
    func truncated() {
        #expect(throws: SafeTensorsError.truncated(size: 5)) { try SafeTensors(decoding: [1, 2, 3, 4, 5]) }
    }

    @Test("a header length past the end: refused, also when cut inside the data")
    func headerPastEnd() {
        let bytes = Self.sample.encoded()
        let n = bytes.count - 8
        var huge = bytes
        huge.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64.max.littleEndian, Array.init))
        #expect(throws: SafeTensorsError.headerPastEnd(headerLength: .max, available: n)) { try SafeTensors(decoding: huge) }
        // Cutting the data off leaves the header intact but the offsets run past the end.
        let cut = Array(bytes.dropLast(4))
        #expect {
            try SafeTensors(decoding: cut)
        } throws: { error in
            guard case .offsetsOutOfRange = error as? SafeTensorsError else { return false }
            return true
        }
        // Cutting inside the header.
        let header = Array(bytes.prefix(20))
        #expect(throws: SafeTensorsError.headerPastEnd(headerLength: UInt64(bytes.count - 8 - 4 * 9), available: 12)) {
            try SafeTensors(decoding: header)
        }
    }

    @Test("a header that is not the format's JSON is malformed", arguments: [
        "not json",
        "[1, 2]",
        #"{"t": {"dtype": "F32", "shape": [1]}}"#,                                   // no data_offsets
        #"{"t": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}"#,         // fractional dimension
        #"{"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}"#,          // negative dimension
        #"{"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}}"#,        // three offsets
        #"{"__metadata__": {"k": 1}}"#,                                              // metadata not strings
    ])
    func malformedHeader(header: String) {
        #expect {
            try SafeTensors(decoding: Self.file(header: header, data: [0, 0, 0, 0]))
        } throws: { error in
            guard case .malformedHeader = error as? SafeTensorsError else { return false }
            return "\(error)".hasPrefix("malformed safetensors header")
        }
    }

    @Test("a dtype other than F32 is refused, naming the tensor and the dtype", arguments: ["F16", "F64", "I32", "BOGUS"])
    func unknownDType(dtype: String) {
        let header = #"{"t": {"dtype": "\#(dtype)", "shape": [1], "data_offsets": [0, 4]}}"#
        #expect(throws: SafeTensorsError.unsupportedDType(tensor: "t", dtype: dtype)) {
            try SafeTensors(decoding: Self.file(header: header, data: [0, 0, 0, 0]))
        }
    }

    @Test("offsets out of range: past the data, negative, or begin after end", arguments: [[0, 8], [-4, 0], [4, 0]])
    func offsetsOutOfRange(offsets: [Int]) {
        let header = #"{"t": {"dtype": "F32", "shape": [1], "data_offsets": [\#(offsets[0]), \#(offsets[1])]}}"#
        #expect(throws: SafeTensorsError.offsetsOutOfRange(tensor: "t", begin: offsets[0], end: offsets[1], dataSize: 4)) {
            try SafeTensors(decoding: Self.file(header: header, data: [0, 0, 0, 0]))
        }
    }

    @Test("overlapping tensors are refused")
    func overlapping() {
        let header = #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#
        #expect(throws: SafeTensorsError.overlappingTensors("a", "b")) {
            try SafeTensors(decoding: Self.file(header: header, data: [UInt8](repeating: 0, count: 12)))
        }
    }

    @Test("data that no tensor covers (a gap or trailing bytes) is refused")
    func uncovered() {
        let gap = #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}"#
        #expect(throws: SafeTensorsError.uncoveredData(begin: 4, end: 8)) {
            try SafeTensors(decoding: Self.file(header: gap, data: [UInt8](repeating: 0, count: 12)))
        }
        let trailing = #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#
        #expect(throws: SafeTensorsError.uncoveredData(begin: 4, end: 8)) {
            try SafeTensors(decoding: Self.file(header: trailing, data: [UInt8](repeating: 0, count: 8)))
        }
    }

    @Test("a shape whose size differs from its offsets' span is refused")
    func sizeMismatch() {
        let header = #"{"t": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}}"#
        #expect(throws: SafeTensorsError.sizeMismatch(tensor: "t", shape: [2, 2], expectedBytes: 16, foundBytes: 12)) {
            try SafeTensors(decoding: Self.file(header: header, data: [UInt8](repeating: 0, count: 12)))
        }
    }

    @Test("every error reads as one sentence naming the problem")
    func messages() {
        #expect("\(SafeTensorsError.truncated(size: 3))".contains("truncated"))
        #expect("\(SafeTensorsError.unsupportedDType(tensor: "x", dtype: "F16"))".contains("'F16'"))
        #expect("\(SafeTensorsError.overlappingTensors("a", "b"))".contains("overlap"))
    }
}
