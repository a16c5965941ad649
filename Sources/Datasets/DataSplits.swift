/// The three parts an experiment uses: training, validation (for the hyperparameter
/// objective) and test (reported only).
public struct DataSplits: Sendable {
    /// Examples the elementary network is trained on.
    public let train: LabeledImages
    /// Examples the hyperparameters are tuned on.
    public let valid: LabeledImages
    /// Held-out examples, for reporting only.
    public let test: LabeledImages

    /// Groups three parts.
    public init(train: LabeledImages, valid: LabeledImages, test: LabeledImages) {
        self.train = train
        self.valid = valid
        self.test = test
    }

    /// A 64-bit FNV-1a fingerprint of the three parts in order (train, valid, test), each
    /// hashed as described in ``LabeledImages/fingerprint``. A cluster compares it across
    /// hosts before training so that no worker uses other data.
    public var fingerprint: UInt64 {
        var hasher = FNV1a()
        train.hash(into: &hasher)
        valid.hash(into: &hasher)
        test.hash(into: &hasher)
        return hasher.value
    }
}
