// The only file that touches protobuf-c: Swift domain values ⇄ `Hypertrain__V1__Envelope`.
// Everything here is internal; the C structs never leave this file's functions.

private import CHypertrainProto

/// An envelope as parsed from its frame, before its tensors are checked against the frames.
struct ParsedEnvelope {
    /// A tensor as described in the envelope (the dtype raw, so unknown values survive).
    struct TensorDescription {
        let name: String
        let dtype: UInt32
        let length: UInt64
    }

    let header: EnvelopeHeader
    let tensors: [TensorDescription]
    /// The body with empty tensor fields, or why it could not be read. Kept apart from the
    /// header so the version can be checked first.
    let body: Result<Message.Body, WireError>
}

enum ProtobufEnvelope {
    // MARK: Encoding

    /// Serializes the envelope frame of `message`, describing `tensors` (in frame order).
    static func pack(_ message: Message, tensors: [NamedTensor]) -> [UInt8] {
        CArena.with { arena in
            var env = Hypertrain__V1__Envelope()
            hypertrain__v1__envelope__init(&env)
            env.protocol_version = message.protocolVersion
            env.sender_id = arena.string(message.senderID)
            env.phi_version = message.phiVersion
            env.lambda_version = message.lambdaVersion
            env.sequence = message.sequence

            if !tensors.isEmpty {
                let infos = arena.allocate(UnsafeMutablePointer<Hypertrain__V1__TensorInfo>?.self, count: tensors.count)
                for (i, tensor) in tensors.enumerated() {
                    let info = arena.message(hypertrain__v1__tensor_info__init)
                    info.pointee.name = arena.string(tensor.name)
                    info.pointee.dtype = Hypertrain__V1__DType(rawValue: tensor.payload.dtype.rawValue)
                    info.pointee.length = UInt64(tensor.payload.count)
                    infos[i] = info
                }
                env.n_tensors = tensors.count
                env.tensors = infos
            }

            fillBody(&env, message.body, arena)

            let size = hypertrain__v1__envelope__get_packed_size(&env)
            return [UInt8](unsafeUninitializedCapacity: max(size, 1)) { buffer, initialized in
                initialized = hypertrain__v1__envelope__pack(&env, buffer.baseAddress!)
                precondition(initialized == size, "protobuf-c packed \(initialized) bytes, predicted \(size)")
            }
        }
    }

