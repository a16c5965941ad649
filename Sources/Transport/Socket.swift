private import CZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// One ZeroMQ socket.
///
/// Ownership: a socket belongs to the thread that created it, for its whole life — libzmq
/// sockets are not thread-safe. `Socket` is therefore not `Sendable`; Swift 6 refuses to move
/// it to another thread or task. Blocking calls (`receive()`, `Poller.poll`) belong on a
/// dedicated thread, not in the Swift concurrency pool. Close every socket explicitly
/// (`close()`); `deinit` asserts that you did. A socket keeps its `ZMQContext` alive.
///
/// Messages are multipart: `[[UInt8]]`, one array per frame. On a ROUTER the first frame is
/// the peer's routing id (received and sent). For large tensors there is a copy-free path both
/// ways: `send(frames:)` with `OutgoingFrame`s (zero-copy sends) and `receiveFrames` /
/// `tryReceiveFrames`, which leave each frame in libzmq's buffer (`ReceivedFrame`).
///
/// Linger: new sockets linger 1 s, not libzmq's default of forever, which makes
/// `ZMQContext.close()` hang for good when a message is queued for a peer that is gone. Set
/// `.linger` per socket where another policy is right.
public final class Socket {
    /// The socket types Hypertrain uses.
    public enum Kind: Sendable, Equatable {
        /// The coordinator's socket: fair-queued input, the routing id as first frame.
        case router
        /// A worker's socket to the coordinator.
        case dealer
        /// Strict reply socket (the ZAP handler).
        case rep
        /// Strict request socket.
        case req
        /// Exclusive pair (inproc signalling).
        case pair

        var zmqType: Int32 {
            switch self {
            case .router: ZMQ_ROUTER
            case .dealer: ZMQ_DEALER
            case .rep: ZMQ_REP
            case .req: ZMQ_REQ
            case .pair: ZMQ_PAIR
            }
        }
    }

    /// The socket type.
    public let kind: Kind
    /// The context that created the socket (kept alive by it).
    public let context: ZMQContext
    /// The libzmq handle; nil once closed. Internal for Poller.
    private(set) var handle: UnsafeMutableRawPointer?
    /// One heap-allocated zmq_msg_t reused by every receive: a pointer to a local zmq_msg_t
    /// is only valid for one call, and libzmq keeps interior pointers into it.
    private let message: UnsafeMutablePointer<zmq_msg_t>
    /// How long a receive with a timeout keeps checking for a message (yielding the CPU between
    /// checks) before it sleeps in `zmq_poll`. A sleeping process on an idle (virtual) CPU is
    /// woken by an interrupt that can take a few hundred microseconds to land; a peer that
    /// waits for the next task for less than this pays only the check. Zero: sleep at once.
    public var spinBeforeBlocking: Duration = .zero

    /// Creates a socket of `kind` on `context`.
    public init(context: ZMQContext, kind: Kind) throws(TransportError) {
        self.kind = kind
        self.context = context
        let h = try zmqPointer("zmq_socket(\(kind))") { zmq_socket(context.handle, kind.zmqType) }
        var linger: Int32 = Self.defaultLingerMs
        do {
            try zmqCall("zmq_setsockopt(ZMQ_LINGER)") { zmq_setsockopt(h, ZMQ_LINGER, &linger, MemoryLayout<Int32>.size) }
        } catch {
            zmq_close(h)
            throw error
        }
        handle = h
        message = .allocate(capacity: 1)
    }

    /// The linger period new sockets start with (ms).
    public static let defaultLingerMs: Int32 = 1_000

    deinit {
        assert(handle == nil, "Socket(\(kind)) deallocated without close()")
        if let h = handle { zmq_close(h) }
        message.deallocate()
    }

    /// Closes the socket (pending messages linger per `.linger`). Idempotent.
    public func close() {
        guard let h = handle else { return }
        zmq_close(h)
        handle = nil
    }

    /// Whether `close()` has been called.
    public var isClosed: Bool { handle == nil }

    private func open(_ operation: String) throws(TransportError) -> UnsafeMutableRawPointer {
        guard let h = handle else {
            throw TransportError(operation: operation, code: .invalidArgument, errno: ENOTSOCK,
                                 message: "socket is closed")
        }
        return h
    }

    // MARK: Endpoints

    /// Binds to `endpoint` (e.g. "tcp://127.0.0.1:*", "ipc:///tmp/x.sock", "inproc://name").
    /// With a wildcard port, read the chosen one from `lastEndpoint`.
    public func bind(_ endpoint: String) throws(TransportError) {
        let h = try open("zmq_bind")
        try zmqCall("zmq_bind(\(endpoint))") { zmq_bind(h, endpoint) }
    }

