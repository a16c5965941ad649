import Testing
import Wire

@Suite struct WireCodecRejectionTests {
    private func decodeError(_ frames: [[UInt8]], maxTensorBytes: Int = WireCodec.defaultMaxTensorBytes) -> WireError? {
        do {
            _ = try WireCodec.decode(frames, maxTensorBytes: maxTensorBytes)
            return nil
        } catch {
            return error
        }
    }

    @Test("another protocol version is reported as wrongVersion, and the header is still readable")
    func wrongVersion() {
        let m = Message(senderID: "w-5", sequence: 31, body: .workRequest, protocolVersion: 2)
        let frames = WireCodec.encode(m)
        #expect(decodeError(frames) == .wrongVersion(got: 2))
        #expect(decodeError(frames)?.errorCode == .versionMismatch)
        let header = WireCodec.peekHeader(frames)
        #expect(header?.senderID == "w-5")
        #expect(header?.sequence == 31)
        #expect(header?.protocolVersion == 2)
    }

    @Test("the version is checked before the body, so a newer peer's unknown body reads as wrongVersion")
    func versionBeforeBody() {
        let env = ProtoWriter.envelope(version: 2, bodyField: 40)
        #expect(decodeError([env]) == .wrongVersion(got: 2))
        #expect(decodeError([ProtoWriter.envelope(bodyField: 40)]) == .unknownBody(fieldNumber: 40))
    }

    @Test("a tensor frame one byte short is a tensorSizeMismatch naming the tensor")
    func sizeMismatch() {
        var frames = WireCodec.encode(Samples.trainTask(floats: 1_000))
        frames[1].removeLast()
        #expect(decodeError(frames) == .tensorSizeMismatch(name: "phi", expectedBytes: 4_000, got: 3_999))
        #expect(decodeError(frames)?.errorCode == .badTensor)
        #expect(WireCodec.peekHeader(frames)?.sequence == 9)
    }

    @Test("swapped tensor frames are caught by their sizes")
    func swappedFrames() {
        var frames = WireCodec.encode(Samples.trainTask(floats: 100))
        frames.swapAt(1, 2)
        #expect(decodeError(frames) == .tensorSizeMismatch(name: "phi", expectedBytes: 400, got: 8))
    }

    @Test("a missing or extra frame is a tensorCountMismatch")
    func countMismatch() {
        let frames = WireCodec.encode(Samples.trainTask(floats: 10))
        #expect(decodeError(Array(frames.dropLast())) == .tensorCountMismatch(described: 2, frames: 1))
        #expect(decodeError(frames + [[1, 2, 3, 4]]) == .tensorCountMismatch(described: 2, frames: 3))
        let ack = WireCodec.encode(Message(body: .ack(Ack(sequence: 1))))
        #expect(decodeError(ack + [[]]) == .tensorCountMismatch(described: 0, frames: 1))
    }

    @Test("tensor descriptions must match the body's schema")
    func schema() {
        let missing = ProtoWriter.envelope(tensors: [("phi", 0, 1)], bodyField: 13)
        #expect(decodeError([missing, floatFrame([1])]) == .missingTensor("lambda_hat"))

        let unknown = ProtoWriter.envelope(tensors: [("phi", 0, 1), ("lambda_hat", 0, 1), ("extra", 0, 1)], bodyField: 13)
        #expect(decodeError([unknown, floatFrame([1]), floatFrame([1]), floatFrame([1])]) == .unknownTensor("extra"))

        let twice = ProtoWriter.envelope(tensors: [("phi", 0, 1), ("phi", 0, 1)], bodyField: 13)
        #expect(decodeError([twice, floatFrame([1]), floatFrame([1])]) == .unknownTensor("phi"))

        let onAck = ProtoWriter.envelope(tensors: [("phi", 0, 1)], bodyField: 22)
        #expect(decodeError([onAck, floatFrame([1])]) == .unknownTensor("phi"))
    }

