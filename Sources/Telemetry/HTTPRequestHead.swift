/// The part of an HTTP/1.x request the Prometheus endpoint looks at.
struct HTTPRequestHead {
    /// The method and path of a well-formed request line, or `nil` if it was malformed.
    let request: (method: String, path: String)?

    /// Examines the bytes received so far. Returns `nil` while more input is needed: the header
    /// block is not complete and the request line, if complete, is well-formed. Returns a head
    /// with `request == nil` as soon as the request line is known to be malformed.
    static func parse(_ bytes: [UInt8]) -> HTTPRequestHead? {
        guard let lineEnd = bytes.firstIndex(of: UInt8(ascii: "\n")) else {
            return nil
        }
        var line = bytes[..<lineEnd]
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        guard let request = parseRequestLine(line) else { return HTTPRequestHead(request: nil) }
        guard hasCompleteHeaders(bytes) else { return nil }
        return HTTPRequestHead(request: request)
    }

    /// `METHOD SP request-target SP HTTP/1.x`, with an origin-form target (`/path?query`).
    private static func parseRequestLine(_ line: ArraySlice<UInt8>) -> (method: String, path: String)? {
        // Printable ASCII only: no control characters, no bare CR, no UTF-8.
        guard line.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return nil }
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        let method = parts[0]
        let target = parts[1]
        let version = String(decoding: parts[2], as: UTF8.self)
        guard !method.isEmpty,
              method.allSatisfy({ $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }),
              target.first == UInt8(ascii: "/"),
              version == "HTTP/1.1" || version == "HTTP/1.0" else { return nil }
        let pathEnd = target.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) ?? target.endIndex
        return (String(decoding: method, as: UTF8.self), String(decoding: target[..<pathEnd], as: UTF8.self))
    }

    /// Whether `bytes` contain the empty line that ends the header block (CRLF or bare LF).
    private static func hasCompleteHeaders(_ bytes: [UInt8]) -> Bool {
        var previousWasNewline = false
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\n") {
                if previousWasNewline { return true }
                previousWasNewline = true
            } else if byte != UInt8(ascii: "\r") {
                previousWasNewline = false
            }
            index += 1
        }
        return false
    }
}