    private static func fillBody(_ env: inout Hypertrain__V1__Envelope, _ body: Message.Body, _ arena: CArena) {
        switch body {
        case .hello(let h):
            let p = arena.message(hypertrain__v1__hello__init)
            p.pointee.role = Hypertrain__V1__Role(rawValue: h.role.rawValue)
            p.pointee.hostname = arena.string(h.hostname)
            p.pointee.pid = h.pid
            p.pointee.software_version = arena.string(h.softwareVersion)
            p.pointee.previous_worker_id = arena.string(h.previousWorkerID)
            p.pointee.accepts_weight_tasks = h.acceptsWeightTasks ? 1 : 0
            p.pointee.model = h.model.map { packModel($0, arena) }
            env.body_case = HYPERTRAIN__V1__ENVELOPE__BODY_HELLO
            env.hello = p
        case .welcome(let w):
            let p = arena.message(hypertrain__v1__welcome__init)
            p.pointee.worker_id = arena.string(w.workerID)
            p.pointee.spec = packSpec(w.spec, arena)
            p.pointee.heartbeat_interval_ms = w.heartbeatIntervalMs
            p.pointee.heartbeat_liveness = w.heartbeatLiveness
            env.body_case = HYPERTRAIN__V1__ENVELOPE__BODY_WELCOME
            env.welcome = p
        case .workRequest:
            env.body_case = HYPERTRAIN__V1__ENVELOPE__BODY_WORK_REQUEST
            env.work_request = arena.message(hypertrain__v1__work_request__init)
        case .trainTask(let t):
            let p = arena.message(hypertrain__v1__train_task__init)
            p.pointee.step = t.step
            p.pointee.task_index = t.taskIndex
            p.pointee.lease_id = t.leaseID
            p.pointee.tasks_per_step = t.tasksPerStep
            p.pointee.accepts_grad_w = t.acceptsWeightGradient ? 1 : 0
            env.body_case = HYPERTRAIN__V1__ENVELOPE__BODY_TRAIN_TASK
            env.train_task = p
        case .validTask(let t):
            let p = arena.message(hypertrain__v1__valid_task__init)
            p.pointee.step = t.step
            p.pointee.lease_id = t.leaseID
            env.body_case = HYPERTRAIN__V1__ENVELOPE__BODY_VALID_TASK
            env.valid_task = p
        case .gradient(let g):
            let p = arena.message(hypertrain__v1__gradient__init)
            p.pointee.step = g.step
            p.pointee.task_index = g.taskIndex
            p.pointee.lease_id = g.leaseID
            p.pointee.train_loss = g.trainLoss
            env.body_case = HYPERTRAIN__V1__ENVELOPE__BODY_GRADIENT
            env.gradient = p
        case .hypergradient(let h):
            let p = arena.message(hypertrain__v1__hypergradient__init)
            p.pointee.step = h.step
            p.pointee.lease_id = h.leaseID
            p.pointee.valid_loss = h.validLoss
            env.body_case = HYPERTRAIN__V1__ENVELOPE__BODY_HYPERGRADIENT
            env.hypergradient = p
        case .heartbeat(let h):
            let p = arena.message(hypertrain__v1__heartbeat__init)
            p.pointee.unix_ms = h.unixMs
            env.body_case = HYPERTRAIN__V1__ENVELOPE__BODY_HEARTBEAT
            env.heartbeat = p
        case .error(let e):
            let p = arena.message(hypertrain__v1__error__init)
            p.pointee.code = Hypertrain__V1__ErrorCode(rawValue: e.code.rawValue)
            p.pointee.message = arena.string(e.message)
            p.pointee.in_reply_to = e.inReplyTo
            env.body_case = HYPERTRAIN__V1__ENVELOPE__BODY_ERROR
            env.error = p
        case .shutdown(let s):
            let p = arena.message(hypertrain__v1__shutdown__init)
            p.pointee.reason = arena.string(s.reason)
            env.body_case = HYPERTRAIN__V1__ENVELOPE__BODY_SHUTDOWN
            env.shutdown = p
        case .statusRequest:
            env.body_case = HYPERTRAIN__V1__ENVELOPE__BODY_STATUS_REQUEST
            env.status_request = arena.message(hypertrain__v1__status_request__init)
        case .status(let s):
            let p = arena.message(hypertrain__v1__status__init)
            p.pointee.step = s.step
            p.pointee.steps_total = s.stepsTotal
            p.pointee.trainers = s.trainers
            p.pointee.validators = s.validators
            p.pointee.json = arena.string(s.json)
            env.body_case = HYPERTRAIN__V1__ENVELOPE__BODY_STATUS
            env.status = p
        case .ack(let a):
            let p = arena.message(hypertrain__v1__ack__init)
            p.pointee.sequence = a.sequence
            env.body_case = HYPERTRAIN__V1__ENVELOPE__BODY_ACK
            env.ack = p
        case .idle(let i):
            let p = arena.message(hypertrain__v1__idle__init)
            p.pointee.retry_after_ms = i.retryAfterMs
            env.body_case = HYPERTRAIN__V1__ENVELOPE__BODY_IDLE
            env.idle = p
        case .trialTask(let t):
            let p = arena.message(hypertrain__v1__trial_task__init)
            p.pointee.trial_id = t.trialID
            p.pointee.lease_id = t.leaseID
            p.pointee.steps = t.steps
            env.body_case = HYPERTRAIN__V1__ENVELOPE__BODY_TRIAL_TASK
            env.trial_task = p
        case .trialResult(let r):
            let p = arena.message(hypertrain__v1__trial_result__init)
            p.pointee.trial_id = r.trialID
            p.pointee.lease_id = r.leaseID
            p.pointee.train_loss = r.trainLoss
            p.pointee.valid_loss = r.validLoss
            p.pointee.test_loss = r.testLoss
            env.body_case = HYPERTRAIN__V1__ENVELOPE__BODY_TRIAL_RESULT
            env.trial_result = p
        }
    }

