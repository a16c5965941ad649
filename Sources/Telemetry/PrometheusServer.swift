import Foundation
@preconcurrency import Glibc
import Prometheus
import SystemIO

/// A minimal HTTP/1.1 endpoint for Prometheus scrapes, run by the coordinator.
///
/// Serves `GET /metrics` (the registry in text format 0.0.4, `Content-Type: text/plain;
/// version=0.0.4; charset=utf-8`) and `GET /healthz` (`ok`); `HEAD` is accepted too. Other paths
/// get 404, other methods 405, and requests that are not HTTP/1.x get 400. Every connection is
/// closed after one response. Nothing is logged per request.
///
/// The server binds and starts listening in ``init(registry:port:host:)`` — so a port already
/// in use is reported there — and then serves on its own thread (outside the Swift concurrency
/// pool) until ``stop()``. Connections are handled one at a time: a scrape is a few kilobytes
/// and each connection gets at most a few seconds, so a slow or silent client cannot hold the
/// server for long.
///
/// In debug builds, releasing a server that was not stopped is an assertion failure.
public final class PrometheusServer: @unchecked Sendable {
    // @unchecked Sendable: all stored properties are immutable except `thread`, which is only
    // touched while holding `lock`. The serving thread shares only the immutable `PrometheusServerLoop`.

    /// The TCP port the server listens on; the kernel's choice when created with port 0.
    public let boundPort: UInt16
    /// The address the server was asked to bind, e.g. `0.0.0.0` or `127.0.0.1`.
    public let host: String

    private let loop: PrometheusServerLoop
    private let lock = NSLock()
    private var thread: pthread_t?

    /// Binds `host:port`, starts listening and starts the serving thread.
    ///
    /// - Parameters:
    ///   - registry: The metrics rendered on each `GET /metrics`.
    ///   - port: The TCP port, or 0 for an ephemeral one (then read ``boundPort``).
    ///   - host: The local address to bind: `0.0.0.0` (all IPv4 interfaces, the default),
    ///     `127.0.0.1`, `::`, or a host name that resolves to a local address.
    /// - Throws: ``TelemetryError`` if the address cannot be resolved or bound (for example
    ///   `EADDRINUSE`), or the thread cannot be started.
    public init(registry: PrometheusCollectorRegistry, port: UInt16, host: String = "0.0.0.0") throws(TelemetryError) {
        self.host = host
        let listener = try Self.listen(host: host, port: port)
        var wake: [Int32] = [-1, -1]
        do throws(TelemetryError) {
            try SystemCall.check("pipe", "wake pipe") { pipe(&wake) }
            for fd in wake {
                try SystemCall.check("fcntl", "descriptor \(fd)") { fcntl(fd, F_SETFD, FD_CLOEXEC) }
            }
            let loop = PrometheusServerLoop(render: { var text: [UInt8] = []; registry.emit(into: &text); return text },
                                            listenFD: listener.fd, wakeFD: wake[0], wakeSignalFD: wake[1])
            self.loop = loop
            self.boundPort = listener.port

            var thread = pthread_t()
            let context = Unmanaged.passRetained(loop).toOpaque()
            let result = pthread_create(&thread, nil, { context in
                let loop = Unmanaged<PrometheusServerLoop>.fromOpaque(context!).takeRetainedValue()
                loop.run()
                return nil
            }, context)
            guard result == 0 else {
                Unmanaged<PrometheusServerLoop>.fromOpaque(context).release()
                throw TelemetryError(operation: "pthread_create", subject: "\(host):\(listener.port)", code: result)
            }
            self.thread = thread
        } catch {
            for fd in [listener.fd] + wake where fd >= 0 { _ = Glibc.close(fd) }
            throw error
        }
    }

    deinit {
        assert(thread == nil, "PrometheusServer on port \(boundPort) released without stop()")
        stop()
    }

    /// Stops accepting connections, waits for the serving thread to finish and closes the
    /// socket. A response in progress is abandoned. Calling it again does nothing.
    public func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard let running = thread else { return }
        thread = nil
        var byte: UInt8 = 1
        _ = Glibc.write(loop.wakeSignalFD, &byte, 1)
        pthread_join(running, nil)
        for fd in [loop.listenFD, loop.wakeFD, loop.wakeSignalFD] { _ = Glibc.close(fd) }
    }

    // MARK: Binding

    /// A listening non-blocking socket bound to the first usable address for `host:port`.
    private static func listen(host: String, port: UInt16) throws(TelemetryError) -> (fd: Int32, port: UInt16) {
        let subject = "\(host):\(port)"
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &list)
        guard resolved == 0, let list else {
            if resolved == EAI_SYSTEM { throw TelemetryError(operation: "getaddrinfo", subject: subject, code: errno) }
            throw TelemetryError(operation: "getaddrinfo", subject: subject, code: resolved,
                                 reason: String(cString: gai_strerror(resolved)))
        }
        defer { freeaddrinfo(list) }

        var lastError = TelemetryError(operation: "bind", subject: subject, code: EADDRNOTAVAIL)
        var candidate: UnsafeMutablePointer<addrinfo>? = list
        while let info = candidate?.pointee {
            candidate = info.ai_next
            let fd = socket(info.ai_family, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), info.ai_protocol)
            guard fd >= 0 else {
                lastError = TelemetryError(operation: "socket", subject: subject, code: errno)
                continue
            }
            do {
                var one: Int32 = 1
                try SystemCall.check("setsockopt", subject) {
                    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
                }
                try SystemCall.check("bind", subject) { bind(fd, info.ai_addr, info.ai_addrlen) }
                try SystemCall.check("listen", subject) { Glibc.listen(fd, 64) }
                return (fd, try localPort(fd, subject: subject))
            } catch {
                _ = Glibc.close(fd)
                lastError = error
            }
        }
        throw lastError
    }

    private static func localPort(_ fd: Int32, subject: String) throws(TelemetryError) -> UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try withUnsafeMutablePointer(to: &storage) { pointer throws(TelemetryError) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address throws(TelemetryError) in
                try SystemCall.check("getsockname", subject) { getsockname(fd, address, &length) }
            }
        }
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafeBytes(of: storage) { UInt16(bigEndian: $0.load(as: sockaddr_in.self).sin_port) }
        case AF_INET6:
            return withUnsafeBytes(of: storage) { UInt16(bigEndian: $0.load(as: sockaddr_in6.self).sin6_port) }
        default:
            throw TelemetryError(operation: "getsockname", subject: subject, code: EAFNOSUPPORT)
        }
    }
}
