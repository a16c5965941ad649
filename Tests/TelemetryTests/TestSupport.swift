import Foundation
@preconcurrency import Glibc
@testable import Telemetry

/// A clock the test moves by hand.
final class ManualClock: @unchecked Sendable {
    // @unchecked Sendable: `time` is only accessed while holding `lock`.
    private let lock = NSLock()
    private var time: Double

    init(_ start: Double = 0) { time = start }

    var now: Double {
        get { lock.withLock { time } }
        set { lock.withLock { time = newValue } }
    }

    /// The closure to inject into the code under test.
    var closure: @Sendable () -> Double { { self.now } }
}

/// Collects everything written through an injected writer.
final class OutputCapture: @unchecked Sendable {
    // @unchecked Sendable: `chunks` is only accessed while holding `lock`.
    private let lock = NSLock()
    private var chunks: [String] = []

    var writer: @Sendable (String) -> Void { { text in self.lock.withLock { self.chunks.append(text) } } }

    /// Every write so far, in order, and clears the record.
    func take() -> [String] {
        lock.withLock {
            defer { chunks = [] }
            return chunks
        }
    }
}

/// A fresh empty directory under the system temporary directory, removed by `cleanup()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "telemetry-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func cleanup() {
        try? FileManager.default.removeItem(atPath: path)
    }

    func contents() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).sorted()
    }
}

/// A parsed HTTP response as seen by the raw-socket test client.
struct RawHTTPResponse {
    let statusLine: String
    let headers: [String: String]  // lower-cased names
    let body: String

    var status: Int? { Int(statusLine.split(separator: " ").dropFirst().first ?? "") }
}

struct SocketFailure: Error, CustomStringConvertible {
    let operation: String
    let code: Int32
    var description: String { "\(operation): \(String(cString: strerror(code)))" }
}

/// Connects to 127.0.0.1:`port`, sends `bytes`, optionally shuts down its sending side, and
/// reads until the server closes.
func rawHTTPExchange(port: UInt16, bytes: [UInt8], halfClose: Bool = false) throws -> [UInt8] {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw SocketFailure(operation: "socket", code: errno) }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else { throw SocketFailure(operation: "connect", code: errno) }

    var offset = 0
    while offset < bytes.count {
        let sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
        guard sent > 0 else { throw SocketFailure(operation: "send", code: errno) }
        offset += sent
    }
    if halfClose { shutdown(fd, Int32(SHUT_WR)) }

    var received: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count == 0 { return received }
        guard count > 0 else { throw SocketFailure(operation: "recv", code: errno) }
        received.append(contentsOf: chunk[..<count])
    }
}

/// Sends `request` verbatim and parses the response.
func rawHTTP(port: UInt16, _ request: String) throws -> RawHTTPResponse {
    try parseResponse(rawHTTPExchange(port: port, bytes: Array(request.utf8)))
}

func parseResponse(_ bytes: [UInt8]) -> RawHTTPResponse {
    let text = String(decoding: bytes, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else {
        return RawHTTPResponse(statusLine: text, headers: [:], body: "")
    }
    let lines = text[..<split.lowerBound].components(separatedBy: "\r\n")
    var headers: [String: String] = [:]
    for line in lines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return RawHTTPResponse(statusLine: lines.first ?? "", headers: headers, body: String(text[split.upperBound...]))
}
