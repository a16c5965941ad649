import Foundation
import Transport

/// Collects log lines from another thread (the ZAP handler).
final class LogCollector: @unchecked Sendable {
    // @unchecked Sendable: `lines` is only touched with `lock` held.
    private let lock = NSLock()
    private var lines: [String] = []

    func append(_ line: String) {
        lock.lock()
        lines.append(line)
        lock.unlock()
    }

    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return lines
    }
}

/// A fresh temporary directory, removed by `remove()`.
struct TempDir {
    let path: String

    init() throws {
        let base = FileManager.default.temporaryDirectory.path
        path = "\(base)/hypertrain-transport-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    }

    func file(_ name: String) -> String { "\(path)/\(name)" }

    func write(_ name: String, _ text: String) throws -> String {
        let p = file(name)
        try text.write(toFile: p, atomically: false, encoding: .utf8)
        // Secret key files must be private (CurveKeyPair.load refuses others' access).
        if name.hasSuffix(".key") { chmod(p, 0o600) }
        return p
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// A message generous enough to exercise the large-frame path: a small header frame and a
/// 660 KB frame (a φ of 165,000 float32s), with recognizable contents.
func largeMessage(tag: UInt8 = 1) -> [[UInt8]] {
    var big = [UInt8](repeating: 0, count: 660_000)
    for i in stride(from: 0, to: big.count, by: 997) { big[i] = UInt8(truncatingIfNeeded: i) &+ tag }
    return [Array("header-\(tag)".utf8), big]
}

/// Waits up to 5 s for a message (generous: the machine is shared and noisy).
func receiveSoon(_ socket: Socket) throws -> [[UInt8]]? {
    try socket.receive(timeoutMs: 5_000)
}

func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}

/// A ROUTER bound to `endpoint` and a DEALER connected to it (both linger 0), on a fresh
/// context closed afterwards; `body` gets them and the resolved endpoint.
func withRouterDealer(_ endpoint: String, routingID: String? = nil,
                      _ body: (Socket, Socket, String) throws -> Void) throws {
    let context = try ZMQContext()
    defer { context.close() }
    let router = try Socket(context: context, kind: .router)
    defer { router.close() }
    let dealer = try Socket(context: context, kind: .dealer)
    defer { dealer.close() }
    try router.set(.linger(milliseconds: 0))
    try dealer.set(.linger(milliseconds: 0))
    if let routingID { try dealer.set(.routingID(Array(routingID.utf8))) }
    try router.bind(endpoint)
    let resolved = try router.lastEndpoint
    try dealer.connect(resolved)
    try body(router, dealer, resolved)
}