    private static func packSpec(_ s: ExperimentSpec, _ arena: CArena) -> UnsafeMutablePointer<Hypertrain__V1__ExperimentSpec> {
        let p = arena.message(hypertrain__v1__experiment_spec__init)
        p.pointee.n_layer_sizes = s.layerSizes.count
        p.pointee.layer_sizes = arena.array(s.layerSizes)
        p.pointee.scope = arena.string(s.scope)
        p.pointee.norm = arena.string(s.norm)
        p.pointee.loss = arena.string(s.loss)
        p.pointee.hypernet = arena.string(s.hypernet)
        p.pointee.n_train = s.nTrain
        p.pointee.n_valid = s.nValid
        p.pointee.n_test = s.nTest
        p.pointee.batch_size = s.batchSize
        p.pointee.valid_batch_size = s.validBatchSize
        p.pointee.samples_per_step = s.samplesPerStep
        p.pointee.sigma = s.sigma
        p.pointee.seed = s.seed
        p.pointee.algorithm = arena.string(s.algorithm)
        p.pointee.steps = s.steps
        p.pointee.data_fingerprint = s.dataFingerprint
        p.pointee.num_hyperparameters = s.numHyperparameters
        p.pointee.num_phi_params = s.numPhiParams
        p.pointee.config_json = arena.string(s.configJSON)
        p.pointee.model = s.model.map { packModel($0, arena) }
        return p
    }

    private static func packModel(_ m: ModelSpec, _ arena: CArena) -> UnsafeMutablePointer<Hypertrain__V1__ModelSpec> {
        let p = arena.message(hypertrain__v1__model_spec__init)
        p.pointee.scope = arena.string(m.scope)
        if !m.tensors.isEmpty {
            let list = arena.allocate(UnsafeMutablePointer<Hypertrain__V1__ModelTensor>?.self, count: m.tensors.count)
            for (i, t) in m.tensors.enumerated() {
                let e = arena.message(hypertrain__v1__model_tensor__init)
                e.pointee.name = arena.string(t.name)
                e.pointee.n_shape = t.shape.count
                e.pointee.shape = arena.array(t.shape)
                list[i] = e
            }
            p.pointee.n_tensors = m.tensors.count
            p.pointee.tensors = list
        }
        return p
    }

    // MARK: Decoding

    /// Parses an envelope frame; nil when protobuf-c cannot (the frame is not an Envelope).
    static func unpack(_ frame: [UInt8]) -> ParsedEnvelope? {
        frame.withUnsafeBytes { unpack($0) }
    }

    /// Parses an envelope frame from raw bytes; nil when protobuf-c cannot.
    static func unpack(_ frame: UnsafeRawBufferPointer) -> ParsedEnvelope? {
        guard frame.count > 0, let base = frame.baseAddress else { return nil }
        let env = hypertrain__v1__envelope__unpack(nil, frame.count, base.assumingMemoryBound(to: UInt8.self))
        guard let env else { return nil }
        defer { hypertrain__v1__envelope__free_unpacked(env, nil) }
        return read(env.pointee)
    }

