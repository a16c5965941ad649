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

    /// What is wrong with `key` as a Z85 CURVE key, as a phrase naming the offending character
    /// and its 1-based position; nil when it is a valid key. `secret`: never quote valid
    /// characters of the key (a group that overflows is named by its positions only).
    static func problem(_ key: String, secret: Bool = false) -> String? {
        let chars = Array(key)
        guard chars.count == keyLength else { return "expected \(keyLength) characters, got \(chars.count)" }
        if let i = chars.firstIndex(where: { c in !(c.isASCII && alphabet.contains(c.asciiValue!)) }) {
            let shown = chars[i].unicodeScalars.allSatisfy { $0.value >= 0x21 && $0.value < 0x7f } ? "'\(chars[i])'" : "U+" + String(chars[i].unicodeScalars.first!.value, radix: 16, uppercase: true)
            return "character \(shown) at position \(i + 1) is not a Z85 character"
        }
        guard decodeKey(key) == nil else { return nil }
        // Valid characters, yet undecodable: a 5-character group worth more than 2^32 − 1.
        let group = (0..<(keyLength / 5)).first { g in decodeKey(String(chars[(g * 5)..<(g * 5 + 5)]) + String(repeating: "0", count: keyLength - 5)) == nil } ?? 0
        let quoted = secret ? "" : " '\(String(chars[(group * 5)..<(group * 5 + 5)]))'"
        return "the 5-character group\(quoted) at positions \(group * 5 + 1)–\(group * 5 + 5) exceeds 32 bits"
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
