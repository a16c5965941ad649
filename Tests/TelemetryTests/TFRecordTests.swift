import Testing
@testable import Telemetry
import SystemIO

@Suite struct TFRecordTests {
    @Test("the CRC mask matches TensorFlow's on known values and unmask inverts it")
    func masking() {
        // Expected values from tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c
        // (b"" → 0xa282ead8, b"123456789" → 0xc78ab0e5, eight zero bytes → 0x07980329).
        let empty: [UInt8] = []
        let digits = Array("123456789".utf8)
        let zeros = [UInt8](repeating: 0, count: 8)
        #expect(TFRecord.mask(empty.withUnsafeBytes { CRC32C.checksum($0) }) == 0xA282_EAD8)
        #expect(TFRecord.mask(digits.withUnsafeBytes { CRC32C.checksum($0) }) == 0xC78A_B0E5)
        #expect(TFRecord.mask(zeros.withUnsafeBytes { CRC32C.checksum($0) }) == 0x0798_0329)
        #expect(TFRecord.mask(0xFFFF_FFFF) == 0xA282_EAD7)
        for crc: UInt32 in [0, 1, 0xE306_9283, 0x8000_0000, 0xFFFF_FFFF] {
            #expect(TFRecord.unmask(TFRecord.mask(crc)) == crc)
        }
    }

    @Test("a record is length, masked CRC of the length, payload, masked CRC of the payload")
    func framing() {
        // The file_version Event at wall_time 1764387200.25 framed by
        // tensorboard.summary.writer.record_writer.RecordWriter (tensorboard 2.21).
        let payload: [UInt8] = [
            0x09, 0x00, 0x00, 0x10, 0x60, 0x9A, 0x4A, 0xDA, 0x41, 0x1A, 0x0D, 0x62, 0x72, 0x61, 0x69, 0x6E,
            0x2E, 0x45, 0x76, 0x65, 0x6E, 0x74, 0x3A, 0x32,
        ]
        let framed: [UInt8] = [
            0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xA3, 0x7F, 0x4B, 0x22,
        ] + payload + [0xAD, 0x91, 0x9A, 0x5C]
        #expect(TFRecord.frame(payload) == framed)
        #expect(TFRecord.frame(payload).count == payload.count + TFRecord.overhead)

        var two: [UInt8] = []
        TFRecord.append(payload, to: &two)
        TFRecord.append([], to: &two)
        #expect(Array(two[..<framed.count]) == framed)
        // An empty payload: zero length, then the masked CRC of nothing.
        #expect(Array(two[framed.count...]) == [0, 0, 0, 0, 0, 0, 0, 0, 0x29, 0x03, 0x98, 0x07, 0xD8, 0xEA, 0x82, 0xA2])
    }
}
