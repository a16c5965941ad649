import Testing
import Wire

@Suite struct WireCodecRoundTripTests {
    @Test("every body kind survives encode then decode unchanged", arguments: Samples.messages)
    func roundTrip(_ message: Message) throws {
        let frames = WireCodec.encode(message)
        #expect(frames.count == 1 + tensorCount(message.body))
        let decoded = try WireCodec.decode(frames)
        #expect(decoded == message)
        #expect(WireCodec.encode(decoded) == frames)
    }

    @Test("tensor frames follow the envelope in schema order, each exactly length × 4 bytes")
    func framesLayout() throws {
        let g = Gradient(step: 1, taskIndex: 0, leaseID: 2, trainLoss: 0.5, gradPhi: [1, 2, 3],
                         lambdas: [4, 5], indices: [6])
        let frames = WireCodec.encode(Message(body: .gradient(g)))
        try #require(frames.count == 4)
        #expect(frames[1] == floatFrame([1, 2, 3]))
        #expect(frames[2] == floatFrame([4, 5]))
        #expect(frames[3] == int32Frame([6]))
    }

    @Test("a gradient carries grad_w in place of grad_phi (after lambda and indices); both or neither is refused")
    func weightGradientFrames() throws {
        let g = Gradient(step: 1, taskIndex: 0, leaseID: 2, trainLoss: 0.5, gradPhi: [], gradW: [7, 8, 9],
                         lambdas: [4, 5], indices: [6])
        let frames = WireCodec.encode(Message(body: .gradient(g)))
        try #require(frames.count == 4)
        #expect(frames[1] == floatFrame([4, 5]))
        #expect(frames[2] == int32Frame([6]))
        #expect(frames[3] == floatFrame([7, 8, 9]))
        guard case .gradient(let d) = try WireCodec.decode(frames).body else { Issue.record("not a gradient"); return }
        #expect(d.gradW == [7, 8, 9] && d.gradPhi.isEmpty)

        let both = ProtoWriter.envelope(tensors: [("grad_phi", 0, 1), ("lambda", 0, 1), ("indices", 1, 1), ("grad_w", 0, 1)], bodyField: 15)
        #expect(throws: WireError.unknownTensor("grad_w (beside grad_phi)")) {
            try WireCodec.decode([both, floatFrame([1]), floatFrame([1]), int32Frame([1]), floatFrame([1])])
        }
        let neither = ProtoWriter.envelope(tensors: [("lambda", 0, 1), ("indices", 1, 1)], bodyField: 15)
        #expect(throws: WireError.missingTensor("grad_phi")) {
            try WireCodec.decode([neither, floatFrame([1]), int32Frame([1])])
        }
    }

    @Test("a training weight task carries w and lambda in place of phi and lambda_hat; phi beside w, or a form without its companion, is refused")
    func weightTrainTaskFrames() throws {
        let t = TrainTask(step: 3, taskIndex: 1, leaseID: 5, tasksPerStep: 2, phi: [], lambdaHat: [], acceptsWeightGradient: true,
                          weights: [7, 8, 9], lambda: [-3.25, -3.75])
        let frames = WireCodec.encode(Message(body: .trainTask(t)))
        try #require(frames.count == 3)
        #expect(frames[1] == floatFrame([7, 8, 9]))
        #expect(frames[2] == floatFrame([-3.25, -3.75]))
        guard case .trainTask(let d) = try WireCodec.decode(frames).body else { Issue.record("not a train task"); return }
        #expect(d == t)

        let both = ProtoWriter.envelope(tensors: [("phi", 0, 1), ("lambda_hat", 0, 1), ("w", 0, 1), ("lambda", 0, 1)], bodyField: 13)
        #expect(throws: WireError.unknownTensor("w (beside phi)")) {
            try WireCodec.decode([both, floatFrame([1]), floatFrame([1]), floatFrame([1]), floatFrame([1])])
        }
        let wAlone = ProtoWriter.envelope(tensors: [("w", 0, 1)], bodyField: 13)
        #expect(throws: WireError.missingTensor("lambda")) { try WireCodec.decode([wAlone, floatFrame([1])]) }
        let phiAlone = ProtoWriter.envelope(tensors: [("phi", 0, 1)], bodyField: 13)
        #expect(throws: WireError.missingTensor("lambda_hat")) { try WireCodec.decode([phiAlone, floatFrame([1])]) }
        let neither = ProtoWriter.envelope(tensors: [("lambda_hat", 0, 1)], bodyField: 13)
        #expect(throws: WireError.missingTensor("phi")) { try WireCodec.decode([neither, floatFrame([1])]) }
    }

    @Test("a 165,000-float φ round-trips bit for bit, NaN payloads included")
    func largeTensorBitExact() throws {
        var message = Samples.trainTask(floats: 165_000)
        guard case .trainTask(var t) = message.body else { Issue.record("sample is not a TrainTask"); return }
        t.phi[10] = Float(nan: 0x1234, signaling: false)
        t.phi[11] = -Float.nan
        message.body = .trainTask(t)
        let frames = WireCodec.encode(message)
        #expect(frames[1].count == 660_000)
        let decoded = try WireCodec.decode(frames)
        guard case .trainTask(let d) = decoded.body else { Issue.record("decoded \(decoded.body.name)"); return }
        #expect(d.phi.map(\.bitPattern) == t.phi.map(\.bitPattern))
        #expect(d.lambdaHat == t.lambdaHat)
        #expect(decoded.tensorByteCount == 660_008)
    }

    @Test("empty tensors are legal and travel as empty frames")
    func emptyTensors() throws {
        let m = Message(body: .hypergradient(Hypergradient(step: 0, leaseID: 0, validLoss: 0, gradLambda: [])))
        let frames = WireCodec.encode(m)
        #expect(frames.count == 2 && frames[1].isEmpty)
        #expect(try WireCodec.decode(frames) == m)
    }

    @Test("a hand-built envelope (independent protobuf writer) decodes to the documented fields")
    func handBuiltEnvelope() throws {
        let env = ProtoWriter.envelope(
            sender: "w-9", sequence: 77, tensors: [("lambda_hat", 0, 1), ("phi", 0, 2)], bodyField: 13
        ) { b in
            b.uint(1, 12)   // step
            b.uint(2, 3)    // task_index
            b.uint(3, 44)   // lease_id
            b.uint(4, 8)    // tasks_per_step
        }
        // Tensors may be described in any order; frames follow the description.
        let m = try WireCodec.decode([env, floatFrame([0.5]), floatFrame([1, 2])])
        #expect(m.senderID == "w-9" && m.sequence == 77 && m.phiVersion == 4 && m.lambdaVersion == 2)
        #expect(m.body == .trainTask(TrainTask(step: 12, taskIndex: 3, leaseID: 44, tasksPerStep: 8,
                                               phi: [1, 2], lambdaHat: [0.5])))
    }

    @Test("an unknown error code from a newer peer decodes as .unknown")
    func unknownErrorCode() throws {
        let env = ProtoWriter.envelope(bodyField: 18) { b in
            b.uint(1, 999)
            b.string(2, "future")
        }
        let m = try WireCodec.decode([env])
        #expect(m.body == .error(ErrorReply(code: .unknown, message: "future")))
    }

    private func tensorCount(_ body: Message.Body) -> Int {
        switch body {
        case .trainTask, .validTask: 2
        case .gradient: 3   // grad_phi or grad_w, lambda, indices
        case .hypergradient, .trialTask: 1
        default: 0
        }
    }
}
