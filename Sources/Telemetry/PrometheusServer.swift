import FlyingFox
import FlyingSocks
import Foundation
import Prometheus
import SystemIO

/// The coordinator's HTTP endpoint for Prometheus scrapes, served by FlyingFox.
///
/// Serves `GET /metrics` (the registry in the text exposition format, `Content-Type:
/// text/plain; version=0.0.4; charset=utf-8`) and `GET /healthz` (`ok`); `HEAD` is accepted
/// too. Other paths get 404 and other methods 405. Request parsing, timeouts and connection
/// handling are FlyingFox's; nothing is logged per request.
///
/// The server binds in ``start(registry:port:host:)`` (or the blocking ``init(registry:port:host:)``)
/// — so a port already in use is reported there — and serves from Swift concurrency tasks
/// until ``shutdown()`` (or the blocking ``stop()``). It only reads the registry, which
/// swift-prometheus makes safe to read while the coordinator updates it.
public final class PrometheusServer: Sendable {
    /// The TCP port the server listens on; the kernel's choice when created with port 0.
    public let boundPort: UInt16
    /// The address the server was asked to bind, e.g. `0.0.0.0` or `127.0.0.1`.
    public let host: String

    private let server: HTTPServer
    private let serving: Task<Void, Never>

    private init(boundPort: UInt16, host: String, server: HTTPServer, serving: Task<Void, Never>) {
        self.boundPort = boundPort
        self.host = host
        self.server = server
        self.serving = serving
    }

    /// Binds `host:port`, starts listening and serving.
    ///
    /// - Parameters:
    ///   - registry: The metrics rendered on each `GET /metrics`.
    ///   - port: The TCP port, or 0 for an ephemeral one (then read ``boundPort``).
    ///   - host: A numeric local address: `0.0.0.0` (all IPv4 interfaces, the default),
    ///     `127.0.0.1`, `::` or `::1`.
    /// - Throws: ``TelemetryError`` if the address is not numeric or cannot be bound (for
    ///   example `EADDRINUSE`: "bind 0.0.0.0:9464: Address already in use").
    public static func start(registry: PrometheusCollectorRegistry, port: UInt16,
                             host: String = "0.0.0.0") async throws(TelemetryError) -> PrometheusServer {
        let subject = "\(host):\(port)"
        let address: any SocketAddress
        do {
            if host.contains(":") {
                address = try sockaddr_in6.inet6(ip6: host, port: port)
            } else {
                address = try sockaddr_in.inet(ip4: host, port: port)
            }
        } catch {
            throw TelemetryError(operation: "bind", subject: subject, code: EINVAL,
                                 reason: "not a numeric IPv4 or IPv6 address")
        }
        let server = HTTPServer(address: address, timeout: Self.clientTimeout, logger: .disabled,
                                handler: MetricsEndpoint(registry: registry))
        let failure = FailureBox()
        let serving = Task {
            do { try await server.run() } catch { failure.record(error) }
        }
        // FlyingFox reports a failed bind by `run()` throwing, and success by listening; wait
        // for whichever comes first.
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            if let error = failure.error {
                throw Self.telemetryError(error, subject: subject)
            }
            if case let address? = await server.listeningAddress {
                let bound: UInt16
                switch address {
                case .ip4(_, let p), .ip6(_, let p): bound = p
                case .unix: bound = port
                }
                return PrometheusServer(boundPort: bound, host: host, server: server, serving: serving)
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
        serving.cancel()
        await server.stop()
        throw TelemetryError(operation: "listen", subject: subject, code: ETIMEDOUT)
    }

    /// Stops accepting connections, ends open ones and waits until the server has finished.
    /// The port is free again when this returns. Calling it again does nothing.
    public func shutdown() async {
        await server.stop(timeout: 0)
        serving.cancel()
        await serving.value
    }

    /// ``start(registry:port:host:)`` for synchronous callers (the coordinator's thread).
    ///
    /// Blocks until the server listens or fails; do not call it from a task of the Swift
    /// concurrency pool, whose threads the server needs.
    public convenience init(registry: PrometheusCollectorRegistry, port: UInt16, host: String = "0.0.0.0") throws(TelemetryError) {
        let started = Self.blocking { () async -> Result<PrometheusServer, TelemetryError> in
            do throws(TelemetryError) {
                return .success(try await Self.start(registry: registry, port: port, host: host))
            } catch {
                return .failure(error)
            }
        }
        let server = try started.get()
        self.init(boundPort: server.boundPort, host: server.host, server: server.server, serving: server.serving)
    }

    /// ``shutdown()`` for synchronous callers; the same caveat as ``init(registry:port:host:)``.
    public func stop() {
        Self.blocking { await self.shutdown() }
    }

    /// Time a client gets to send its request and receive the response.
    static let clientTimeout: TimeInterval = 2

    private static func blocking<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
        let done = DispatchSemaphore(value: 0)
        let box = FailureBox.Value<T>()
        Task.detached {
            box.set(await body())
            done.signal()
        }
        done.wait()
        return box.get()!
    }

    private static func telemetryError(_ error: any Error, subject: String) -> TelemetryError {
        if case .failed(let type, let code, let message) = error as? SocketError {
            return TelemetryError(operation: type, subject: subject, code: code, reason: message)
        }
        return TelemetryError(operation: "listen", subject: subject, code: EIO, reason: String(describing: error))
    }
}

/// The routes: `/metrics` and `/healthz`, `GET` or `HEAD`.
private struct MetricsEndpoint: HTTPHandler {
    let registry: PrometheusCollectorRegistry

    func handleRequest(_ request: HTTPRequest) async throws -> HTTPResponse {
        let body: Data, contentType: String
        switch request.path {
        case "/metrics":
            var bytes: [UInt8] = []
            registry.emit(into: &bytes)
            body = Data(bytes)
            contentType = "text/plain; version=0.0.4; charset=utf-8"
        case "/healthz":
            body = Data("ok".utf8)
            contentType = "text/plain; charset=utf-8"
        default:
            return HTTPResponse(statusCode: .notFound, body: Data("not found\n".utf8))
        }
        switch request.method {
        case .GET:
            return HTTPResponse(statusCode: .ok, headers: [.contentType: contentType], body: body)
        case .HEAD:
            return HTTPResponse(statusCode: .ok, headers: [.contentType: contentType])
        default:
            return HTTPResponse(statusCode: .methodNotAllowed, headers: [HTTPHeader("Allow"): "GET, HEAD"],
                                body: Data("method not allowed\n".utf8))
        }
    }
}

/// The error `run()` ended with, set from the serving task and read by the starting one.
private final class FailureBox: @unchecked Sendable {
    // @unchecked Sendable: `stored` is only touched while holding `lock`.
    private let lock = NSLock()
    private var stored: (any Error)?

    func record(_ error: any Error) { lock.withLock { stored = error } }
    var error: (any Error)? { lock.withLock { stored } }

    /// One value handed from a task to a thread waiting on a semaphore.
    final class Value<T>: @unchecked Sendable {
        // @unchecked Sendable: `value` is only touched while holding `lock`.
        private let lock = NSLock()
        private var value: T?
        func set(_ newValue: T) { lock.withLock { value = newValue } }
        func get() -> T? { lock.withLock { value } }
    }
}
