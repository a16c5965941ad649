import Foundation
import Transport
import Wire

/// The coordinator side of the transport: one ROUTER socket (CURVE with a ZAP handler when
/// configured) bound to every endpoint; receives messages with their routing ids and sends
/// encoded messages back. Used by both the hyper-training and the study coordinators.
/// Lives on the thread that created it (ZeroMQ sockets are not thread-safe).
final class RouterServer {
    /// The socket's context (a worker thread in this process connects over inproc:// with it).
    let context: ZMQContext
    private let zap: ZAPAuthenticator?
    private let router: Socket
    private let log: @Sendable (String) -> Void
    /// The bound endpoints (ports resolved).
    let endpoints: [String]

    init(bind: [String], curve: CurveServerSetup?, maxMessageBytes: Int64, log: @escaping @Sendable (String) -> Void) throws {
        Transport.tuneAllocatorForLargeMessages()
        self.log = log
        let context = try ZMQContext()
        self.context = context
        do {
            zap = try curve.map { c in
                try ZAPAuthenticator(context: context, authorizedKeys: c.authorized, log: { log("CURVE: \($0)") })
            }
            router = try Socket(context: context, kind: .router)
        } catch {
            context.close()
            throw error
        }
        do {
            try router.set(.linger(milliseconds: 2000))
            // Frames larger than any legitimate message are dropped by libzmq (and the peer cut off).
            try router.set(.maxMessageSize(maxMessageBytes))
            if let c = curve { try router.set(.curveServer(secretKey: c.keyPair.secretKey)) }
            var bound: [String] = []
            for endpoint in bind {
                try router.bind(endpoint)
                bound.append(try router.lastEndpoint)
            }
            endpoints = bound
        } catch {
            router.close()
            zap?.stop()
            context.close()
            throw error
        }
    }

    /// Waits up to `timeout` seconds for traffic, then drains up to 256 messages; each is
    /// `(routing id, message frames)`. Messages without a routing id or body are dropped. The
    /// frames stay in libzmq's buffers, so a decoder copies each tensor once, straight into its
    /// destination.
    func receiveFrames(timeout: Double) throws -> [(peer: [UInt8], frames: [ReceivedFrame])] {
        var raw: [[ReceivedFrame]] = []
        if let first = try router.receiveFrames(timeoutMs: Int32(timeout * 1000)) { raw.append(first) }
        while raw.count < 256, let more = try router.tryReceiveFrames() { raw.append(more) }
        var out: [(peer: [UInt8], frames: [ReceivedFrame])] = []
        for frames in raw {
            guard frames.count >= 2 else { log("dropped a message without routing id or body (\(frames.count) frames)"); continue }
            out.append((frames[0].bytes, Array(frames.dropFirst())))
        }
        return out
    }

    /// Sends `message` to `peer` (failures are logged: the peer may be gone). Tensors are not
    /// copied: libzmq sends them from the message's arrays, which it keeps alive until written.
    func send(_ message: Message, to peer: [UInt8]) {
        do { try router.send(message, prefix: [peer]) } catch { log("send \(message.body.name) failed: \(error)") }
    }

    /// Closes the socket (lingering up to 2 s to deliver Shutdown messages) and the context,
    /// and removes the socket files of ipc:// endpoints (a later bind to the same path, or a
    /// worker connecting to it, must not find a stale file).
    func close() {
        router.close()
        zap?.stop()
        context.close()
        for endpoint in endpoints where endpoint.hasPrefix("ipc://") {
            let path = String(endpoint.dropFirst("ipc://".count))
            if !path.hasPrefix("@") { unlink(path) }   // "@name": Linux abstract namespace, no file
        }
    }
}
