import Foundation
@preconcurrency import Glibc
import Testing
import Telemetry

@Suite struct PrometheusServerTests {
    let registry: MetricsRegistry = {
        let registry = MetricsRegistry()
        registry.counter("hypertrain_steps_total", help: "Optimizer steps applied.").inc(by: 42)
        registry.gauge("hypertrain_workers", help: "Connected workers.", labels: ["pool": "default"]).set(3)
        return registry
    }()

    @Test("GET /metrics over a real socket returns the exposition text")
    func scrape() throws {
        let server = try PrometheusServer(registry: registry, port: 0, host: "127.0.0.1")
        defer { server.stop() }
        #expect(server.boundPort != 0)

        let response = try rawHTTP(port: server.boundPort, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n")
        #expect(response.statusLine == "HTTP/1.1 200 OK")
        #expect(response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        #expect(response.headers["connection"] == "close")
        #expect(response.headers["content-length"] == String(response.body.utf8.count))
        #expect(response.body == registry.render())
        #expect(response.body.contains("\nhypertrain_steps_total 42\n"))
        #expect(response.body.contains("hypertrain_workers{pool=\"default\"} 3\n"))

        registry.counter("hypertrain_steps_total", help: "").inc()
        let later = try rawHTTP(port: server.boundPort, "GET /metrics?x=1 HTTP/1.0\r\n\r\n")
        #expect(later.body.contains("\nhypertrain_steps_total 43\n"), "each scrape renders current values")
    }

    @Test("GET /healthz answers ok; HEAD has no body; unknown paths get 404; other methods 405")
    func routes() throws {
        let server = try PrometheusServer(registry: registry, port: 0, host: "127.0.0.1")
        defer { server.stop() }
        let port = server.boundPort

        let health = try rawHTTP(port: port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(health.status == 200)
        #expect(health.body == "ok")

        let head = try rawHTTP(port: port, "HEAD /metrics HTTP/1.1\r\n\r\n")
        #expect(head.status == 200)
        #expect(head.body.isEmpty)
        #expect(head.headers["content-length"] == String(registry.render().utf8.count))

        #expect(try rawHTTP(port: port, "GET /nope HTTP/1.1\r\n\r\n").status == 404)
        #expect(try rawHTTP(port: port, "GET /metrics/ HTTP/1.1\r\n\r\n").status == 404)
        let post = try rawHTTP(port: port, "POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
        #expect(post.status == 405)
        #expect(post.headers["allow"] == "GET, HEAD")
    }

    @Test("Malformed requests get 400 and the server keeps serving", arguments: [
        "GARBAGE\r\n\r\n",
        "GET /metrics\r\n\r\n",
        "GET  /metrics HTTP/1.1\r\n\r\n",
        "GET metrics HTTP/1.1\r\n\r\n",
        "GET /metrics HTTP/9.9\r\n\r\n",
        "get /metrics HTTP/1.1\r\n\r\n",
        "GET /met\u{01}rics HTTP/1.1\r\n\r\n",
        "\r\n\r\n",
        "hello, no blank line follows\n",
    ])
    func malformed(request: String) throws {
        let server = try PrometheusServer(registry: registry, port: 0, host: "127.0.0.1")
        defer { server.stop() }
        let response = try rawHTTP(port: server.boundPort, request)
        #expect(response.statusLine == "HTTP/1.1 400 Bad Request")
        #expect(try rawHTTP(port: server.boundPort, "GET /healthz HTTP/1.1\r\n\r\n").body == "ok")
    }

    @Test("Binary junk, oversized headers and clients that hang up do not stop the server")
    func abuse() throws {
        let server = try PrometheusServer(registry: registry, port: 0, host: "127.0.0.1")
        defer { server.stop() }
        let port = server.boundPort

        let junk = parseResponse(try rawHTTPExchange(port: port, bytes: [0, 255, 254, 10, 13, 10, 0]))
        #expect(junk.status == 400)

        let huge = "GET /metrics HTTP/1.1\r\n" + String(repeating: "X-Filler: \(String(repeating: "a", count: 100))\r\n", count: 200)
        #expect(try rawHTTP(port: port, huge).status == 431)

        // Half a request, then the client closes its sending side.
        let partial = try rawHTTPExchange(port: port, bytes: Array("GET /metr".utf8), halfClose: true)
        #expect(parseResponse(partial).status == 400)

        // Connect and hang up without sending anything: no response, no harm.
        #expect(try rawHTTPExchange(port: port, bytes: [], halfClose: true).isEmpty)

        // Half a request, then silence: the server gives up after its client timeout.
        let stalled = try rawHTTPExchange(port: port, bytes: Array("GET /metrics HTTP/1.1\r\nHost: x".utf8))
        #expect(parseResponse(stalled).status == 408)

        #expect(try rawHTTP(port: port, "GET /healthz HTTP/1.1\r\n\r\n").status == 200)
    }

    @Test("Many concurrent scrapes are all answered")
    func concurrentScrapes() async throws {
        let server = try PrometheusServer(registry: registry, port: 0, host: "127.0.0.1")
        defer { server.stop() }
        let port = server.boundPort
        let expected = registry.render()
        let answered = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var good = 0
                    for _ in 0..<25 {
                        if let response = try? rawHTTP(port: port, "GET /metrics HTTP/1.1\r\n\r\n"),
                           response.status == 200, response.body == expected { good += 1 }
                    }
                    return good
                }
            }
            return await group.reduce(0, +)
        }
        #expect(answered == 200)
    }

    @Test("stop() closes the port and is idempotent; a port in use is reported at init")
    func lifecycle() throws {
        let server = try PrometheusServer(registry: registry, port: 0, host: "127.0.0.1")
        let port = server.boundPort
        let error = try #require(throws: TelemetryError.self) {
            try PrometheusServer(registry: registry, port: port, host: "127.0.0.1")
        }
        #expect(error.code == EADDRINUSE)

        server.stop()
        server.stop()
        let refused = try #require(throws: SocketFailure.self) {
            try rawHTTP(port: port, "GET /healthz HTTP/1.1\r\n\r\n")
        }
        #expect(refused.code == ECONNREFUSED)
    }

    @Test("An address that is not local cannot be bound and is a TelemetryError")
    func foreignAddress() throws {
        // 192.0.2.1 is TEST-NET-1 (RFC 5737): numeric, so no DNS lookup, and never local.
        let error = try #require(throws: TelemetryError.self) {
            try PrometheusServer(registry: registry, port: 0, host: "192.0.2.1")
        }
        #expect(error.code == EADDRNOTAVAIL)
        #expect(error.description.hasPrefix("bind 192.0.2.1:0: "))
    }

    @Test("The default host binds all interfaces")
    func defaultHost() throws {
        let server = try PrometheusServer(registry: registry, port: 0)
        defer { server.stop() }
        #expect(server.host == "0.0.0.0")
        #expect(try rawHTTP(port: server.boundPort, "GET /healthz HTTP/1.1\r\n\r\n").body == "ok")
    }
}
