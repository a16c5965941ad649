private import CZeroMQ

/// One received ZeroMQ frame, kept in libzmq's own message buffer: reading it costs no copy.
///
/// `Socket.receiveFrames` hands these out so that a decoder can check a tensor frame's length
/// and copy its bytes once, straight into their destination, instead of first into a
/// `[UInt8]`. The frame owns its `zmq_msg_t` and closes it when released (a message is not tied
/// to a socket or thread, so releasing it anywhere is fine).
public final class ReceivedFrame {
    private let message: UnsafeMutablePointer<zmq_msg_t>

    /// Takes over the content of `source`, a `zmq_msg_t` (left empty; it still needs closing).
    /// Raw because the C type may not appear outside this file's `private import`.
    init(moving source: UnsafeMutableRawPointer) throws(TransportError) {
        message = .allocate(capacity: 1)
        do {
            let from = source.assumingMemoryBound(to: zmq_msg_t.self)
            try zmqCall("zmq_msg_init") { zmq_msg_init(message) }
            try zmqCall("zmq_msg_move") { zmq_msg_move(message, from) }
        } catch {
            message.deallocate()
            throw error
        }
    }

    deinit {
        zmq_msg_close(message)
        message.deallocate()
    }

    /// Number of bytes.
    public var count: Int { zmq_msg_size(message) }

    /// Calls `body` with the frame's bytes (valid only inside `body`).
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let n = zmq_msg_size(message)
        guard n > 0, let data = zmq_msg_data(message) else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: data, count: n))
    }

    /// The bytes as an array (a copy).
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }
}
