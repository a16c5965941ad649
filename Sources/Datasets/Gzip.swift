private import CZlib

/// The only place Datasets calls zlib: gzip detection and whole-buffer decompression.
enum Gzip {
    /// `true` when `bytes` starts with the gzip magic bytes `1f 8b`.
    static func isGzip(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
    }

    /// Decompresses a gzip stream (one or more concatenated members) held in memory.
    ///
    /// - Parameters:
    ///   - input: the compressed bytes, starting with `1f 8b`.
    ///   - name: the file name used in error messages.
    static func decompress(_ input: UnsafeRawBufferPointer, name: String) throws(DatasetError) -> [UInt8] {
        guard let inBase = input.baseAddress?.assumingMemoryBound(to: UInt8.self), input.count > 0 else {
            throw .corruptGzip(file: name, reason: "empty input")
        }
        // The trailer's ISIZE field is the uncompressed size mod 2³²: a good first guess.
        var capacity = 1 << 16
        if input.count >= 18 {
            let isize = input.loadUnaligned(fromByteOffset: input.count - 4, as: UInt32.self).littleEndian
            capacity = max(capacity, min(Int(isize) + 1, input.count * 1100))
        }
        var output = [UInt8](repeating: 0, count: capacity)
        var produced = 0

        var stream = z_stream()
        let initStatus = inflateInit2_(&stream, 16 + MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard initStatus == Z_OK else { throw .corruptGzip(file: name, reason: "inflateInit2 failed (\(initStatus))") }
        defer { inflateEnd(&stream) }

        var consumed = 0
        while true {
            if produced == output.count {
                output.append(contentsOf: repeatElement(0, count: output.count))
            }
            let status: Int32 = output.withUnsafeMutableBufferPointer { out in
                stream.next_in = UnsafeMutablePointer(mutating: inBase + consumed)
                stream.avail_in = UInt32(clamping: input.count - consumed)
                stream.next_out = out.baseAddress! + produced
                stream.avail_out = UInt32(clamping: out.count - produced)
                let inBefore = stream.avail_in, outBefore = stream.avail_out
                let status = inflate(&stream, Z_NO_FLUSH)
                consumed += Int(inBefore - stream.avail_in)
                produced += Int(outBefore - stream.avail_out)
                return status
            }
            switch status {
            case Z_OK:
                continue
            case Z_BUF_ERROR where consumed == input.count:
                throw .corruptGzip(file: name, reason: "unexpected end of stream after \(produced) bytes")
            case Z_BUF_ERROR:
                continue    // output full; the loop grows it
            case Z_STREAM_END:
                let rest = UnsafeRawBufferPointer(rebasing: input[consumed...])
                if rest.isEmpty {
                    output.removeSubrange(produced...)
                    return output
                }
                guard isGzip(rest) else {
                    throw .corruptGzip(file: name, reason: "\(rest.count) bytes of garbage after the gzip stream")
                }
                inflateReset(&stream)    // another member follows
            default:
                let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                throw .corruptGzip(file: name, reason: message)
            }
        }
    }
}
