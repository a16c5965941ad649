// Measures the framing decision recorded in docs/protocol.md ("Why tensors travel as extra
// frames"): tensors as extra ZeroMQ frames (what WireCodec does) against tensors inside
// protobuf `bytes` fields (the rejected alternative, via the benchmark-only proto message
// `InlineTensorsBenchmark`). `package` so that WireTests can run it in debug and release.

private import CHypertrainProto

/// Encode and decode times of one message carrying a float32 tensor, both ways.
package struct FramingBenchmarkResult: Sendable, CustomStringConvertible {
    /// Elements in the tensor.
    package let floats: Int
    /// Median seconds: WireCodec.encode / decode (extra frames).
    package let framesEncode: Double
    package let framesDecode: Double
    /// Median seconds: pack / unpack + copy-out of `InlineTensorsBenchmark` (protobuf bytes).
    package let bytesEncode: Double
    package let bytesDecode: Double

    package var description: String {
        func us(_ s: Double) -> String {
            let v = (s * 1e7).rounded() / 10
            return "\(v) µs"
        }
        return """
        \(floats) floats (\(floats * 4) bytes), median of the runs:
          extra frames:   encode \(us(framesEncode)), decode \(us(framesDecode)), total \(us(framesEncode + framesDecode))
          protobuf bytes: encode \(us(bytesEncode)), decode \(us(bytesDecode)), total \(us(bytesEncode + bytesDecode))
        """
    }
}

package enum FramingBenchmark {
    static let lambdaHat: [Float] = [1.5]

    /// The TrainTask both encodings carry.
    static func message(phi: [Float]) -> Message {
        Message(senderID: "coordinator", phiVersion: 7, lambdaVersion: 3, sequence: 11,
                body: .trainTask(TrainTask(step: 7, taskIndex: 0, leaseID: 1, phi: phi, lambdaHat: lambdaHat)))
    }

    /// φ after one encode and decode each way: as WireCodec's extra frame (`nil` if the
    /// frames did not decode to a TrainTask) and inside the protobuf `bytes` field. Both
    /// must give back `phi` bit for bit, or the timings compare different work.
    package static func decodedBothWays(phi: [Float]) -> (frames: [Float]?, bytes: [Float]) {
        let message = message(phi: phi)
        var frames: [Float]?
        if case .trainTask(let t)? = try? WireCodec.decode(WireCodec.encode(message)).body { frames = t.phi }
        return (frames, unpackInline(packInline(message, phi: phi, lambdaHat: lambdaHat)))
    }

    /// Runs both encodings of a TrainTask with `floats` elements of φ drawn from `generator`
    /// (uniform in [0, 1)), `iterations` times each.
    package static func run(floats: Int = 165_000, iterations: Int = 200,
                            using generator: inout some RandomNumberGenerator) -> FramingBenchmarkResult {
        let phi = (0..<floats).map { _ in Float.random(in: 0..<1, using: &generator) }
        let message = message(phi: phi)
        let clock = ContinuousClock()
        func seconds(_ d: Duration) -> Double {
            Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        }
        func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

        var fe: [Double] = [], fd: [Double] = [], be: [Double] = [], bd: [Double] = []
        var sink = 0
        for _ in 0..<iterations {
            var frames: [[UInt8]] = []
            fe.append(seconds(clock.measure { frames = WireCodec.encode(message) }))
            fd.append(seconds(clock.measure {
                if case .trainTask(let t)? = try? WireCodec.decode(frames).body { sink &+= t.phi.count }
            }))

            var packed: [UInt8] = []
            be.append(seconds(clock.measure { packed = packInline(message, phi: phi, lambdaHat: lambdaHat) }))
            bd.append(seconds(clock.measure { sink &+= unpackInline(packed).count }))
        }
        precondition(sink == 2 * iterations * floats, "benchmark decoded the wrong number of floats")
        return FramingBenchmarkResult(floats: floats, framesEncode: median(fe), framesDecode: median(fd),
                                      bytesEncode: median(be), bytesDecode: median(bd))
    }

    /// The alternative encoding: header + tensor descriptions as in the real envelope, the
    /// tensors' bytes in `repeated bytes data` (pointing at the arrays, no staging copy).
    private static func packInline(_ m: Message, phi: [Float], lambdaHat: [Float]) -> [UInt8] {
        CArena.with { arena in
            phi.withUnsafeBytes { phiBytes in
                lambdaHat.withUnsafeBytes { lambdaBytes in
                    var env = Hypertrain__V1__Envelope()
                    hypertrain__v1__envelope__init(&env)
                    env.protocol_version = m.protocolVersion
                    env.sender_id = arena.string(m.senderID)
                    env.sequence = m.sequence
                    let infos = arena.allocate(UnsafeMutablePointer<Hypertrain__V1__TensorInfo>?.self, count: 2)
                    for (i, (name, n)) in [("phi", phi.count), ("lambda_hat", lambdaHat.count)].enumerated() {
                        let info = arena.message(hypertrain__v1__tensor_info__init)
                        info.pointee.name = arena.string(name)
                        info.pointee.length = UInt64(n)
                        infos[i] = info
                    }
                    env.n_tensors = 2
                    env.tensors = infos
                    let task = arena.message(hypertrain__v1__train_task__init)
                    task.pointee.step = 7
                    env.body_case = HYPERTRAIN__V1__ENVELOPE__BODY_TRAIN_TASK
                    env.train_task = task

                    var outer = Hypertrain__V1__InlineTensorsBenchmark()
                    hypertrain__v1__inline_tensors_benchmark__init(&outer)
                    return withUnsafeMutablePointer(to: &env) { envPointer in
                        outer.envelope = envPointer
                        let data = arena.allocate(ProtobufCBinaryData.self, count: 2)
                        data[0] = ProtobufCBinaryData(len: phiBytes.count,
                                                      data: UnsafeMutablePointer(mutating: phiBytes.baseAddress!.assumingMemoryBound(to: UInt8.self)))
                        data[1] = ProtobufCBinaryData(len: lambdaBytes.count,
                                                      data: UnsafeMutablePointer(mutating: lambdaBytes.baseAddress!.assumingMemoryBound(to: UInt8.self)))
                        outer.n_data = 2
                        outer.data = data
                        let size = hypertrain__v1__inline_tensors_benchmark__get_packed_size(&outer)
                        return [UInt8](unsafeUninitializedCapacity: size) { buffer, n in
                            n = hypertrain__v1__inline_tensors_benchmark__pack(&outer, buffer.baseAddress!)
                        }
                    }
                }
            }
        }
    }

    /// Unpacks the alternative encoding and copies φ out into a [Float], as a decoder must.
    private static func unpackInline(_ packed: [UInt8]) -> [Float] {
        let msg = packed.withUnsafeBufferPointer {
            hypertrain__v1__inline_tensors_benchmark__unpack(nil, $0.count, $0.baseAddress)
        }
        guard let msg else { return [] }
        defer { hypertrain__v1__inline_tensors_benchmark__free_unpacked(msg, nil) }
        guard msg.pointee.n_data >= 1, let data = msg.pointee.data else { return [] }
        let blob = data[0]
        let n = blob.len / 4
        return [Float](unsafeUninitializedCapacity: n) { dst, initialized in
            if n > 0, let src = blob.data {
                UnsafeMutableRawBufferPointer(dst).copyMemory(from: UnsafeRawBufferPointer(start: src, count: n * 4))
            }
            initialized = n
        }
    }
}