    /// Connects to `endpoint`; the connection is made (and remade) in the background.
    public func connect(_ endpoint: String) throws(TransportError) {
        let h = try open("zmq_connect")
        try zmqCall("zmq_connect(\(endpoint))") { zmq_connect(h, endpoint) }
    }

    /// Stops listening on `endpoint` (must be the resolved form, e.g. from `lastEndpoint`).
    public func unbind(_ endpoint: String) throws(TransportError) {
        let h = try open("zmq_unbind")
        try zmqCall("zmq_unbind(\(endpoint))") { zmq_unbind(h, endpoint) }
    }

    /// Drops the connection to `endpoint`.
    public func disconnect(_ endpoint: String) throws(TransportError) {
        let h = try open("zmq_disconnect")
        try zmqCall("zmq_disconnect(\(endpoint))") { zmq_disconnect(h, endpoint) }
    }

    /// ZMQ_LAST_ENDPOINT: the endpoint of the last bind/connect, with wildcards resolved
    /// ("tcp://127.0.0.1:41234").
    public var lastEndpoint: String {
        get throws(TransportError) {
            let h = try open("zmq_getsockopt(ZMQ_LAST_ENDPOINT)")
            var buffer = [CChar](repeating: 0, count: 1_024)
            var size = buffer.count
            try zmqCall("zmq_getsockopt(ZMQ_LAST_ENDPOINT)") {
                zmq_getsockopt(h, ZMQ_LAST_ENDPOINT, &buffer, &size)
            }
            return string(fromCBuffer: buffer)
        }
    }

    // MARK: Options

    /// Sets an option; see `SocketOption` for what each does. Set options before bind/connect.
    public func set(_ option: SocketOption) throws(TransportError) {
        let h = try open("zmq_setsockopt")
        switch option {
        case .linger(let ms): try setInt(h, ZMQ_LINGER, "ZMQ_LINGER", ms)
        case .routingID(let id):
            try setBytes(h, ZMQ_ROUTING_ID, "ZMQ_ROUTING_ID", id)
        case .sendHighWaterMark(let n): try setInt(h, ZMQ_SNDHWM, "ZMQ_SNDHWM", n)
        case .receiveHighWaterMark(let n): try setInt(h, ZMQ_RCVHWM, "ZMQ_RCVHWM", n)
        case .routerMandatory(let on): try setInt(h, ZMQ_ROUTER_MANDATORY, "ZMQ_ROUTER_MANDATORY", on ? 1 : 0)
        case .heartbeatInterval(let ms): try setInt(h, ZMQ_HEARTBEAT_IVL, "ZMQ_HEARTBEAT_IVL", ms)
        case .heartbeatTTL(let ms): try setInt(h, ZMQ_HEARTBEAT_TTL, "ZMQ_HEARTBEAT_TTL", ms)
        case .heartbeatTimeout(let ms): try setInt(h, ZMQ_HEARTBEAT_TIMEOUT, "ZMQ_HEARTBEAT_TIMEOUT", ms)
        case .maxMessageSize(let n):
            var v = n
            try zmqCall("zmq_setsockopt(ZMQ_MAXMSGSIZE)") {
                zmq_setsockopt(h, ZMQ_MAXMSGSIZE, &v, MemoryLayout<Int64>.size)
            }
        case .reconnectInterval(let ms): try setInt(h, ZMQ_RECONNECT_IVL, "ZMQ_RECONNECT_IVL", ms)
        case .reconnectIntervalMax(let ms): try setInt(h, ZMQ_RECONNECT_IVL_MAX, "ZMQ_RECONNECT_IVL_MAX", ms)
        case .sendTimeout(let ms): try setInt(h, ZMQ_SNDTIMEO, "ZMQ_SNDTIMEO", ms)
        case .receiveTimeout(let ms): try setInt(h, ZMQ_RCVTIMEO, "ZMQ_RCVTIMEO", ms)
        case .handshakeInterval(let ms): try setInt(h, ZMQ_HANDSHAKE_IVL, "ZMQ_HANDSHAKE_IVL", ms)
        case .immediate(let on): try setInt(h, ZMQ_IMMEDIATE, "ZMQ_IMMEDIATE", on ? 1 : 0)
        case .curveServer(let secret):
            try requireKey(secret, "ZMQ_CURVE_SECRETKEY")
            try setInt(h, ZMQ_CURVE_SERVER, "ZMQ_CURVE_SERVER", 1)
            try setBytes(h, ZMQ_CURVE_SECRETKEY, "ZMQ_CURVE_SECRETKEY", Array(secret.utf8))
        case .curveClient(let pair, let serverKey):
            try requireKey(serverKey, "ZMQ_CURVE_SERVERKEY")
            try requireKey(pair.publicKey, "ZMQ_CURVE_PUBLICKEY")
            try requireKey(pair.secretKey, "ZMQ_CURVE_SECRETKEY")
            try setBytes(h, ZMQ_CURVE_SERVERKEY, "ZMQ_CURVE_SERVERKEY", Array(serverKey.utf8))
            try setBytes(h, ZMQ_CURVE_PUBLICKEY, "ZMQ_CURVE_PUBLICKEY", Array(pair.publicKey.utf8))
            try setBytes(h, ZMQ_CURVE_SECRETKEY, "ZMQ_CURVE_SECRETKEY", Array(pair.secretKey.utf8))
        case .zapDomain(let domain):
            try setBytes(h, ZMQ_ZAP_DOMAIN, "ZMQ_ZAP_DOMAIN", Array(domain.utf8))
        }
    }

