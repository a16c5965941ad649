// The body types of `Message.Body`, one small value type per proto message. Field meanings
// are documented in proto/hypertrain.proto and docs/protocol.md; tensors that travel as
// extra frames are ordinary array fields here.

/// What a registering peer does.
public enum Role: UInt32, Sendable, Equatable, CaseIterable {
    /// Computes ∂L_train/∂φ: TrainTask → Gradient.
    case trainer = 0
    /// Computes ∂L_valid/∂λ̂: ValidTask → Hypergradient.
    case validator = 1
    /// Trains a model from scratch at a given λ (baselines): TrialTask → TrialResult.
    case trialWorker = 2
}

/// Worker → coordinator: register, or re-register after hearing nothing.
public struct Hello: Sendable, Equatable {
    /// The role the worker wants.
    public var role: Role
    /// The worker's host name (informational).
    public var hostname: String
    /// The worker's process id (informational).
    public var pid: UInt32
    /// The worker's software version (informational).
    public var softwareVersion: String
    /// The id from a previous `Welcome` when re-registering, "" on first contact.
    public var previousWorkerID: String
    /// A worker that can take weight tasks: a validator `ValidTask.weights` instead of φ, a
    /// trainer `TrainTask.weights` and `TrainTask.lambda` instead of φ (both answer `gradW`).
    public var acceptsWeightTasks: Bool
    /// An external model's layout as the worker has it (nil: none sent).
    public var model: ModelSpec?

    /// Creates a Hello.
    public init(
        role: Role, hostname: String = "", pid: UInt32 = 0, softwareVersion: String = "",
        previousWorkerID: String = "", acceptsWeightTasks: Bool = false, model: ModelSpec? = nil
    ) {
        self.model = model
        self.role = role
        self.hostname = hostname
        self.pid = pid
        self.softwareVersion = softwareVersion
        self.previousWorkerID = previousWorkerID
        self.acceptsWeightTasks = acceptsWeightTasks
    }
}

/// Coordinator → worker: registration accepted.
public struct Welcome: Sendable, Equatable {
    /// The id the worker uses as `Message.senderID` from now on.
    public var workerID: String
    /// Everything the worker needs to compute tasks.
    public var spec: ExperimentSpec
    /// Both sides send a heartbeat when they have sent nothing else for this long.
    public var heartbeatIntervalMs: UInt32
    /// A peer is dead after this many intervals of silence.
    public var heartbeatLiveness: UInt32

    /// Creates a Welcome.
    public init(
        workerID: String, spec: ExperimentSpec, heartbeatIntervalMs: UInt32,
        heartbeatLiveness: UInt32
    ) {
        self.workerID = workerID
        self.spec = spec
        self.heartbeatIntervalMs = heartbeatIntervalMs
        self.heartbeatLiveness = heartbeatLiveness
    }
}

/// Coordinator → trainer: compute the φ gradient of task `taskIndex` of step `step`.
public struct TrainTask: Sendable, Equatable {
    /// The optimisation step t.
    public var step: UInt64
    /// The task index k within the step, `0 ..< tasksPerStep`.
    public var taskIndex: UInt32
    /// Echoed in the `Gradient`.
    public var leaseID: UInt64
    /// How many tasks the step is split into.
    public var tasksPerStep: UInt32
    /// Hypernetwork parameters φ (tensor "phi", float32); empty in a weight task.
    public var phi: [Float]
    /// Current hyperparameters λ̂ (tensor "lambda_hat", float32); empty in a weight task.
    public var lambdaHat: [Float]
    /// The trainer may reply with `Gradient.gradW` (∂L/∂w) instead of `gradPhi`: the
    /// coordinator still holds this φ and runs the hypernetwork's backward pass itself.
    public var acceptsWeightGradient: Bool
    /// A weight task (to a trainer whose Hello accepts them, sync mode): the elementary weights
    /// w = φ(λ) of the task's λ sample (tensor "w", float32, D), computed by the coordinator,
    /// instead of φ; empty otherwise. The answer carries `Gradient.gradW`.
    public var weights: [Float]
    /// With `weights`: the task's λ sample (tensor "lambda", float32, H) — what (seed, step,
    /// task) gives at λ̂ — for the regularizer; empty otherwise.
    public var lambda: [Float]

