import Foundation
@preconcurrency import Glibc
import Prometheus
import Testing
import Telemetry

/// The /metrics endpoint over real sockets. The server serves on its own thread; the raw-socket
/// client blocks, so it runs on its own thread too (``offPool(_:)``).
@Suite struct PrometheusServerTests {
    let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        registry.makeCounter(name: "hypertrain_steps_total", help: "Optimizer steps applied.").increment(by: Int64(42))
        registry.makeGauge(name: "hypertrain_workers", labels: [("pool", "default")], help: "Connected workers.").set(to: 3.0)
        return registry
    }()

    var exposition: String {
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    static func get(_ port: UInt16, _ target: String, method: String = "GET") async throws -> RawHTTPResponse {
        try await offPool { try rawHTTP(port: port, "\(method) \(target) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") }
    }

    @Test("GET /metrics returns swift-prometheus's exposition, current at each scrape")
    func scrape() async throws {
        let server = try PrometheusServer(registry: registry, port: 0, host: "127.0.0.1")
        #expect(server.boundPort != 0)
        let response = try await Self.get(server.boundPort, "/metrics")
        #expect(response.status == 200)
        #expect(response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        #expect(response.body == exposition)
        #expect(response.body.contains("# TYPE hypertrain_steps_total counter\nhypertrain_steps_total 42\n"))
        #expect(response.body.contains("hypertrain_workers{pool=\"default\"} 3"))

        registry.makeCounter(name: "hypertrain_steps_total", help: "Optimizer steps applied.").increment(by: Int64(1))
        let later = try await Self.get(server.boundPort, "/metrics?x=1")
        #expect(later.body.contains("hypertrain_steps_total 43\n"), "each scrape renders current values")
        server.stop()
    }

    @Test("GET /healthz answers ok; HEAD has no body; unknown paths get 404; other methods 405")
    func routes() async throws {
        let server = try PrometheusServer(registry: registry, port: 0, host: "127.0.0.1")
        let port = server.boundPort
        let health = try await Self.get(port, "/healthz")
        #expect(health.status == 200)
        #expect(health.body == "ok")
        let head = try await Self.get(port, "/metrics", method: "HEAD")
        #expect(head.status == 200)
        #expect(head.body.isEmpty)
        #expect(try await Self.get(port, "/nope").status == 404)
        let post = try await Self.get(port, "/metrics", method: "POST")
        #expect(post.status == 405)
        #expect(post.headers["allow"] == "GET, HEAD")
        server.stop()
    }

    @Test("Junk and clients that hang up do not stop the server")
    func abuse() async throws {
        let server = try PrometheusServer(registry: registry, port: 0, host: "127.0.0.1")
        let port = server.boundPort
        _ = try await offPool { try rawHTTPExchange(port: port, bytes: [0, 255, 254, 10, 13, 10, 0], halfClose: true) }
        _ = try await offPool { try rawHTTPExchange(port: port, bytes: Array("GET /metr".utf8), halfClose: true) }
        _ = try await offPool { try rawHTTPExchange(port: port, bytes: [], halfClose: true) }
        #expect(try await Self.get(port, "/healthz").body == "ok")
        server.stop()
    }

    @Test("A port in use is reported at start; stop() frees the port and is idempotent")
    func lifecycle() async throws {
        let server = try PrometheusServer(registry: registry, port: 0, host: "127.0.0.1")
        let port = server.boundPort
        let error = try #require(throws: TelemetryError.self) {
            try PrometheusServer(registry: registry, port: port, host: "127.0.0.1")
        }
        #expect(error.code == EADDRINUSE)
        #expect(error.description.contains("127.0.0.1:\(port)"))

        server.stop()
        server.stop()
        let refused = try await #require(throws: SocketFailure.self) {
            try await offPool { try rawHTTP(port: port, "GET /healthz HTTP/1.1\r\n\r\n") }
        }
        #expect(refused.code == ECONNREFUSED)
        let again = try PrometheusServer(registry: registry, port: port, host: "127.0.0.1")
        #expect(try await Self.get(port, "/healthz").body == "ok")
        again.stop()
    }

    @Test("An address that is not local, or a host name that does not resolve, is a TelemetryError")
    func foreignAddress() async throws {
        // 192.0.2.1 is TEST-NET-1 (RFC 5737): numeric and never local.
        let error = try #require(throws: TelemetryError.self) {
            try PrometheusServer(registry: registry, port: 0, host: "192.0.2.1")
        }
        #expect(error.code == EADDRNOTAVAIL)
        #expect(throws: TelemetryError.self) {
            try PrometheusServer(registry: registry, port: 0, host: "no-such-host.invalid")
        }
    }

    @Test("The blocking init and stop() serve on all interfaces by default, from a plain thread")
    func blockingAPI() async throws {
        let registry = self.registry
        let response = try await offPool { () throws -> RawHTTPResponse in
            let server = try PrometheusServer(registry: registry, port: 0)
            defer { server.stop() }
            #expect(server.host == "0.0.0.0")
            return try rawHTTP(port: server.boundPort, "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
        }
        #expect(response.body == "ok")
    }
}

/// Runs blocking `body` on a new thread, outside the concurrency pool.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}
