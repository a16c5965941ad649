import Foundation

/// A ZAP handler (ZeroMQ RFC 27) that admits CURVE clients whose public key is authorized.
///
/// It runs its own thread with a REP socket bound to `inproc://zeromq.zap.01` on the given
/// context; every CURVE server socket of that context asks it about each connecting client.
/// Answers: 200 for a CURVE client whose key is in `AuthorizedKeys`, 400 for any other key or
/// mechanism (the handshake fails, the client never gets a message through), 500 for a
/// malformed request. Refusals are reported through `log` with the client's Z85 public key
/// and address — never secrets.
///
/// Lifetime rules (important):
/// - Create it **before** the server socket binds, and keep it running until that socket is
///   closed: libzmq 4.3 without the draft API admits every client when no ZAP handler is bound.
/// - `stop()` joins the thread (within ~100 ms); call it before closing the context.
///
/// Sendable: it holds only immutable references to Sendable state, so `stop()` may be called
/// from any thread (e.g. a signal handler task).
public final class ZAPAuthenticator: Sendable {
    /// The well-known inproc endpoint libzmq sends ZAP requests to.
    public static let endpoint = "inproc://zeromq.zap.01"

    private let state: State

    /// Starts the handler thread and returns once its socket is bound.
    /// - Parameters:
    ///   - context: the context of the CURVE server sockets to protect.
    ///   - authorizedKeys: the client public keys to admit.
    ///   - log: called (on the handler thread) for every refusal and for handler errors.
    public init(context: ZMQContext, authorizedKeys: AuthorizedKeys,
                log: @escaping @Sendable (String) -> Void) throws(TransportError) {
        let state = State(authorizedKeys: authorizedKeys)
        self.state = state
        let thread = Thread {
            ZAPAuthenticator.serve(context: context, state: state, log: log)
        }
        thread.name = "hypertrain-zap"
        thread.start()
        if let error = state.waitUntilStarted() { throw error }
    }

    deinit {
        assert(state.isFinished, "ZAPAuthenticator deallocated without stop()")
        stop()
    }

    /// Stops the handler and waits for its thread to exit. Idempotent.
    public func stop() {
        state.requestStopAndWait()
    }

    /// Replaces the authorized keys (e.g. after the keys file changed); applies to new handshakes.
    public func updateAuthorizedKeys(_ keys: AuthorizedKeys) {
        state.withLock { $0.authorizedKeys = keys }
    }

    /// Handshakes admitted so far.
    public var acceptedCount: Int { state.withLock { $0.accepted } }
    /// Handshakes refused so far.
    public var refusedCount: Int { state.withLock { $0.refused } }

    // MARK: The handler thread

    private static func serve(context: ZMQContext, state: State, log: @Sendable (String) -> Void) {
        let socket: Socket
        do {
            socket = try Socket(context: context, kind: .rep)
        } catch {
            state.finishStarting(error)
            return
        }
        var bound = false
        defer {
            // zmq_close releases an inproc endpoint only when libzmq's reaper thread gets to
            // the socket; unbinding first frees it at once, so a new handler on the same
            // context can bind as soon as stop() returns (seen failing on a loaded machine).
            if bound { try? socket.unbind(endpoint) }
            socket.close()
            state.markFinished()
        }
        do throws(TransportError) {
            try socket.set(.linger(milliseconds: 0))
            try socket.bind(endpoint)
            bound = true
        } catch {
            state.finishStarting(error)
            return
        }
        state.finishStarting(nil)

        while !state.stopRequested {
            do {
                // Poll in slices so stop() is noticed promptly.
                guard let request = try socket.receive(timeoutMs: 100) else { continue }
                try socket.send(reply(to: request, state: state, log: log))
            } catch where error.code == .terminated {
                return
            } catch {
                log("ZAP handler: \(error)")
            }
        }
    }

    private static func reply(to request: [[UInt8]], state: State, log: (String) -> Void) -> [[UInt8]] {
        func answer(_ id: [UInt8], _ code: String, _ text: String, user: String = "") -> [[UInt8]] {
            [Array("1.0".utf8), id, Array(code.utf8), Array(text.utf8), Array(user.utf8), []]
        }
        // version, request id, domain, address, routing id, mechanism, credentials…
        guard request.count >= 6, request[0] == Array("1.0".utf8) else {
            state.withLock { $0.refused += 1 }
            log("ZAP: refused a malformed request (\(request.count) frames)")
            return answer(request.count > 1 ? request[1] : [], "500", "malformed ZAP request")
        }
        let id = request[1]
        let domain = String(decoding: request[2], as: UTF8.self)
        let address = String(decoding: request[3], as: UTF8.self)
        let mechanism = String(decoding: request[5], as: UTF8.self)

        guard mechanism == "CURVE", request.count >= 7, request[6].count == 32 else {
            state.withLock { $0.refused += 1 }
            log("ZAP: refused \(mechanism) client from \(address) (domain '\(domain)'): only CURVE clients are admitted")
            return answer(id, "400", "mechanism not allowed")
        }
        let key = Z85.encodeKey(request[6])
        let admitted = state.withLock { s in
            let ok = s.authorizedKeys.contains(key)
            if ok { s.accepted += 1 } else { s.refused += 1 }
            return ok
        }
        guard admitted else {
            log("ZAP: refused CURVE client key \(key) from \(address) (domain '\(domain)'): not in authorized keys")
            return answer(id, "400", "key not authorized")
        }
        return answer(id, "200", "OK", user: key)
    }

    // MARK: Shared state

    /// `@unchecked Sendable`: every mutable field is read and written with `condition` held.
    private final class State: @unchecked Sendable {
        struct Fields {
            var authorizedKeys: AuthorizedKeys
            var accepted = 0
            var refused = 0
        }

        private enum Phase { case starting, running, finished }

        private let condition = NSCondition()
        private var fields: Fields
        private var phase = Phase.starting
        private var startError: TransportError?
        private var stop = false

        init(authorizedKeys: AuthorizedKeys) { fields = Fields(authorizedKeys: authorizedKeys) }

        func withLock<R>(_ body: (inout Fields) -> R) -> R {
            condition.lock()
            defer { condition.unlock() }
            return body(&fields)
        }

        var stopRequested: Bool {
            condition.lock()
            defer { condition.unlock() }
            return stop
        }

        var isFinished: Bool {
            condition.lock()
            defer { condition.unlock() }
            return phase == .finished
        }

        func finishStarting(_ error: TransportError?) {
            condition.lock()
            startError = error
            phase = error == nil ? .running : .finished
            condition.broadcast()
            condition.unlock()
        }

        func markFinished() {
            condition.lock()
            phase = .finished
            condition.broadcast()
            condition.unlock()
        }

        func waitUntilStarted() -> TransportError? {
            condition.lock()
            defer { condition.unlock() }
            while phase == .starting { condition.wait() }
            return startError
        }

        func requestStopAndWait() {
            condition.lock()
            defer { condition.unlock() }
            stop = true
            while phase != .finished { condition.wait() }
        }
    }
}
