/// Encodes `Message`s to ZeroMQ frames and decodes them back.
///
/// A message is one envelope frame (a serialized `hypertrain.v1.Envelope`) followed by one
/// frame per tensor of the body, in the order the envelope's `tensors` list describes them;
/// each tensor frame holds exactly `length × 4` little-endian bytes. On the coordinator's
/// ROUTER socket the routing-id frame comes before all of these; that is Transport's business,
/// not the codec's.
///
/// `decode` never traps on untrusted input: anything that is not a well-formed message of this
/// protocol version is a `WireError`.
public enum WireCodec {
    /// The largest envelope frame `decode` accepts (16 MiB; real envelopes are < 64 KiB).
    public static let maxEnvelopeBytes = 16 << 20

    /// The default limit on the total declared tensor bytes of one message (512 MiB).
    public static let defaultMaxTensorBytes = 512 << 20

    /// The frames of `message`: the envelope, then the body's tensors.
    public static func encode(_ message: Message) -> [[UInt8]] {
        encodeFrames(message).map(\.bytes)
    }

    /// The frames of `message` without copying its tensors: the envelope's bytes, then each
    /// tensor as its array (shared with the message, copy-on-write), for a transport that
    /// sends an array's storage in place. Same frames as `encode`.
    public static func encodeFrames(_ message: Message) -> [EncodedFrame] {
        requireLittleEndianHost()
        let tensors = message.body.tensors
        var frames: [EncodedFrame] = []
        frames.reserveCapacity(1 + tensors.count)
        frames.append(.bytes(ProtobufEnvelope.pack(message, tensors: tensors)))
        for tensor in tensors {
            frames.append(tensor.payload.encoded)
        }
        return frames
    }

    /// Decodes the frames of one message (without any routing-id frame).
    ///
    /// Checks, in order: the envelope parses; its protocol version is ours (so a peer with
    /// another version gets `wrongVersion`, not a confusing body error); it has a known body;
    /// the number of tensor frames matches the description; the declared sizes are within
    /// `maxTensorBytes`; every described tensor is one the body has, with the right dtype,
    /// described once, and its frame has exactly `length × 4` bytes; no tensor is missing.
    ///
    /// Frames may be `[UInt8]` or any other `WireFrame` (a transport's receive buffer): each
    /// tensor is copied once, from the frame into its array.
    public static func decode<F: WireFrame>(
        _ frames: [F], maxTensorBytes: Int = defaultMaxTensorBytes
    ) throws(WireError) -> Message {
        requireLittleEndianHost()
        guard let first = frames.first else { throw .malformed("no frames") }
        guard first.count <= maxEnvelopeBytes else {
            throw .tooLarge(bytes: UInt64(first.count), limit: UInt64(maxEnvelopeBytes))
        }
        guard let parsed = first.withFrameBytes({ ProtobufEnvelope.unpack($0) }) else {
            throw .malformed(first.count == 0 ? "empty envelope frame" : "not a protobuf Envelope")
        }
        guard parsed.header.protocolVersion == protocolVersion else {
            throw .wrongVersion(got: parsed.header.protocolVersion)
        }
        var body = try parsed.body.get()

        let tensorFrames = frames.count - 1
        guard parsed.tensors.count == tensorFrames else {
            throw .tensorCountMismatch(described: parsed.tensors.count, frames: tensorFrames)
        }
        // Sum the declared sizes with overflow checks before trusting any of them.
        let limit = UInt64(max(maxTensorBytes, 0))
        var declared: UInt64 = 0
        for t in parsed.tensors {
            let (bytes, o1) = t.length.multipliedReportingOverflow(by: UInt64(tensorElementBytes))
            let (sum, o2) = declared.addingReportingOverflow(bytes)
            guard !o1, !o2, sum <= limit else {
                throw .tooLarge(bytes: o1 || o2 ? UInt64.max : sum, limit: limit)
            }
            declared = sum
        }

        let schema = body.tensorSchema
        var payloads: [String: TensorPayload] = [:]
        for (i, t) in parsed.tensors.enumerated() {
            guard let slot = schema.first(where: { $0.name == t.name }), payloads[t.name] == nil else {
                throw .unknownTensor(t.name)
            }
            guard t.dtype == slot.dtype.rawValue else {
                throw .tensorTypeMismatch(name: t.name, expected: slot.dtype.protoName, got: t.dtype)
            }
            let frame = frames[i + 1]
            let expected = t.length * UInt64(tensorElementBytes)   // no overflow: checked above
            guard UInt64(frame.count) == expected else {
                throw .tensorSizeMismatch(name: t.name, expectedBytes: expected, got: frame.count)
            }
            payloads[t.name] = frame.withFrameBytes { TensorPayload(dtype: slot.dtype, bytes: $0) }
        }
        if let missing = schema.first(where: { !$0.optional && payloads[$0.name] == nil }) {
            throw .missingTensor(missing.name)
        }
        // Bodies with alternative tensors: exactly one of each pair.
        let alternatives: (String, String)? = switch body {
        case .trainTask: ("phi", "w")
        case .gradient: ("grad_phi", "grad_w")
        case .validTask: ("phi", "w")
        case .hypergradient: ("grad_lambda", "grad_w")
        default: nil
        }
        if let (usual, other) = alternatives, (payloads[usual] == nil) == (payloads[other] == nil) {
            throw payloads[usual] == nil ? .missingTensor(usual) : .unknownTensor("\(other) (beside \(usual))")
        }
        // A training task's companion of its form: λ̂ beside φ, the task's λ beside w.
        if case .trainTask = body {
            let companion = payloads["w"] == nil ? "lambda_hat" : "lambda"
            guard payloads[companion] != nil else { throw .missingTensor(companion) }
        }
        body.attach(payloads)

        let h = parsed.header
        return Message(senderID: h.senderID, phiVersion: h.phiVersion, lambdaVersion: h.lambdaVersion,
                       sequence: h.sequence, body: body, protocolVersion: h.protocolVersion)
    }

    /// The header of a message that may not decode, so that an error reply can be addressed
    /// (`ErrorReply.inReplyTo = header.sequence`). Nil when the envelope frame does not parse.
    public static func peekHeader<F: WireFrame>(_ frames: [F]) -> EnvelopeHeader? {
        guard let first = frames.first, first.count <= maxEnvelopeBytes else { return nil }
        return first.withFrameBytes { ProtobufEnvelope.unpack($0) }?.header
    }
}
