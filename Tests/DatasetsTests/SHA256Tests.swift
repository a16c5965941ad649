import Datasets
import Foundation
import Testing

@Suite struct SHA256Tests {
    static let vectors: [(String, [UInt8], String)] = [
        ("empty", [], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", Array("abc".utf8), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("448-bit", Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8),
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        ("896-bit", Array(("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
                           + "klmnopqrlmnopqrsmnopqrstnopqrstu").utf8),
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
    ]

    @Test("FIPS 180-4 test vectors", arguments: 0 ..< vectors.count)
    func vector(_ i: Int) {
        let (_, message, digest) = Self.vectors[i]
        #expect(SHA256Digest.hex(of: message) == digest)
    }

    @Test("one million 'a' matches the standard digest")
    func millionA() {
        let a = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(SHA256Digest.hex(of: a) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("every message length around the padding boundary agrees with sha256sum")
    func paddingBoundary() throws {
        let dir = try TemporaryDirectory()
        for length in [54, 55, 56, 57, 63, 64, 65, 119, 120, 128] {
            let bytes = (0 ..< length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            let path = try dir.write(bytes, to: "m\(length)")
            #expect(SHA256Digest.hex(of: bytes) == (try Self.sha256sum(path)), "length \(length)")
        }
    }

    @Test("hashing a file in 1 MiB chunks matches sha256sum")
    func file() throws {
        let dir = try TemporaryDirectory()
        let bytes = IDXFixture.pixels(count: 3000)    // 2.35 MB: more than two chunks
        let path = try dir.write(bytes, to: "blob")
        #expect(try SHA256Digest.hex(ofFile: path) == (try Self.sha256sum(path)))
        #expect(throws: DatasetError.fileNotFound(path: dir.file("none"))) { try SHA256Digest.hex(ofFile: dir.file("none")) }
    }

    /// The system's sha256sum, as an independent oracle.
    static func sha256sum(_ path: String) throws -> String {
        let process = Process()
        let pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [path]
        process.standardOutput = pipe
        try process.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: out, as: UTF8.self).split(separator: " ").first.map(String.init) ?? ""
    }
}
