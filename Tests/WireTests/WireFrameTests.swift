import Testing
import Wire

/// A frame held outside a `[UInt8]` (as libzmq's receive buffers are), to check that decoding
/// works on any `WireFrame`.
private final class ForeignFrame: WireFrame {
    private let storage: UnsafeMutableRawBufferPointer

    init(_ bytes: [UInt8]) {
        let s = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
        bytes.withUnsafeBytes { s.copyMemory(from: $0) }
        storage = s
        count = bytes.count
    }

    deinit { storage.deallocate() }

    let count: Int

    func withFrameBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        body(UnsafeRawBufferPointer(start: storage.baseAddress, count: count))
    }
}

@Suite struct WireFrameTests {
    @Test("encodeFrames gives the same bytes as encode, with tensors as their arrays", arguments: Samples.messages)
    func encodeFramesMatchesEncode(_ message: Message) {
        let frames = WireCodec.encodeFrames(message)
        #expect(frames.map(\.bytes) == WireCodec.encode(message))
        #expect(frames.map(\.byteCount) == WireCodec.encode(message).map(\.count))
        if case .trainTask(let t) = message.body {
            #expect(frames[1] == .float32(t.weights.isEmpty ? t.phi : t.weights))
        }
    }

    @Test("decoding frames held outside [UInt8] gives the same message", arguments: Samples.messages)
    func decodeForeignFrames(_ message: Message) throws {
        let frames = WireCodec.encode(message).map(ForeignFrame.init)
        #expect(try WireCodec.decode(frames) == message)
        #expect(WireCodec.peekHeader(frames) == message.header)
    }

    @Test("a foreign frame of the wrong length is refused like an array frame")
    func foreignWrongLength() throws {
        var frames = WireCodec.encode(Samples.trainTask(floats: 1_000))
        frames[1].removeLast(4)
        #expect(throws: WireError.self) { try WireCodec.decode(frames.map(ForeignFrame.init)) }
    }
}
