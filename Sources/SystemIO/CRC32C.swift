/// CRC-32C (Castagnoli; reflected polynomial `0x82F63B78`, initial value and final XOR
/// `0xFFFFFFFF`), the checksum that ends a checkpoint file and guards each TensorBoard record
/// (`TFRecord` in Telemetry).
///
/// CRC-32C rather than SHA-256 because the threat is disk and transfer corruption, not an
/// adversary, and it is several times faster: a 22 MB checkpoint costs a few milliseconds.
/// Software slice-by-8 (eight 256-entry tables, eight bytes per iteration); no C, no SSE 4.2
/// intrinsic. The check value of `"123456789"` is `0xE3069283`.
public struct CRC32C: Sendable {
    private var state: UInt32 = 0xFFFF_FFFF

    /// An empty running checksum.
    public init() {}

    /// The checksum of everything passed to `update` so far.
    public var value: UInt32 { ~state }

    /// The checksum of `bytes`.
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = CRC32C()
        crc.update(bytes)
        return crc.value
    }

    /// Appends `bytes` to the checksummed stream.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var p = bytes.baseAddress, !bytes.isEmpty else { return }
        var n = bytes.count
        var crc = state
        Self.table.withUnsafeBufferPointer { t in
            while n >= 8 {
                let lo = p.loadUnaligned(as: UInt32.self).littleEndian ^ crc
                let hi = p.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian
                crc = t[7 * 256 + Int(lo & 0xff)] ^ t[6 * 256 + Int((lo >> 8) & 0xff)]
                    ^ t[5 * 256 + Int((lo >> 16) & 0xff)] ^ t[4 * 256 + Int(lo >> 24)]
                    ^ t[3 * 256 + Int(hi & 0xff)] ^ t[2 * 256 + Int((hi >> 8) & 0xff)]
                    ^ t[1 * 256 + Int((hi >> 16) & 0xff)] ^ t[Int(hi >> 24)]
                p += 8
                n -= 8
            }
            while n > 0 {
                crc = t[Int((crc ^ UInt32(p.load(as: UInt8.self))) & 0xff)] ^ (crc >> 8)
                p += 1
                n -= 1
            }
        }
        state = crc
    }

    /// `table[k * 256 + b]`: the CRC of byte `b` followed by `k` zero bytes.
    private static let table: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for b in 0..<256 {
            var c = UInt32(b)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            t[b] = c
        }
        for k in 1..<8 {
            for b in 0..<256 {
                let previous = t[(k - 1) * 256 + b]
                t[k * 256 + b] = (previous >> 8) ^ t[Int(previous & 0xff)]
            }
        }
        return t
    }()
}
