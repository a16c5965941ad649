internal import Crypto
import Foundation

/// Lowercase hexadecimal SHA-256 digests (swift-crypto's `SHA256`), for checking downloaded
/// data against published hashes.
public enum SHA256Digest {
    /// The digest of `bytes`.
    public static func hex(of bytes: some DataProtocol) -> String {
        hex(SHA256.hash(data: bytes))
    }

    /// The digest of the file at `path`, read in 1 MiB chunks.
    public static func hex(ofFile path: String) throws(DatasetError) -> String {
        guard FileManager.default.fileExists(atPath: path) else { throw .fileNotFound(path: path) }
        let handle: FileHandle
        do { handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path)) } catch {
            throw .io(path: path, reason: "cannot open: \(error.localizedDescription)")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while true {
            let chunk: Data?
            do { chunk = try handle.read(upToCount: 1 << 20) } catch {
                throw .io(path: path, reason: "read failed: \(error.localizedDescription)")
            }
            guard let chunk, !chunk.isEmpty else { break }
            hasher.update(data: chunk)
        }
        return hex(hasher.finalize())
    }

    private static func hex(_ digest: SHA256.Digest) -> String {
        digest.map { byte in
            let text = String(byte, radix: 16)
            return byte < 16 ? "0" + text : text
        }.joined()
    }
}
