import TestSupport
import Wire

/// One message of every body kind, with small tensors that include awkward values.
enum Samples {
    static let spec = ExperimentSpec(
        layerSizes: [784, 100, 10], scope: "per-class", norm: "squared", loss: "mse",
        hypernet: "factorized:10", nTrain: 50_000, nValid: 10_000, nTest: 10_000, batchSize: 100,
        validBatchSize: 1_000, samplesPerStep: 2, sigma: 0.5, seed: 0xDEAD_BEEF_0123_4567,
        algorithm: "joint", steps: 100_000, dataFingerprint: 0xFFFF_FFFF_FFFF_FFFE,
        numHyperparameters: 10, numPhiParams: 164_860,
        configJSON: #"{"lr":1e-4,"name":"ünïcødé λ"}"#)

    static let phi: [Float] = [0, -0.0, 1, -1.5, .greatestFiniteMagnitude, .leastNonzeroMagnitude, .infinity, -.infinity, 3.25e-20]

    static let bodies: [Message.Body] = [
        .hello(Hello(role: .validator, hostname: "node-7.cluster", pid: 4242, softwareVersion: "0.1.0",
                     previousWorkerID: "w-3")),
        .welcome(Welcome(workerID: "w-12", spec: spec, heartbeatIntervalMs: 1_000, heartbeatLiveness: 3)),
        .workRequest,
        .trainTask(TrainTask(step: 12_345, taskIndex: 3, leaseID: 99, tasksPerStep: 4, phi: phi, lambdaHat: [-3.5])),
        .trainTask(TrainTask(step: 7, taskIndex: 0, leaseID: 98, tasksPerStep: 2, phi: [], lambdaHat: [-3.5], acceptsWeightGradient: true)),
        .trainTask(TrainTask(step: 7, taskIndex: 1, leaseID: 97, tasksPerStep: 2, phi: [], lambdaHat: [], acceptsWeightGradient: true,
                             weights: phi, lambda: [-3.4, -3.6])),
        .hello(Hello(role: .trainer, hostname: "node-9", pid: 2, softwareVersion: "0.1.0", acceptsWeightTasks: true)),
        .validTask(ValidTask(step: 12_345, leaseID: 100, phi: phi, lambdaHat: [1, 2, 3])),
        .validTask(ValidTask(step: 7, leaseID: 101, phi: [], lambdaHat: [1, 2, 3], weights: phi)),
        .hello(Hello(role: .validator, hostname: "node-8", pid: 1, softwareVersion: "0.1.0", acceptsWeightTasks: true)),
        .hypergradient(Hypergradient(step: 7, leaseID: 101, validLoss: 0.08, gradLambda: [], gradW: [0.5, -0.25, 1])),
        .gradient(Gradient(step: 12_345, taskIndex: 3, leaseID: 99, trainLoss: 0.0812, gradPhi: phi,
                           lambdas: [-3.4, -3.6], indices: [0, 7, Int32.max, Int32.min, -1])),
        .gradient(Gradient(step: 7, taskIndex: 0, leaseID: 98, trainLoss: 0.0812, gradPhi: [], gradW: phi,
                           lambdas: [-3.4], indices: [3, 1])),
        .hypergradient(Hypergradient(step: 12_345, leaseID: 100, validLoss: 0.079, gradLambda: [0.25, -0.5])),
        .heartbeat(Heartbeat(unixMs: 1_732_000_000_000)),
        .error(ErrorReply(code: .versionMismatch, message: "protocol version 2", inReplyTo: 17)),
        .shutdown(Shutdown(reason: "run finished")),
        .statusRequest,
        .status(Status(step: 5, stepsTotal: 100, trainers: 4, validators: 1, json: #"{"valid":0.08}"#)),
        .ack(Ack(sequence: 41)),
        .idle(Idle(retryAfterMs: 250)),
        .trialTask(TrialTask(trialID: 8, leaseID: 9, steps: 2_000, lambda: [-1, -2, -3])),
        .trialResult(TrialResult(trialID: 8, leaseID: 9, trainLoss: 0.05, validLoss: 0.043, testLoss: 0.044)),
        // External models (docs/protocol.md §12): the layout in Hello and in the spec.
        .hello(Hello(role: .trainer, hostname: "gpu-1", pid: 3, softwareVersion: "hypertrain-sdk 0.1.0", acceptsWeightTasks: true,
                     model: ModelSpec(tensors: [.init(name: "conv1.weight", shape: [8, 1, 5, 5]), .init(name: "temperature", shape: [])],
                                      scope: "per-output-unit"))),
        .welcome(Welcome(workerID: "w-14", spec: {
            var s = spec
            s.model = ModelSpec(tensors: [.init(name: "fc.weight", shape: [10, 64]), .init(name: "fc.bias", shape: [10])], scope: "per-tensor")
            return s
        }(), heartbeatIntervalMs: 500, heartbeatLiveness: 5)),
    ]

    static let messages: [Message] = bodies.enumerated().map { i, body in
        Message(senderID: i.isMultiple(of: 2) ? "coordinator" : "w-\(i)", phiVersion: UInt64(i) * 3,
                lambdaVersion: UInt64(i) * 5, sequence: UInt64(i) + 1, body: body)
    }

    static func trainTask(floats: Int, seed: UInt64 = 1) -> Message {
        var rng = SplitMix64(seed: seed)
        let phi = (0..<floats).map { _ in Float.random(in: -1...1, using: &rng) }
        return Message(senderID: "coordinator", phiVersion: 2, lambdaVersion: 1, sequence: 9,
                       body: .trainTask(TrainTask(step: 2, taskIndex: 1, leaseID: 5, phi: phi, lambdaHat: [0.5, 1.5])))
    }
}

/// A minimal protobuf writer, independent of protobuf-c, for hand-built (and hostile) frames.
struct ProtoWriter {
    var bytes: [UInt8] = []

    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }
    mutating func tag(_ field: UInt32, wire: UInt8) { varint(UInt64(field) << 3 | UInt64(wire)) }
    mutating func uint(_ field: UInt32, _ v: UInt64) { tag(field, wire: 0); varint(v) }
    mutating func double(_ field: UInt32, _ v: Double) {
        tag(field, wire: 1)
        withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }
    mutating func bytesField(_ field: UInt32, _ b: [UInt8]) { tag(field, wire: 2); varint(UInt64(b.count)); bytes.append(contentsOf: b) }
    mutating func string(_ field: UInt32, _ s: String) { bytesField(field, Array(s.utf8)) }
    mutating func message(_ field: UInt32, _ build: (inout ProtoWriter) -> Void) {
        var inner = ProtoWriter()
        build(&inner)
        bytesField(field, inner.bytes)
    }

    /// An Envelope with the given header, tensor descriptions and body (field, builder).
    static func envelope(
        version: UInt64 = 1, sender: String = "w-1", sequence: UInt64 = 3,
        tensors: [(name: String, dtype: UInt64, length: UInt64)] = [],
        bodyField: UInt32, body: (inout ProtoWriter) -> Void = { _ in }
    ) -> [UInt8] {
        var w = ProtoWriter()
        w.uint(1, version)
        w.string(2, sender)
        w.uint(3, 4)
        w.uint(4, 2)
        w.uint(5, sequence)
        for t in tensors {
            w.message(6) { ti in
                ti.string(1, t.name)
                ti.uint(2, t.dtype)
                ti.uint(3, t.length)
            }
        }
        w.message(bodyField, body)
        return w.bytes
    }
}

func floatFrame(_ xs: [Float]) -> [UInt8] { xs.withUnsafeBytes { Array($0) } }
func int32Frame(_ xs: [Int32]) -> [UInt8] { xs.withUnsafeBytes { Array($0) } }