    private static func read(_ env: Hypertrain__V1__Envelope) -> ParsedEnvelope {
        let header = EnvelopeHeader(
            protocolVersion: env.protocol_version, senderID: string(env.sender_id),
            phiVersion: env.phi_version, lambdaVersion: env.lambda_version, sequence: env.sequence)
        var tensors: [ParsedEnvelope.TensorDescription] = []
        if env.n_tensors > 0, let list = env.tensors {
            tensors.reserveCapacity(env.n_tensors)
            for i in 0..<env.n_tensors {
                guard let info = list[i] else { continue }
                tensors.append(.init(name: string(info.pointee.name), dtype: info.pointee.dtype.rawValue,
                                     length: info.pointee.length))
            }
        }
        let body: Result<Message.Body, WireError>
        do throws(WireError) {
            body = .success(try readBody(env))
        } catch {
            body = .failure(error)
        }
        return ParsedEnvelope(header: header, tensors: tensors, body: body)
    }

    private static func readBody(_ env: Hypertrain__V1__Envelope) throws(WireError) -> Message.Body {
        switch env.body_case {
        case HYPERTRAIN__V1__ENVELOPE__BODY_HELLO:
            let h = try pointee(env.hello)
            guard let role = Role(rawValue: h.role.rawValue) else {
                throw .malformed("unknown role \(h.role.rawValue)")
            }
            return .hello(Hello(role: role, hostname: string(h.hostname), pid: h.pid,
                                softwareVersion: string(h.software_version),
                                previousWorkerID: string(h.previous_worker_id),
                                acceptsWeightTasks: h.accepts_weight_tasks != 0, model: readModel(h.model)))
        case HYPERTRAIN__V1__ENVELOPE__BODY_WELCOME:
            let w = try pointee(env.welcome)
            return .welcome(Welcome(workerID: string(w.worker_id), spec: readSpec(w.spec),
                                    heartbeatIntervalMs: w.heartbeat_interval_ms,
                                    heartbeatLiveness: w.heartbeat_liveness))
        case HYPERTRAIN__V1__ENVELOPE__BODY_WORK_REQUEST:
            return .workRequest
        case HYPERTRAIN__V1__ENVELOPE__BODY_TRAIN_TASK:
            let t = try pointee(env.train_task)
            return .trainTask(TrainTask(step: t.step, taskIndex: t.task_index, leaseID: t.lease_id,
                                        tasksPerStep: t.tasks_per_step, phi: [], lambdaHat: [],
                                        acceptsWeightGradient: t.accepts_grad_w != 0))
        case HYPERTRAIN__V1__ENVELOPE__BODY_VALID_TASK:
            let t = try pointee(env.valid_task)
            return .validTask(ValidTask(step: t.step, leaseID: t.lease_id, phi: [], lambdaHat: []))
        case HYPERTRAIN__V1__ENVELOPE__BODY_GRADIENT:
            let g = try pointee(env.gradient)
            return .gradient(Gradient(step: g.step, taskIndex: g.task_index, leaseID: g.lease_id,
                                      trainLoss: g.train_loss, gradPhi: [], lambdas: [], indices: []))
        case HYPERTRAIN__V1__ENVELOPE__BODY_HYPERGRADIENT:
            let h = try pointee(env.hypergradient)
            return .hypergradient(Hypergradient(step: h.step, leaseID: h.lease_id,
                                                validLoss: h.valid_loss, gradLambda: []))
        case HYPERTRAIN__V1__ENVELOPE__BODY_HEARTBEAT:
            return .heartbeat(Heartbeat(unixMs: try pointee(env.heartbeat).unix_ms))
        case HYPERTRAIN__V1__ENVELOPE__BODY_ERROR:
            let e = try pointee(env.error)
            // An error code from a newer peer is still an error: report it as `unknown`.
            return .error(ErrorReply(code: ErrorCode(rawValue: e.code.rawValue) ?? .unknown,
                                     message: string(e.message), inReplyTo: e.in_reply_to))
        case HYPERTRAIN__V1__ENVELOPE__BODY_SHUTDOWN:
            return .shutdown(Shutdown(reason: string(try pointee(env.shutdown).reason)))
        case HYPERTRAIN__V1__ENVELOPE__BODY_STATUS_REQUEST:
            return .statusRequest
        case HYPERTRAIN__V1__ENVELOPE__BODY_STATUS:
            let s = try pointee(env.status)
            return .status(Status(step: s.step, stepsTotal: s.steps_total, trainers: s.trainers,
                                  validators: s.validators, json: string(s.json)))
        case HYPERTRAIN__V1__ENVELOPE__BODY_ACK:
            return .ack(Ack(sequence: try pointee(env.ack).sequence))
        case HYPERTRAIN__V1__ENVELOPE__BODY_IDLE:
            return .idle(Idle(retryAfterMs: try pointee(env.idle).retry_after_ms))
        case HYPERTRAIN__V1__ENVELOPE__BODY_TRIAL_TASK:
            let t = try pointee(env.trial_task)
            return .trialTask(TrialTask(trialID: t.trial_id, leaseID: t.lease_id, steps: t.steps, lambda: []))
        case HYPERTRAIN__V1__ENVELOPE__BODY_TRIAL_RESULT:
            let r = try pointee(env.trial_result)
            return .trialResult(TrialResult(trialID: r.trial_id, leaseID: r.lease_id, trainLoss: r.train_loss,
                                            validLoss: r.valid_loss, testLoss: r.test_loss))
        default:
            // protobuf-c keeps fields it does not know as unknown fields: a body field number
            // (≥ 10) among them means a newer peer sent a body this version lacks.
            let base = env.base
            if base.n_unknown_fields > 0, let unknown = base.unknown_fields {
                for i in 0..<Int(base.n_unknown_fields) where unknown[i].tag >= 10 {
                    throw .unknownBody(fieldNumber: unknown[i].tag)
                }
            }
            throw .malformed("no body")
        }
    }

