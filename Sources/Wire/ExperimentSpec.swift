/// Everything a worker needs to compute tasks, sent in `Welcome` so a worker needs only the
/// coordinator's address. Mirrors `hypertrain.v1.ExperimentSpec`; the widths are the wire's.
public struct ExperimentSpec: Sendable, Equatable {
    /// Elementary MLP layer sizes, e.g. `[784, 10]`.
    public var layerSizes: [UInt32]
    /// Regularization scope: "global" | "per-class" | "per-layer" | "per-weight".
    public var scope: String
    /// "squared" | "unsquared".
    public var norm: String
    /// "mse" | "gaussian".
    public var loss: String
    /// "linear" | "mlp:K" | "factorized:K".
    public var hypernet: String
    /// Training examples.
    public var nTrain: UInt32
    /// Validation examples.
    public var nValid: UInt32
    /// Test examples.
    public var nTest: UInt32
    /// Training minibatch size.
    public var batchSize: UInt32
    /// Validation minibatch size.
    public var validBatchSize: UInt32
    /// λ samples S per φ step (over all tasks of the step).
    public var samplesPerStep: UInt32
    /// λ ~ N(λ̂, σ²I).
    public var sigma: Double
    /// The run seed.
    public var seed: UInt64
    /// The algorithm ("joint", …).
    public var algorithm: String
    /// Total steps.
    public var steps: UInt64
    /// Fingerprint of the data files; workers refuse to run on different data.
    public var dataFingerprint: UInt64
    /// H, the length of λ̂.
    public var numHyperparameters: UInt32
    /// The length of φ.
    public var numPhiParams: UInt64
    /// The full resolved configuration as JSON (for Swift peers).
    public var configJSON: String
    /// An external model's layout and scope (nil: the built-in MLP).
    public var model: ModelSpec?

    /// Creates a spec; every field defaults to the proto3 default (0 / "" / []).
    public init(
        layerSizes: [UInt32] = [],
        scope: String = "",
        norm: String = "",
        loss: String = "",
        hypernet: String = "",
        nTrain: UInt32 = 0,
        nValid: UInt32 = 0,
        nTest: UInt32 = 0,
        batchSize: UInt32 = 0,
        validBatchSize: UInt32 = 0,
        samplesPerStep: UInt32 = 0,
        sigma: Double = 0,
        seed: UInt64 = 0,
        algorithm: String = "",
        steps: UInt64 = 0,
        dataFingerprint: UInt64 = 0,
        numHyperparameters: UInt32 = 0,
        numPhiParams: UInt64 = 0,
        configJSON: String = "",
        model: ModelSpec? = nil
    ) {
        self.model = model
        self.layerSizes = layerSizes
        self.scope = scope
        self.norm = norm
        self.loss = loss
        self.hypernet = hypernet
        self.nTrain = nTrain
        self.nValid = nValid
        self.nTest = nTest
        self.batchSize = batchSize
        self.validBatchSize = validBatchSize
        self.samplesPerStep = samplesPerStep
        self.sigma = sigma
        self.seed = seed
        self.algorithm = algorithm
        self.steps = steps
        self.dataFingerprint = dataFingerprint
        self.numHyperparameters = numHyperparameters
        self.numPhiParams = numPhiParams
        self.configJSON = configJSON
    }
}
