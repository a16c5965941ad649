import Datasets
import Linalg
import Models

/// The three splits a run computes on, in the model's sparse format.
public struct ExperimentData: Sendable {
    /// Training examples.
    public let train: Examples<Float>
    /// Validation examples.
    public let valid: Examples<Float>
    /// Test examples (may be empty).
    public let test: Examples<Float>
    /// Content fingerprint of the splits (peers in a cluster compare it).
    public let fingerprint: UInt64

    /// Wraps already-built examples.
    public init(train: Examples<Float>, valid: Examples<Float>, test: Examples<Float>, fingerprint: UInt64 = 0) {
        self.train = train
        self.valid = valid
        self.test = test
        self.fingerprint = fingerprint
    }

    /// Converts MNIST splits.
    public init(splits: DataSplits) {
        self.init(train: Self.examples(splits.train), valid: Self.examples(splits.valid),
                  test: Self.examples(splits.test), fingerprint: splits.fingerprint)
    }

    /// Loads MNIST from `directory` and takes the splits of `config`.
    public static func load(directory: String, config: ExperimentConfig) throws -> ExperimentData {
        let mnist = try MNIST.load(directory: directory)
        return ExperimentData(splits: try mnist.splits(nTrain: config.nTrain, nValid: config.nValid, nTest: config.nTest))
    }

    private static func examples(_ s: LabeledImages) -> Examples<Float> {
        Examples(inputSize: s.images.cols, rowStart: s.images.rowStart, colIndex: s.images.colIndex,
                 values: s.images.values, labels: s.labels)
    }
}
