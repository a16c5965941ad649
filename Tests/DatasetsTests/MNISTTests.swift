import Datasets
import Foundation
import Testing

@Suite struct MNISTTests {
    static let nTrain = 50, nTest = 20

    @Test("loads a directory under either naming, raw or gzipped, to the same data",
          arguments: [(false, false), (true, false), (false, true), (true, true)])
    func namings(hyphenated: Bool, gzipped: Bool) throws {
        let dir = try TemporaryDirectory()
        try IDXFixture.writeDataSet(into: dir, nTrain: Self.nTrain, nTest: Self.nTest, hyphenated: hyphenated, gzipped: gzipped)
        let mnist = try MNIST.load(directory: dir.path)
        #expect(mnist.train.count == Self.nTrain)
        #expect(mnist.test.count == Self.nTest)
        #expect(mnist.train.labels == IDXFixture.labels(count: Self.nTrain, seed: 1))
        #expect(mnist.test.labels == IDXFixture.labels(count: Self.nTest, seed: 2))
        let expected = referenceFNV1a([
            littleEndian(UInt64(Self.nTrain)), littleEndian(784),
            IDXFixture.labels(count: Self.nTrain, seed: 1), IDXFixture.pixels(count: Self.nTrain, seed: 1),
            littleEndian(UInt64(Self.nTest)), littleEndian(784),
            IDXFixture.labels(count: Self.nTest, seed: 2), IDXFixture.pixels(count: Self.nTest, seed: 2),
        ])
        #expect(mnist.fingerprint == expected)
    }

    @Test("splits take the first nTrain, then the next nValid training images, and the first nTest test images")
    func splitOrder() throws {
        let dir = try TemporaryDirectory()
        try IDXFixture.writeDataSet(into: dir, nTrain: Self.nTrain, nTest: Self.nTest, hyphenated: false, gzipped: false)
        let mnist = try MNIST.load(directory: dir.path)
        let s = try mnist.splits(nTrain: 30, nValid: 15, nTest: 10)
        #expect(s.train.count == 30 && s.valid.count == 15 && s.test.count == 10)
        #expect(s.train.labels == Array(mnist.train.labels[0 ..< 30]))
        #expect(s.valid.labels == Array(mnist.train.labels[30 ..< 45]))
        #expect(s.test.labels == Array(mnist.test.labels[0 ..< 10]))
        #expect(s.valid.dense(row: 0) == mnist.train.dense(row: 30))
        #expect(s.valid.dense(row: 14) == mnist.train.dense(row: 44))
        #expect(s.test.dense(row: 9) == mnist.test.dense(row: 9))

        // The whole set is a valid split too; an empty validation set is allowed.
        let all = try mnist.splits(nTrain: Self.nTrain, nValid: 0, nTest: Self.nTest)
        #expect(all.train.count == Self.nTrain && all.valid.count == 0 && all.test.count == Self.nTest)

        // Same split, same fingerprint; a different split, a different one.
        #expect(try mnist.splits(nTrain: 30, nValid: 15, nTest: 10).fingerprint == s.fingerprint)
        #expect(try mnist.splits(nTrain: 31, nValid: 14, nTest: 10).fingerprint != s.fingerprint)
        let expected = referenceFNV1a([
            littleEndian(30), littleEndian(784), s.train.labels, Array(IDXFixture.pixels(count: 30, seed: 1)),
            littleEndian(15), littleEndian(784), s.valid.labels, Array(IDXFixture.pixels(count: 45, seed: 1)[(30 * 784)...]),
            littleEndian(10), littleEndian(784), s.test.labels, Array(IDXFixture.pixels(count: 10, seed: 2)),
        ])
        #expect(s.fingerprint == expected)
    }

    @Test("split sizes the data cannot satisfy are rejected with a clear message",
          arguments: [(0, 0, 0, "need at least 1"), (30, 21, 0, "exceeds the 50 training images"),
                      (1, 0, 21, "exceeds the 20 test images"), (1, -1, 0, "negative"), (1, 0, -1, "negative")])
    func invalidSplits(nTrain: Int, nValid: Int, nTest: Int, phrase: String) throws {
        let dir = try TemporaryDirectory()
        try IDXFixture.writeDataSet(into: dir, nTrain: Self.nTrain, nTest: Self.nTest, hyphenated: false, gzipped: false)
        let mnist = try MNIST.load(directory: dir.path)
        let error = try #require(throws: DatasetError.self) {
            try mnist.splits(nTrain: nTrain, nValid: nValid, nTest: nTest)
        }
        #expect(error.description.hasPrefix("invalid split: "))
        #expect(error.description.contains(phrase), "\(error)")
    }

    @Test("a directory lacking a file names the directory and the names tried")
    func missingFile() throws {
        let dir = try TemporaryDirectory()
        try IDXFixture.writeDataSet(into: dir, nTrain: 5, nTest: 5, hyphenated: true, gzipped: false)
        try FileManager.default.removeItem(atPath: dir.file("t10k-labels-idx1-ubyte"))
        let error = try #require(throws: DatasetError.self) { try MNIST.load(directory: dir.path) }
        #expect(error.description.hasPrefix("\(dir.path): missing file"))
        #expect(error.description.contains("t10k-labels.idx1-ubyte"))
        #expect(error.description.contains("t10k-labels-idx1-ubyte.gz"))
    }

    @Test("images and labels of different counts are rejected, naming both files")
    func countMismatch() throws {
        let dir = try TemporaryDirectory()
        try IDXFixture.writeDataSet(into: dir, nTrain: 5, nTest: 5, hyphenated: false, gzipped: false)
        _ = try dir.write(IDXFixture.labelsFile([1, 2, 3]), to: "train-labels.idx1-ubyte")
        let error = try #require(throws: DatasetError.self) { try MNIST.load(directory: dir.path) }
        #expect(error.description == "train-images.idx3-ubyte: 5 images but train-labels.idx1-ubyte has 3 labels")
    }

    @Test("a corrupt file inside the directory is named in the error")
    func corruptFile() throws {
        let dir = try TemporaryDirectory()
        try IDXFixture.writeDataSet(into: dir, nTrain: 5, nTest: 5, hyphenated: false, gzipped: true)
        _ = try dir.write(IDXFixture.labelsFile([1, 2, 3, 4, 11]), to: "t10k-labels.idx1-ubyte.gz")
        let error = try #require(throws: DatasetError.self) { try MNIST.load(directory: dir.path) }
        #expect(error.description == "t10k-labels.idx1-ubyte.gz: bad label 11 at index 4, expected 0…9")
    }
}