    /// Creates a TrainTask.
    public init(
        step: UInt64, taskIndex: UInt32, leaseID: UInt64, tasksPerStep: UInt32 = 1,
        phi: [Float], lambdaHat: [Float], acceptsWeightGradient: Bool = false,
        weights: [Float] = [], lambda: [Float] = []
    ) {
        self.step = step
        self.taskIndex = taskIndex
        self.leaseID = leaseID
        self.tasksPerStep = tasksPerStep
        self.phi = phi
        self.lambdaHat = lambdaHat
        self.acceptsWeightGradient = acceptsWeightGradient
        self.weights = weights
        self.lambda = lambda
    }
}

/// Coordinator → validator: compute the hypergradient at λ̂ for step `step`.
public struct ValidTask: Sendable, Equatable {
    /// The optimisation step t.
    public var step: UInt64
    /// Echoed in the `Hypergradient`.
    public var leaseID: UInt64
    /// Hypernetwork parameters φ (tensor "phi", float32).
    public var phi: [Float]
    /// Current hyperparameters λ̂ (tensor "lambda_hat", float32).
    public var lambdaHat: [Float]
    /// The elementary weights φ(λ̂) (tensor "w", float32, D), sent instead of φ to a validator
    /// that accepts weight tasks; empty otherwise. The answer then carries `gradW`.
    public var weights: [Float]

    /// Creates a ValidTask.
    public init(step: UInt64, leaseID: UInt64, phi: [Float], lambdaHat: [Float], weights: [Float] = []) {
        self.step = step
        self.leaseID = leaseID
        self.phi = phi
        self.lambdaHat = lambdaHat
        self.weights = weights
    }
}

/// Trainer → coordinator: ∂L_train/∂φ for one task.
public struct Gradient: Sendable, Equatable {
    /// The step of the task.
    public var step: UInt64
    /// The task index of the task.
    public var taskIndex: UInt32
    /// The lease of the task.
    public var leaseID: UInt64
    /// Mean training loss over the task's samples and minibatch.
    public var trainLoss: Double
    /// ∂L_train/∂φ (tensor "grad_phi", float32, length of φ); empty when `gradW` is sent.
    public var gradPhi: [Float]
    /// ∂L_train/∂w at w = φ(λ) (tensor "grad_w", float32, D), sent instead of `gradPhi` when
    /// the task accepted it; empty otherwise.
    public var gradW: [Float]
    /// The λ samples used, samples × H, sample-major (tensor "lambda", float32).
    public var lambdas: [Float]
    /// The training-example indices used, in order (tensor "indices", int32).
    public var indices: [Int32]

    /// Creates a Gradient.
    public init(
        step: UInt64, taskIndex: UInt32, leaseID: UInt64, trainLoss: Double, gradPhi: [Float],
        gradW: [Float] = [], lambdas: [Float], indices: [Int32]
    ) {
        self.step = step
        self.taskIndex = taskIndex
        self.leaseID = leaseID
        self.trainLoss = trainLoss
        self.gradPhi = gradPhi
        self.gradW = gradW
        self.lambdas = lambdas
        self.indices = indices
    }
}

/// Validator → coordinator: ∂L_valid(φ(λ̂))/∂λ̂.
public struct Hypergradient: Sendable, Equatable {
    /// The step of the task.
    public var step: UInt64
    /// The lease of the task.
    public var leaseID: UInt64
    /// Validation loss at λ̂.
    public var validLoss: Double
    /// ∂L_valid/∂λ̂ (tensor "grad_lambda", float32, H); empty when `gradW` is sent.
    public var gradLambda: [Float]
    /// ∂L_valid/∂w at the task's `weights` (tensor "grad_w", float32, D), the answer to a
    /// weight task; empty otherwise.
    public var gradW: [Float]

    /// Creates a Hypergradient.
    public init(step: UInt64, leaseID: UInt64, validLoss: Double, gradLambda: [Float], gradW: [Float] = []) {
        self.step = step
        self.leaseID = leaseID
        self.validLoss = validLoss
        self.gradLambda = gradLambda
        self.gradW = gradW
    }
}

/// Sent by either side when it has sent nothing else for a heartbeat interval.
public struct Heartbeat: Sendable, Equatable {
    /// The sender's wall clock in ms since 1970 (informational only).
    public var unixMs: UInt64

    /// Creates a Heartbeat.
    public init(unixMs: UInt64) { self.unixMs = unixMs }
}

