import Foundation

/// SHA-256 (FIPS 180-4), streaming: feed bytes with `update` as they arrive, then
/// `finalize`. Used to verify downloaded data against published hashes without depending
/// on a crypto library.
public struct SHA256: Sendable {
    private var state: [UInt32] = [
        0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a,
        0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19,
    ]
    /// Bytes of an incomplete block, fewer than 64.
    private var pending: [UInt8] = []
    /// Total message length so far, in bytes.
    private var length: UInt64 = 0

    /// The round constants: first 32 bits of the fractional parts of the cube roots of the
    /// first 64 primes.
    private static let k: [UInt32] = [
        0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5,
        0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174,
        0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
        0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7, 0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967,
        0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85,
        0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
        0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
        0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2,
    ]

    /// An empty hash state.
    public init() {}

    /// Appends `bytes` to the message.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Appends the bytes of `buffer` to the message.
    public mutating func update(_ buffer: UnsafeRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        length &+= UInt64(buffer.count)
        var offset = 0
        if !pending.isEmpty {
            let take = min(64 - pending.count, buffer.count)
            pending.append(contentsOf: UnsafeRawBufferPointer(start: base, count: take))
            offset = take
            if pending.count < 64 { return }
            pending.withUnsafeBytes { compress($0.baseAddress!, blocks: 1) }
            pending.removeAll(keepingCapacity: true)
        }
        let blocks = (buffer.count - offset) / 64
        if blocks > 0 { compress(base + offset, blocks: blocks) }
        offset += blocks * 64
        if offset < buffer.count {
            pending.append(contentsOf: UnsafeRawBufferPointer(start: base + offset, count: buffer.count - offset))
        }
    }

    /// The 32-byte digest of everything passed to `update` so far. The state itself is not
    /// changed, so more bytes may still be appended.
    public func finalize() -> [UInt8] {
        var copy = self
        let bitLength = length &* 8
        var tail: [UInt8] = [0x80]
        let used = (pending.count + 1) % 64
        tail.append(contentsOf: repeatElement(0, count: (56 - used + 64) % 64))
        withUnsafeBytes(of: bitLength.bigEndian) { tail.append(contentsOf: $0) }
        copy.update(tail)
        precondition(copy.pending.isEmpty, "SHA256: padding left \(copy.pending.count) bytes")
        var digest = [UInt8]()
        digest.reserveCapacity(32)
        for word in copy.state { withUnsafeBytes(of: word.bigEndian) { digest.append(contentsOf: $0) } }
        return digest
    }

    /// The lowercase hexadecimal form of `finalize()`.
    public func hexDigest() -> String { Self.hex(finalize()) }

    /// SHA-256 of `bytes`.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        var h = SHA256()
        h.update(bytes)
        return h.finalize()
    }

    /// Lowercase hexadecimal SHA-256 of the file at `path`, read in 1 MiB chunks.
    public static func hexDigest(ofFile path: String) throws(DatasetError) -> String {
        guard FileManager.default.fileExists(atPath: path) else { throw .fileNotFound(path: path) }
        let handle: FileHandle
        do { handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path)) } catch {
            throw .io(path: path, reason: "cannot open: \(error.localizedDescription)")
        }
        defer { try? handle.close() }
        var h = SHA256()
        while true {
            let chunk: Data?
            do { chunk = try handle.read(upToCount: 1 << 20) } catch {
                throw .io(path: path, reason: "read failed: \(error.localizedDescription)")
            }
            guard let chunk, !chunk.isEmpty else { break }
            chunk.withUnsafeBytes { h.update($0) }
        }
        return h.hexDigest()
    }

    /// Lowercase hexadecimal of `bytes`.
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Runs the compression function over `blocks` consecutive 64-byte blocks at `p`.
    ///
    /// Written over scalar locals with a rolling 16-word message schedule and the masking
    /// shifts `&>>`/`&<<`, which compile to plain instructions even in debug builds (tests
    /// hash the 55 MB of MNIST there); pointer and array accesses stay out of the round.
    private mutating func compress(_ p: UnsafeRawPointer, blocks: Int) {
        var h0 = state[0], h1 = state[1], h2 = state[2], h3 = state[3]
        var h4 = state[4], h5 = state[5], h6 = state[6], h7 = state[7]
        Self.k.withUnsafeBufferPointer { kBuffer in
            let k = kBuffer.baseAddress!
            for block in 0 ..< blocks {
                let bp = p + block * 64
                @inline(__always) func word(_ t: Int) -> UInt32 {
                    UInt32(bigEndian: bp.loadUnaligned(fromByteOffset: 4 * t, as: UInt32.self))
                }
                var w0 = word(0), w1 = word(1), w2 = word(2), w3 = word(3)
                var w4 = word(4), w5 = word(5), w6 = word(6), w7 = word(7)
                var w8 = word(8), w9 = word(9), w10 = word(10), w11 = word(11)
                var w12 = word(12), w13 = word(13), w14 = word(14), w15 = word(15)
                var a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7
                for t in 0 ..< 64 {
                    // Round t consumes w0 = W[t]; the window then slides by one word.
                    let sigma1 = (e &>> 6 | e &<< 26) ^ (e &>> 11 | e &<< 21) ^ (e &>> 25 | e &<< 7)
                    let choose = (e & f) ^ (~e & g)
                    let t1 = h &+ sigma1 &+ choose &+ k[t] &+ w0
                    let sigma0 = (a &>> 2 | a &<< 30) ^ (a &>> 13 | a &<< 19) ^ (a &>> 22 | a &<< 10)
                    let majority = (a & b) ^ (a & c) ^ (b & c)
                    h = g; g = f; f = e; e = d &+ t1
                    d = c; c = b; b = a; a = t1 &+ sigma0 &+ majority
                    // W[t+16] = σ1(W[t+14]) + W[t+9] + σ0(W[t+1]) + W[t]
                    let s0 = (w1 &>> 7 | w1 &<< 25) ^ (w1 &>> 18 | w1 &<< 14) ^ (w1 &>> 3)
                    let s1 = (w14 &>> 17 | w14 &<< 15) ^ (w14 &>> 19 | w14 &<< 13) ^ (w14 &>> 10)
                    let next = s1 &+ w9 &+ s0 &+ w0
                    w0 = w1; w1 = w2; w2 = w3; w3 = w4; w4 = w5; w5 = w6; w6 = w7; w7 = w8
                    w8 = w9; w9 = w10; w10 = w11; w11 = w12; w12 = w13; w13 = w14; w14 = w15; w15 = next
                }
                h0 &+= a; h1 &+= b; h2 &+= c; h3 &+= d
                h4 &+= e; h5 &+= f; h6 &+= g; h7 &+= h
            }
        }
        state = [h0, h1, h2, h3, h4, h5, h6, h7]
    }
}
