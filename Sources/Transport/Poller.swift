private import CZeroMQ

/// Waits on several sockets at once (zmq_poll; the draft zmq_poller API is not available in
/// the Debian build of libzmq 4.3).
///
/// Like the sockets it watches, a Poller belongs to one thread. It keeps its sockets alive;
/// do not close a registered socket while the poller is still used.
public final class Poller {
    /// What to wait for / what is ready.
    public struct Events: OptionSet, Sendable {
        public let rawValue: Int16
        public init(rawValue: Int16) { self.rawValue = rawValue }
        /// A message can be received without blocking.
        public static let readable = Events(rawValue: Int16(ZMQ_POLLIN))
        /// A message can be sent without blocking.
        public static let writable = Events(rawValue: Int16(ZMQ_POLLOUT))
    }

    private var sockets: [Socket] = []
    private var requested: [Events] = []

    /// An empty poller.
    public init() {}

    /// Watches `socket` for `events`; returns its index in `poll`'s result.
    @discardableResult
    public func register(_ socket: Socket, for events: Events = .readable) -> Int {
        sockets.append(socket)
        requested.append(events)
        return sockets.count - 1
    }

    /// Waits up to `timeoutMs` (-1 = forever, 0 = just check) until a registered socket is
    /// ready. Returns the ready events per socket, in registration order (all empty on timeout).
    public func poll(timeoutMs: Int) throws(TransportError) -> [Events] {
        var items: [zmq_pollitem_t] = []
        items.reserveCapacity(sockets.count)
        for (socket, events) in zip(sockets, requested) {
            guard let h = socket.handle else {
                throw TransportError(operation: "zmq_poll", code: .invalidArgument, errno: 0,
                                     message: "a registered \(socket.kind) socket is closed")
            }
            items.append(zmq_pollitem_t(socket: h, fd: 0, events: events.rawValue, revents: 0))
        }
        let count = items.count
        let n = try items.withUnsafeMutableBufferPointer { buffer throws(TransportError) in
            try zmqCall("zmq_poll") { zmq_poll(buffer.baseAddress, Int32(count), timeoutMs) }
        }
        if n == 0 { return Array(repeating: [], count: count) }
        return items.map { Events(rawValue: $0.revents) }
    }
}
