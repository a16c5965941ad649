import Transport
import Wire

// The two copy-free paths between Wire and Transport (which do not know each other):
// received frames are decoded straight from libzmq's buffers, and encoded tensors are sent
// from their arrays' storage without a copy.

extension ReceivedFrame: WireFrame {
    /// Calls `body` with the bytes in libzmq's message buffer.
    public func withFrameBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUnsafeBytes { body($0) }
    }
}

extension OutgoingFrame {
    /// The frame to send for an encoded frame; large tensors go zero-copy.
    init(_ frame: EncodedFrame) {
        switch frame {
        case .bytes(let b): self.init(b)
        case .float32(let a): self.init(elements: a)
        case .int32(let a): self.init(elements: a)
        }
    }
}

extension Socket {
    /// Encodes `message` and sends it (after `prefix` frames, e.g. a routing id), tensors zero-copy.
    func send(_ message: Message, prefix: [[UInt8]] = []) throws {
        let frames = prefix.map(OutgoingFrame.init) + WireCodec.encodeFrames(message).map(OutgoingFrame.init)
        try send(frames: frames)
    }
}
