@preconcurrency import Glibc

/// The serving thread's state and request handling.
final class PrometheusServerLoop: @unchecked Sendable {
    // @unchecked Sendable: every property is immutable. The descriptors are closed by
    // PrometheusServer.stop() only after joining the thread that uses them.

    /// Limit on the request line plus headers.
    static let maximumRequestBytes = 8192
    /// Time a client gets to send its request, and then to receive the response.
    static let clientTimeout = 2.0

    /// The exposition text of the current metrics, made at each scrape.
    let render: @Sendable () -> [UInt8]
    let listenFD: Int32
    let wakeFD: Int32
    let wakeSignalFD: Int32

    init(render: @escaping @Sendable () -> [UInt8], listenFD: Int32, wakeFD: Int32, wakeSignalFD: Int32) {
        self.render = render
        self.listenFD = listenFD
        self.wakeFD = wakeFD
        self.wakeSignalFD = wakeSignalFD
    }

    /// Accepts and answers connections until the wake pipe becomes readable.
    func run() {
        while true {
            switch waitFor(listenFD, timeoutMilliseconds: -1) {
            case .stop: return
            case .timeout: continue
            case .ready: break
            }
            let client = accept(listenFD, nil, nil)
            if client < 0 {
                switch errno {
                case EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED, EPROTO:
                    continue
                default:
                    // Out of descriptors or memory: back off instead of spinning on a listener
                    // that stays readable.
                    if case .stop = waitFor(-1, timeoutMilliseconds: 100) { return }
                    continue
                }
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
            let stopRequested = serve(client)
            _ = Glibc.close(client)
            if stopRequested { return }
        }
    }

    private enum Wait { case ready, timeout, stop }

    /// Waits until `fd` is readable (or writable, with `writable`), the timeout passes, or
    /// a stop is signalled. A negative `fd` waits only for the stop signal.
    private func waitFor(_ fd: Int32, timeoutMilliseconds: Int32, writable: Bool = false) -> Wait {
        var fds = [
            pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0),
            pollfd(fd: fd, events: Int16(writable ? POLLOUT : POLLIN), revents: 0),
        ]
        while true {
            let count = poll(&fds, nfds_t(fds.count), timeoutMilliseconds)
            if count < 0 && errno == EINTR { continue }
            if count < 0 { return .stop }  // EINVAL/ENOMEM: nothing sensible left to do
            if fds[0].revents != 0 { return .stop }
            if count == 0 { return .timeout }
            return .ready  // includes POLLERR/POLLHUP, which the next read or write reports
        }
    }

    /// Reads one request from `client` and answers it. Returns `true` if a stop was signalled.
    private func serve(_ client: Int32) -> Bool {
        let deadline = Self.monotonicNow() + Self.clientTimeout
        var request: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 2048)
        var response: HTTPResponse?
        while response == nil {
            if let complete = HTTPRequestHead.parse(request) {
                response = respond(to: complete)
                break
            }
            if request.count >= Self.maximumRequestBytes {
                response = .plain(status: 431, reason: "Request Header Fields Too Large", body: "request too large\n")
                break
            }
            let remaining = Int32(max(0, (deadline - Self.monotonicNow()) * 1000))
            switch waitFor(client, timeoutMilliseconds: remaining) {
            case .stop: return true
            case .timeout:
                response = .plain(status: 408, reason: "Request Timeout", body: "request timeout\n")
                continue
            case .ready: break
            }
            let count = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                request.append(contentsOf: chunk[..<count])
            } else if count == 0 {
                // The client finished sending without completing a request.
                if request.isEmpty { return false }
                response = .badRequest
            } else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                return false  // reset by the peer
            }
        }
        guard let response else { return false }
        if !send(response.bytes, to: client) { return true }
        return lingeringClose(client)
    }

    private func respond(to head: HTTPRequestHead) -> HTTPResponse {
        guard let request = head.request else { return .badRequest }
        let isHead = request.method == "HEAD"
        guard request.method == "GET" || isHead else {
            return .plain(status: 405, reason: "Method Not Allowed", body: "method not allowed\n",
                          extraHeaders: "Allow: GET, HEAD\r\n")
        }
        var response: HTTPResponse
        switch request.path {
        case "/metrics":
            response = HTTPResponse(status: 200, reason: "OK",
                                    contentType: "text/plain; version=0.0.4; charset=utf-8",
                                    body: render())
        case "/healthz":
            response = .plain(status: 200, reason: "OK", body: "ok")
        default:
            response = .plain(status: 404, reason: "Not Found", body: "not found\n")
        }
        response.omitBody = isHead
        return response
    }

    /// Sends all of `bytes`; returns `false` only if a stop was signalled meanwhile.
    private func send(_ bytes: [UInt8], to client: Int32) -> Bool {
        let deadline = Self.monotonicNow() + Self.clientTimeout
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes {
                Glibc.send(client, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent > 0 { offset += sent; continue }
            guard sent < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR else { return true }
            let remaining = Int32(max(0, (deadline - Self.monotonicNow()) * 1000))
            switch waitFor(client, timeoutMilliseconds: remaining, writable: true) {
            case .stop: return false
            case .timeout: return true
            case .ready: continue
            }
        }
        return true
    }

    /// Half-closes and discards what the client still sends, so that closing with unread
    /// input does not reset the connection and destroy the response before the client reads
    /// it. Bounded in time and bytes. Returns `true` if a stop was signalled.
    private func lingeringClose(_ client: Int32) -> Bool {
        _ = shutdown(client, Int32(SHUT_WR))
        let deadline = Self.monotonicNow() + 0.5
        var discarded = 0
        var chunk = [UInt8](repeating: 0, count: 2048)
        while discarded < 64 * 1024 {
            let remaining = Int32(max(0, (deadline - Self.monotonicNow()) * 1000))
            switch waitFor(client, timeoutMilliseconds: remaining) {
            case .stop: return true
            case .timeout: return false
            case .ready: break
            }
            let count = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            if count > 0 { discarded += count; continue }
            if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { continue }
            return false
        }
        return false
    }

    private static func monotonicNow() -> Double {
        ProgressLine.monotonicSeconds()
    }
}
