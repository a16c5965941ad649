/// The protocol version this build speaks. A peer whose envelope carries another version
/// gets `Error{VERSION_MISMATCH}` (see `WireError.wrongVersion`).
public let protocolVersion: UInt32 = 1

/// One protocol message: the envelope header fields and a typed body.
///
/// This is the domain type the rest of Hypertrain works with; the protobuf-c structs never
/// leave the Wire module. Tensors are ordinary fields of the body structs (`TrainTask.phi`,
/// `Gradient.gradPhi`, …); `WireCodec` turns them into extra ZeroMQ frames and back.
public struct Message: Sendable, Equatable {
    /// Must equal `Wire.protocolVersion` on both sides.
    public var protocolVersion: UInt32
    /// The sender's worker id ("" before registration, "coordinator" for the coordinator).
    public var senderID: String
    /// The φ version the message was computed from (tasks: the version handed out).
    public var phiVersion: UInt64
    /// The λ̂ version the message was computed from (tasks: the version handed out).
    public var lambdaVersion: UInt64
    /// Per-sender, strictly increasing; `(senderID, sequence)` identifies a message.
    public var sequence: UInt64
    /// What the message says.
    public var body: Body

    /// Creates a message; `protocolVersion` defaults to the version this build speaks.
    public init(
        senderID: String = "",
        phiVersion: UInt64 = 0,
        lambdaVersion: UInt64 = 0,
        sequence: UInt64 = 0,
        body: Body,
        protocolVersion: UInt32 = Wire.protocolVersion
    ) {
        self.protocolVersion = protocolVersion
        self.senderID = senderID
        self.phiVersion = phiVersion
        self.lambdaVersion = lambdaVersion
        self.sequence = sequence
        self.body = body
    }

    /// The header fields alone.
    public var header: EnvelopeHeader {
        EnvelopeHeader(
            protocolVersion: protocolVersion, senderID: senderID, phiVersion: phiVersion,
            lambdaVersion: lambdaVersion, sequence: sequence)
    }

    /// The body of a message; one case per `oneof body` member of `Envelope`.
    public enum Body: Sendable, Equatable {
        /// Worker → coordinator: register or re-register.
        case hello(Hello)
        /// Coordinator → worker: registration accepted, with the experiment spec.
        case welcome(Welcome)
        /// Worker → coordinator: give me a task.
        case workRequest
        /// Coordinator → trainer.
        case trainTask(TrainTask)
        /// Coordinator → validator.
        case validTask(ValidTask)
        /// Trainer → coordinator.
        case gradient(Gradient)
        /// Validator → coordinator.
        case hypergradient(Hypergradient)
        /// Both directions.
        case heartbeat(Heartbeat)
        /// Either direction: the previous message was refused.
        case error(ErrorReply)
        /// Coordinator → worker: stop.
        case shutdown(Shutdown)
        /// Anyone → coordinator.
        case statusRequest
        /// Coordinator → whoever asked.
        case status(Status)
        /// Coordinator → worker: the result with this sequence was accepted.
        case ack(Ack)
        /// Coordinator → worker: no task now, ask again later.
        case idle(Idle)
        /// Coordinator → trial worker (baselines).
        case trialTask(TrialTask)
        /// Trial worker → coordinator.
        case trialResult(TrialResult)

        /// The proto field name of the body ("train_task", …), for logs.
        public var name: String {
            switch self {
            case .hello: "hello"
            case .welcome: "welcome"
            case .workRequest: "work_request"
            case .trainTask: "train_task"
            case .validTask: "valid_task"
            case .gradient: "gradient"
            case .hypergradient: "hypergradient"
            case .heartbeat: "heartbeat"
            case .error: "error"
            case .shutdown: "shutdown"
            case .statusRequest: "status_request"
            case .status: "status"
            case .ack: "ack"
            case .idle: "idle"
            case .trialTask: "trial_task"
            case .trialResult: "trial_result"
            }
        }
    }

    /// Total bytes of the message's tensor frames, for logs (which never dump payloads).
    public var tensorByteCount: Int {
        body.tensors.reduce(0) { $0 + $1.payload.byteCount }
    }
}

/// The header fields of an envelope, without the body; what `WireCodec.peekHeader` recovers
/// from a message that failed to decode, so that an error reply can be addressed.
public struct EnvelopeHeader: Sendable, Equatable {
    /// The version the sender speaks.
    public var protocolVersion: UInt32
    /// The sender's worker id.
    public var senderID: String
    /// φ version.
    public var phiVersion: UInt64
    /// λ̂ version.
    public var lambdaVersion: UInt64
    /// The sender's sequence number.
    public var sequence: UInt64

    /// Creates a header.
    public init(
        protocolVersion: UInt32, senderID: String, phiVersion: UInt64, lambdaVersion: UInt64,
        sequence: UInt64
    ) {
        self.protocolVersion = protocolVersion
        self.senderID = senderID
        self.phiVersion = phiVersion
        self.lambdaVersion = lambdaVersion
        self.sequence = sequence
    }
}
