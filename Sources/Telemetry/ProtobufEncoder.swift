/// A minimal protocol-buffers wire-format writer: only the field kinds TensorBoard's event
/// messages need (varint, 64-bit, 32-bit and length-delimited fields, packed doubles).
///
/// Hand-written rather than generated because the event files need four small messages and
/// this module links nothing; the field numbers live in ``TensorBoardEvent``. Each method
/// writes its field unconditionally: leaving out proto3 default values, as generated encoders
/// do, is the caller's decision.
struct ProtobufEncoder {
    /// The encoded bytes so far.
    private(set) var bytes: [UInt8] = []

    /// The wire types used here (`encoding.md`: 0 varint, 1 I64, 2 LEN, 5 I32).
    enum WireType: UInt64 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
        case fixed32 = 5
    }

    /// An empty message.
    init() {}

    /// Appends `value` as a base-128 varint, least significant group first.
    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// Appends the key of field `number`: `(number << 3) | wireType`.
    mutating func key(_ number: Int, _ wireType: WireType) {
        precondition(number >= 1 && number < 1 << 29, "protobuf field number \(number) out of range")
        varint(UInt64(number) << 3 | wireType.rawValue)
    }

    /// A `double` field: eight little-endian bytes of the IEEE 754 bit pattern.
    mutating func double(_ number: Int, _ value: Double) {
        key(number, .fixed64)
        littleEndian(value.bitPattern)
    }

    /// A `float` field: four little-endian bytes of the IEEE 754 bit pattern.
    mutating func float(_ number: Int, _ value: Float) {
        key(number, .fixed32)
        littleEndian(value.bitPattern)
    }

    /// An `int64` field: the two's-complement bit pattern as a varint (negative values take
    /// ten bytes, as the format prescribes).
    mutating func int64(_ number: Int, _ value: Int64) {
        key(number, .varint)
        varint(UInt64(bitPattern: value))
    }

    /// An enum field (a varint).
    mutating func enumValue(_ number: Int, _ value: Int32) {
        int64(number, Int64(value))
    }

    /// A `string` field: the length, then the UTF-8 bytes.
    mutating func string(_ number: Int, _ value: String) {
        lengthDelimited(number, Array(value.utf8))
    }

    /// An embedded message field, encoded by `body` into a fresh encoder.
    mutating func message(_ number: Int, _ body: (inout ProtobufEncoder) -> Void) {
        var inner = ProtobufEncoder()
        body(&inner)
        lengthDelimited(number, inner.bytes)
    }

    /// A packed `repeated double` field: one key, the byte length, then the values back to
    /// back. Nothing is written for an empty array, as generated encoders do.
    mutating func packedDoubles(_ number: Int, _ values: [Double]) {
        guard !values.isEmpty else { return }
        key(number, .lengthDelimited)
        varint(UInt64(values.count * 8))
        bytes.reserveCapacity(bytes.count + values.count * 8)
        for v in values { littleEndian(v.bitPattern) }
    }

    private mutating func lengthDelimited(_ number: Int, _ payload: [UInt8]) {
        key(number, .lengthDelimited)
        varint(UInt64(payload.count))
        bytes.append(contentsOf: payload)
    }

    private mutating func littleEndian<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}