    @Test("a wrong or unknown dtype is a tensorTypeMismatch", arguments: [UInt64(1), 2, 77])
    func dtype(_ dtype: UInt64) {
        let env = ProtoWriter.envelope(tensors: [("grad_lambda", dtype, 2)], bodyField: 16)
        #expect(decodeError([env, floatFrame([1, 2])])
                == .tensorTypeMismatch(name: "grad_lambda", expected: "DTYPE_FLOAT32", got: UInt32(dtype)))
    }

    @Test("int32 indices described as float32 are refused")
    func indicesAsFloat() {
        let env = ProtoWriter.envelope(tensors: [("grad_phi", 0, 1), ("lambda", 0, 1), ("indices", 0, 1)], bodyField: 15)
        #expect(decodeError([env, floatFrame([1]), floatFrame([1]), floatFrame([1])])
                == .tensorTypeMismatch(name: "indices", expected: "DTYPE_INT32", got: 0))
    }

    @Test("declared tensor sizes over the limit are refused before any frame is read")
    func tooLarge() {
        let limit = UInt64(WireCodec.defaultMaxTensorBytes)
        let huge = ProtoWriter.envelope(tensors: [("grad_lambda", 0, UInt64(1) << 61)], bodyField: 16)
        #expect(decodeError([huge, []]) == .tooLarge(bytes: UInt64(1) << 63, limit: limit))
        // length × 4 overflows 64 bits: reported as UInt64.max.
        let overflow = ProtoWriter.envelope(tensors: [("grad_lambda", 0, UInt64(1) << 62)], bodyField: 16)
        #expect(decodeError([overflow, []]) == .tooLarge(bytes: UInt64.max, limit: limit))

        let two = ProtoWriter.envelope(tensors: [("phi", 0, 200), ("lambda_hat", 0, 200)], bodyField: 14)
        #expect(decodeError([two, [], []], maxTensorBytes: 1_000) == .tooLarge(bytes: 1_600, limit: 1_000))

        let bigEnvelope = [UInt8](repeating: 0, count: WireCodec.maxEnvelopeBytes + 1)
        #expect(decodeError([bigEnvelope]) == .tooLarge(bytes: UInt64(WireCodec.maxEnvelopeBytes + 1),
                                                        limit: UInt64(WireCodec.maxEnvelopeBytes)))
    }

    @Test("no frames, an empty envelope, garbage and a missing body are malformed")
    func malformed() {
        #expect(decodeError([]) == .malformed("no frames"))
        #expect(decodeError([[]]) == .malformed("empty envelope frame"))
        #expect(decodeError([[0xFF, 0xFF, 0xFF]]) == .malformed("not a protobuf Envelope"))
        var noBody = ProtoWriter()
        noBody.uint(1, 1)
        #expect(decodeError([noBody.bytes]) == .malformed("no body"))
        #expect(decodeError([noBody.bytes])?.errorCode == .malformed)
        #expect(WireCodec.peekHeader([[0xFF, 0xFF, 0xFF]]) == nil)
    }

    @Test("an unknown role is malformed")
    func unknownRole() {
        let env = ProtoWriter.envelope(bodyField: 10) { $0.uint(1, 9) }
        #expect(decodeError([env]) == .malformed("unknown role 9"))
    }

    @Test("every WireError has a readable description")
    func descriptions() {
        let all: [WireError] = [
            .malformed("x"), .unknownBody(fieldNumber: 40), .tensorCountMismatch(described: 1, frames: 2),
            .tensorSizeMismatch(name: "phi", expectedBytes: 8, got: 7),
            .tensorTypeMismatch(name: "phi", expected: "DTYPE_FLOAT32", got: 1), .unknownTensor("q"),
            .missingTensor("phi"), .tooLarge(bytes: 9, limit: 8), .wrongVersion(got: 2),
        ]
        for e in all { #expect(!e.description.isEmpty) }
    }
}
