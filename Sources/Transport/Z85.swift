private import CZeroMQ

/// Z85 (ZeroMQ RFC 32) helpers for CURVE keys: 32 bytes ⇄ 40 printable characters.
enum Z85 {
    /// The 85 characters of the Z85 alphabet.
    static let alphabet = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8)

    /// Key length in characters.
    static let keyLength = 40

    /// The 32 key bytes of a Z85 key, or nil when `key` is not 40 valid Z85 characters
    /// (including the 5-character groups that would overflow 32 bits).
    static func decodeKey(_ key: String) -> [UInt8]? {
        let utf8 = Array(key.utf8)
        guard utf8.count == keyLength, utf8.allSatisfy(alphabet.contains) else { return nil }
        var out = [UInt8](repeating: 0, count: 32)
        let ok = out.withUnsafeMutableBufferPointer { dst in
            zmq_z85_decode(dst.baseAddress, key) != nil
        }
        return ok ? out : nil
    }

    /// Whether `key` is a well-formed Z85 CURVE key.
    static func isValidKey(_ key: String) -> Bool { decodeKey(key) != nil }

    /// The Z85 text of 32 key bytes.
    static func encodeKey(_ bytes: [UInt8]) -> String {
        precondition(bytes.count == 32, "a CURVE key has 32 bytes, got \(bytes.count)")
        var text = [CChar](repeating: 0, count: keyLength + 1)
        _ = bytes.withUnsafeBufferPointer { src in
            zmq_z85_encode(&text, src.baseAddress, 32)
        }
        return string(fromCBuffer: text)
    }
}