    private static func readSpec(_ p: UnsafeMutablePointer<Hypertrain__V1__ExperimentSpec>?) -> ExperimentSpec {
        guard let s = p?.pointee else { return ExperimentSpec() }
        var layers: [UInt32] = []
        if s.n_layer_sizes > 0, let sizes = s.layer_sizes {
            layers = Array(UnsafeBufferPointer(start: sizes, count: s.n_layer_sizes))
        }
        return ExperimentSpec(
            layerSizes: layers, scope: string(s.scope), norm: string(s.norm), loss: string(s.loss),
            hypernet: string(s.hypernet), nTrain: s.n_train, nValid: s.n_valid, nTest: s.n_test,
            batchSize: s.batch_size, validBatchSize: s.valid_batch_size,
            samplesPerStep: s.samples_per_step, sigma: s.sigma, seed: s.seed,
            algorithm: string(s.algorithm), steps: s.steps, dataFingerprint: s.data_fingerprint,
            numHyperparameters: s.num_hyperparameters, numPhiParams: s.num_phi_params,
            configJSON: string(s.config_json), model: readModel(s.model))
    }

    private static func readModel(_ p: UnsafeMutablePointer<Hypertrain__V1__ModelSpec>?) -> ModelSpec? {
        guard let m = p?.pointee else { return nil }
        var tensors: [ModelSpec.Tensor] = []
        if m.n_tensors > 0, let list = m.tensors {
            for i in 0..<m.n_tensors {
                guard let t = list[i]?.pointee else { continue }
                let shape = t.n_shape > 0 && t.shape != nil ? Array(UnsafeBufferPointer(start: t.shape, count: t.n_shape)) : []
                tensors.append(.init(name: string(t.name), shape: shape))
            }
        }
        return ModelSpec(tensors: tensors, scope: string(m.scope))
    }

    private static func pointee<T>(_ p: UnsafeMutablePointer<T>?) throws(WireError) -> T {
        guard let p else { throw .malformed("body case set without a body") }
        return p.pointee
    }

    private static func string(_ p: UnsafeMutablePointer<CChar>?) -> String {
        guard let p else { return "" }
        return String(cString: p)
    }
}
