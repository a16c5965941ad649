/// 64-bit FNV-1a, the non-cryptographic hash behind the data fingerprints: simple enough
/// to reimplement anywhere, so a fingerprint can be checked without this code.
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var h = value
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        value = h
    }

    /// Hashes `v` as 8 little-endian bytes.
    mutating func update(_ v: UInt64) {
        withUnsafeBytes(of: v.littleEndian) { update($0) }
    }
}
