import SystemIO

/// The TFRecord framing TensorBoard event files use: each record is
///
/// | bytes | content                                   |
/// |-------|-------------------------------------------|
/// | 8     | payload length, `uint64` little-endian    |
/// | 4     | masked CRC-32C of those 8 bytes           |
/// | n     | payload (a serialized `Event`)            |
/// | 4     | masked CRC-32C of the payload             |
///
/// (tensorflow `core/lib/io/record_writer.cc`.) Hand-written on purpose: no Swift package
/// writes TFRecord framing; the `Event` payload itself comes from protoc-c (`TensorBoardEvent`).
enum TFRecord {
    /// Bytes of framing around each payload.
    static let overhead = 16

    /// TensorFlow's CRC mask, `((crc >> 15) | (crc << 17)) &+ 0xa282ead8`: a rotation plus a
    /// constant, so that a CRC computed over data that itself contains CRCs stays useful.
    static func mask(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    /// The inverse of ``mask(_:)``.
    static func unmask(_ masked: UInt32) -> UInt32 {
        let rotated = masked &- 0xA282_EAD8
        return (rotated >> 17) | (rotated << 15)
    }

    /// Appends one framed record holding `payload` to `output`.
    static func append(_ payload: [UInt8], to output: inout [UInt8]) {
        let start = output.count
        withUnsafeBytes(of: UInt64(payload.count).littleEndian) { output.append(contentsOf: $0) }
        let lengthCRC = output.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[start..<start + 8])) }
        appendLittleEndian(mask(lengthCRC), to: &output)
        output.append(contentsOf: payload)
        appendLittleEndian(mask(payload.withUnsafeBytes { CRC32C.checksum($0) }), to: &output)
    }

    /// One framed record holding `payload`.
    static func frame(_ payload: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(payload.count + overhead)
        append(payload, to: &output)
        return output
    }

    private static func appendLittleEndian(_ value: UInt32, to output: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { output.append(contentsOf: $0) }
    }
}