/// Why a message was refused; travels as the proto `ErrorCode`.
public enum ErrorCode: UInt32, Sendable, Equatable, CaseIterable {
    /// Anything else (also: a code this build does not know).
    case unknown = 0
    /// The envelope could not be parsed, or had no body.
    case malformed = 1
    /// `protocolVersion` differs.
    case versionMismatch = 2
    /// The sender is not registered (or was declared dead): send Hello.
    case notRegistered = 3
    /// Tensor frames do not match their description or the experiment spec.
    case badTensor = 4
    /// NaN or Inf in a gradient or loss.
    case nonFinite = 5
    /// Computed from too old a φ/λ̂, or the lease expired.
    case stale = 6
    /// `(senderID, sequence)` was already processed.
    case duplicate = 7
    /// The sender may not do this.
    case unauthorized = 8
    /// The coordinator is shutting down.
    case shuttingDown = 9
    /// A valid message that is wrong for the sender's role or state.
    case unexpected = 10
}

/// The `Error` body (named `ErrorReply` so it does not shadow `Swift.Error`).
public struct ErrorReply: Sendable, Equatable {
    /// What went wrong.
    public var code: ErrorCode
    /// Human-readable detail; never payload data.
    public var message: String
    /// The sequence of the refused message, when it could be parsed (0 otherwise).
    public var inReplyTo: UInt64

    /// Creates an error reply.
    public init(code: ErrorCode, message: String, inReplyTo: UInt64 = 0) {
        self.code = code
        self.message = message
        self.inReplyTo = inReplyTo
    }
}

/// Coordinator → worker: stop working and exit.
public struct Shutdown: Sendable, Equatable {
    /// Why (for the worker's log).
    public var reason: String

    /// Creates a Shutdown.
    public init(reason: String) { self.reason = reason }
}

/// Coordinator → whoever sent `statusRequest`.
public struct Status: Sendable, Equatable {
    /// The current step.
    public var step: UInt64
    /// Steps the run will take.
    public var stepsTotal: UInt64
    /// Live trainers.
    public var trainers: UInt32
    /// Live validators.
    public var validators: UInt32
    /// Free-form details (losses, λ̂ summary, rates) as JSON.
    public var json: String

    /// Creates a Status.
    public init(step: UInt64, stepsTotal: UInt64, trainers: UInt32, validators: UInt32, json: String = "") {
        self.step = step
        self.stepsTotal = stepsTotal
        self.trainers = trainers
        self.validators = validators
        self.json = json
    }
}

/// Coordinator → worker: the result with `sequence` was accepted.
public struct Ack: Sendable, Equatable {
    /// The acknowledged message's sequence.
    public var sequence: UInt64

    /// Creates an Ack.
    public init(sequence: UInt64) { self.sequence = sequence }
}

/// Coordinator → worker: no task now.
public struct Idle: Sendable, Equatable {
    /// Ask again (WorkRequest) after this long.
    public var retryAfterMs: UInt32

    /// Creates an Idle.
    public init(retryAfterMs: UInt32) { self.retryAfterMs = retryAfterMs }
}

/// Coordinator → trial worker: train a model from scratch at `lambda` (baselines).
public struct TrialTask: Sendable, Equatable {
    /// The trial's id (as recorded by the coordinator).
    public var trialID: UInt64
    /// Echoed in the `TrialResult`.
    public var leaseID: UInt64
    /// Optimizer steps to train for.
    public var steps: UInt64
    /// The hyperparameters (tensor "lambda", float32, H).
    public var lambda: [Float]

    /// Creates a TrialTask.
    public init(trialID: UInt64, leaseID: UInt64, steps: UInt64, lambda: [Float]) {
        self.trialID = trialID
        self.leaseID = leaseID
        self.steps = steps
        self.lambda = lambda
    }
}

/// Trial worker → coordinator.
public struct TrialResult: Sendable, Equatable {
    /// The trial's id.
    public var trialID: UInt64
    /// The lease of the task.
    public var leaseID: UInt64
    /// Final training loss.
    public var trainLoss: Double
    /// Validation loss of the trained model.
    public var validLoss: Double
    /// Test loss of the trained model.
    public var testLoss: Double

    /// Creates a TrialResult.
    public init(trialID: UInt64, leaseID: UInt64, trainLoss: Double, validLoss: Double, testLoss: Double) {
        self.trialID = trialID
        self.leaseID = leaseID
        self.trainLoss = trainLoss
        self.validLoss = validLoss
        self.testLoss = testLoss
    }
}
