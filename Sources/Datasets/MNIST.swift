import Foundation

/// The MNIST digits: 60,000 training and 10,000 test images of 28×28 pixels.
///
/// ``load(directory:)`` accepts the files under their original names
/// (`train-images-idx3-ubyte`) or the dotted names of the PyPI sdist
/// (`train-images.idx3-ubyte`), each raw or gzip-compressed (`.gz`). Any IDX data set of
/// 28×28 `uint8` images with labels `0…9` under those names loads too (Fashion-MNIST).
public struct MNIST: Sendable {
    /// The official training set, in file order.
    public let train: LabeledImages
    /// The official test set, in file order.
    public let test: LabeledImages

    /// Wraps already-loaded parts.
    public init(train: LabeledImages, test: LabeledImages) {
        self.train = train
        self.test = test
    }

    /// Loads the four IDX files from `directory`.
    /// - Throws: ``DatasetError`` naming the missing or malformed file.
    public static func load(directory: String) throws(DatasetError) -> MNIST {
        MNIST(
            train: try loadPart(directory: directory, images: .trainImages, labels: .trainLabels),
            test: try loadPart(directory: directory, images: .testImages, labels: .testLabels))
    }

    /// Checks that the four IDX files are in `directory` (without reading them).
    /// - Throws: ``DatasetError`` naming the first missing file.
    public static func requireFiles(in directory: String) throws(DatasetError) {
        for file in [MNISTFile.trainImages, .trainLabels, .testImages, .testLabels] { _ = try file.locate(in: directory) }
    }

    private static func loadPart(directory: String, images: MNISTFile, labels: MNISTFile) throws(DatasetError) -> LabeledImages {
        let imagesPath = try images.locate(in: directory)
        let labelsPath = try labels.locate(in: directory)
        let x = try IDXReader.readImages(path: imagesPath)
        let y = try IDXReader.readLabels(path: labelsPath)
        guard x.rows == y.count else {
            throw .countMismatch(
                images: (imagesPath as NSString).lastPathComponent, imageCount: x.rows,
                labels: (labelsPath as NSString).lastPathComponent, labelCount: y.count)
        }
        return LabeledImages(images: x, labels: y)
    }

    /// The authors' split: `train` = the first `nTrain` training images, `valid` = the next
    /// `nValid` training images, `test` = the first `nTest` official test images.
    /// - Throws: ``DatasetError/invalidSplit(_:)`` unless `nTrain ≥ 1`, `nValid ≥ 0`,
    ///   `nTest ≥ 0`, `nTrain + nValid ≤ train.count` (60,000) and `nTest ≤ test.count` (10,000).
    public func splits(nTrain: Int, nValid: Int, nTest: Int) throws(DatasetError) -> DataSplits {
        guard nTrain >= 1 else { throw .invalidSplit("nTrain = \(nTrain), need at least 1 training image") }
        guard nValid >= 0 else { throw .invalidSplit("nValid = \(nValid) is negative") }
        guard nTest >= 0 else { throw .invalidSplit("nTest = \(nTest) is negative") }
        guard nTrain <= train.count - nValid else {
            throw .invalidSplit("nTrain + nValid = \(nTrain) + \(nValid) exceeds the \(train.count) training images")
        }
        guard nTest <= test.count else {
            throw .invalidSplit("nTest = \(nTest) exceeds the \(test.count) test images")
        }
        return DataSplits(
            train: train.slice(0 ..< nTrain),
            valid: train.slice(nTrain ..< nTrain + nValid),
            test: test.slice(0 ..< nTest))
    }

    /// A 64-bit FNV-1a fingerprint of the training then the test set, each hashed as in
    /// ``LabeledImages/fingerprint``.
    public var fingerprint: UInt64 {
        var hasher = FNV1a()
        train.hash(into: &hasher)
        test.hash(into: &hasher)
        return hasher.value
    }
}