    private func setInt(_ h: UnsafeMutableRawPointer, _ option: Int32, _ name: String, _ value: Int32) throws(TransportError) {
        var v = value
        try zmqCall("zmq_setsockopt(\(name))") { zmq_setsockopt(h, option, &v, MemoryLayout<Int32>.size) }
    }

    private func setBytes(_ h: UnsafeMutableRawPointer, _ option: Int32, _ name: String, _ value: [UInt8]) throws(TransportError) {
        try zmqCall("zmq_setsockopt(\(name))") {
            value.withUnsafeBytes { zmq_setsockopt(h, option, $0.baseAddress, $0.count) }
        }
    }

    private func requireKey(_ key: String, _ name: String) throws(TransportError) {
        guard Z85.isValidKey(key) else {
            // Never echo the value: it may be a secret key.
            throw TransportError(operation: "zmq_setsockopt(\(name))", code: .invalidArgument, errno: EINVAL,
                                 message: "not a 40-character Z85 CURVE key")
        }
    }

    // MARK: Sending

    /// Sends a multipart message, blocking while the high-water mark is reached (up to
    /// `.sendTimeout`, then `.wouldBlock`). Small frames are copied into libzmq, large ones
    /// sent in place (see `OutgoingFrame`).
    public func send(_ frames: [[UInt8]]) throws(TransportError) {
        _ = try send(frames.map(OutgoingFrame.init), flags: 0)
    }

    /// Sends without blocking; false when the message could not be queued now (nothing sent).
    /// On a ROUTER with `routerMandatory`, an unknown routing id throws `.hostUnreachable`.
    public func trySend(_ frames: [[UInt8]]) throws(TransportError) -> Bool {
        try send(frames.map(OutgoingFrame.init), flags: ZMQ_DONTWAIT)
    }

    /// Sends a multipart message whose large frames travel without a copy (see `OutgoingFrame`);
    /// blocks like `send(_: [[UInt8]])`.
    public func send(frames: [OutgoingFrame]) throws(TransportError) {
        _ = try send(frames, flags: 0)
    }

    /// As `trySend(_: [[UInt8]])`, zero-copy for large frames; on false nothing was sent and
    /// libzmq holds no reference to the frames.
    public func trySend(frames: [OutgoingFrame]) throws(TransportError) -> Bool {
        try send(frames, flags: ZMQ_DONTWAIT)
    }

    private func send(_ frames: [OutgoingFrame], flags: Int32) throws(TransportError) -> Bool {
        precondition(!frames.isEmpty, "Socket.send needs at least one frame")
        let h = try open("zmq_send")
        for (i, frame) in frames.enumerated() {
            let more = i < frames.count - 1 ? ZMQ_SNDMORE : 0
            // Only the first frame can be refused for lack of room: libzmq queues a multipart
            // message atomically once its first frame is accepted.
            let frameFlags = (i == 0 ? flags : 0) | more
            do {
                switch frame.storage {
                case .copy(let bytes):
                    try zmqCall("zmq_send") {
                        bytes.withUnsafeBytes { b in
                            zmq_send(h, b.baseAddress ?? UnsafeRawPointer(bitPattern: 1), b.count, frameFlags)
                        }
                    }
                case .shared(let keeper):
                    try sendZeroCopy(h, keeper, flags: frameFlags)
                }
            } catch where error.code == .wouldBlock && i == 0 && flags & ZMQ_DONTWAIT != 0 {
                return false
            }
        }
        return true
    }

    /// Hands `keeper`'s bytes to libzmq without copying. The message holds one retain of the
    /// keeper, released by `releaseKeeper` when libzmq drops the message: after the I/O thread
    /// has written it, or in `zmq_msg_close` below when the send fails.
    private func sendZeroCopy(_ h: UnsafeMutableRawPointer, _ keeper: ArrayKeeper, flags: Int32) throws(TransportError) {
        let hint = Unmanaged.passRetained(keeper).toOpaque()
        let rc = zmq_msg_init_data(message, UnsafeMutableRawPointer(mutating: keeper.base), keeper.count, releaseKeeper, hint)
        guard rc == 0 else {
            Unmanaged<ArrayKeeper>.fromOpaque(hint).release()
            throw transportError("zmq_msg_init_data", zmq_errno())
        }
        do {
            // On success libzmq owns the content and leaves `message` empty.
            try zmqCall("zmq_msg_send") { zmq_msg_send(message, h, flags) }
        } catch {
            zmq_msg_close(message)   // runs releaseKeeper
            throw error
        }
    }

    // MARK: Receiving

    /// Receives one multipart message, blocking (up to `.receiveTimeout`, then `.wouldBlock`).
    public func receive() throws(TransportError) -> [[UInt8]] {
        // With flags 0 the first frame blocks; nil is impossible unless a receive timeout fired,
        // which `receive(flags:)` reports as a thrown `.wouldBlock`.
        guard let frames = try receive(flags: 0, eagainIsNil: false, Self.copyOut) else {
            preconditionFailure("blocking receive returned no message")
        }
        return frames
    }

    /// Receives one message if one arrives within `timeoutMs` (0 = just check); nil otherwise.
    public func receive(timeoutMs: Int32) throws(TransportError) -> [[UInt8]]? {
        try receive(timeoutMs: timeoutMs, Self.copyOut)
    }

    /// Receives a message if one is queued right now; nil otherwise.
    public func tryReceive() throws(TransportError) -> [[UInt8]]? {
        try receive(flags: ZMQ_DONTWAIT, eagainIsNil: true, Self.copyOut)
    }

    /// As `receive(timeoutMs:)`, but the frames stay in libzmq's buffers (no copy).
    public func receiveFrames(timeoutMs: Int32) throws(TransportError) -> [ReceivedFrame]? {
        try receive(timeoutMs: timeoutMs, Self.keep)
    }

    /// As `tryReceive()`, but the frames stay in libzmq's buffers (no copy).
    public func tryReceiveFrames() throws(TransportError) -> [ReceivedFrame]? {
        try receive(flags: ZMQ_DONTWAIT, eagainIsNil: true, Self.keep)
    }

    private static func copyOut(_ message: UnsafeMutablePointer<zmq_msg_t>) throws(TransportError) -> [UInt8] {
        let count = zmq_msg_size(message)
        let data = zmq_msg_data(message)
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0, let data {
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(start: data, count: count))
            }
            initialized = count
        }
    }

    private static func keep(_ message: UnsafeMutablePointer<zmq_msg_t>) throws(TransportError) -> ReceivedFrame {
        try ReceivedFrame(moving: UnsafeMutableRawPointer(message))
    }

    private func receive<F>(
        timeoutMs: Int32, _ take: (UnsafeMutablePointer<zmq_msg_t>) throws(TransportError) -> F
    ) throws(TransportError) -> [F]? {
        let h = try open("zmq_poll")
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .milliseconds(Int64(max(timeoutMs, 0))))
        if spinBeforeBlocking > .zero {
            let spinEnd = min(clock.now.advanced(by: spinBeforeBlocking), deadline)
            repeat {
                if let frames = try receive(flags: ZMQ_DONTWAIT, eagainIsNil: true, take) { return frames }
                sched_yield()
            } while clock.now < spinEnd
        }
        while true {
            if let frames = try receive(flags: ZMQ_DONTWAIT, eagainIsNil: true, take) { return frames }
            let remaining = clock.now.duration(to: deadline)
            if remaining <= .zero { return nil }
            let ms = max(1, Int(remaining.components.seconds) * 1_000 + Int(remaining.components.attoseconds / 1_000_000_000_000_000))
            var item = zmq_pollitem_t(socket: h, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
            let n = try zmqCall("zmq_poll") { zmq_poll(&item, 1, ms) }
            if n == 0 { return nil }
        }
    }

    private func receive<F>(
        flags: Int32, eagainIsNil: Bool, _ take: (UnsafeMutablePointer<zmq_msg_t>) throws(TransportError) -> F
    ) throws(TransportError) -> [F]? {
        let h = try open("zmq_msg_recv")
        var frames: [F] = []
        var more = false
        repeat {
            try zmqCall("zmq_msg_init") { zmq_msg_init(message) }
            defer { zmq_msg_close(message) }
            do {
                // Later frames of a multipart message are already here: libzmq delivers them
                // atomically, so only the first frame honours `flags`.
                let f = frames.isEmpty ? flags : 0
                try zmqCall("zmq_msg_recv") { zmq_msg_recv(message, h, f) }
            } catch where error.code == .wouldBlock && frames.isEmpty && eagainIsNil {
                return nil
            }
            more = zmq_msg_more(message) == 1   // before `take` may move the content out
            frames.append(try take(message))
        } while more
        return frames
    }
}

/// libzmq's free callback for zero-copy frames: drops the message's retain of its keeper.
private let releaseKeeper: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void = { _, hint in
    guard let hint else { return }
    Unmanaged<ArrayKeeper>.fromOpaque(hint).release()
}
