import Datasets
import Foundation
import Testing

@Suite struct IDXReaderTests {
    @Test("images and labels round-trip through raw and gzip files", arguments: [false, true])
    func roundTrip(gzipped: Bool) throws {
        let dir = try TemporaryDirectory()
        let n = 37
        let pixels = IDXFixture.pixels(count: n)
        let labels = IDXFixture.labels(count: n)
        var imagesPath = try dir.write(IDXFixture.imagesFile(pixels, n: n), to: "images.idx3-ubyte")
        var labelsPath = try dir.write(IDXFixture.labelsFile(labels), to: "labels.idx1-ubyte")
        if gzipped {
            imagesPath = try IDXFixture.gzip(imagesPath)
            labelsPath = try IDXFixture.gzip(labelsPath)
        }

        let images = try IDXReader.readImages(path: imagesPath)
        #expect(images.rows == n)
        #expect(images.cols == 784)
        #expect(try IDXReader.readLabels(path: labelsPath) == labels)
        for r in 0 ..< n {
            let expected = pixels[r * 784 ..< (r + 1) * 784].map { Float($0) / 255 }
            #expect(images.dense(row: r) == expected, "row \(r)")
        }
        #expect(images.nonZeroCount == pixels.filter { $0 != 0 }.count)
    }

    @Test("parsing bytes in memory matches reading the file, gzip detected by magic bytes")
    func parseBytes() throws {
        let dir = try TemporaryDirectory()
        let pixels = IDXFixture.pixels(count: 5)
        let raw = IDXFixture.imagesFile(pixels, n: 5)
        // A gzip file without the .gz suffix is still recognised.
        let gz = try IDXFixture.gzip(try dir.write(raw, to: "images"))
        let gzBytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: gz)))
        try FileManager.default.moveItem(atPath: gz, toPath: dir.file("images-no-suffix"))

        let fromBytes = try IDXReader.parseImages(raw, name: "x")
        let fromGzBytes = try IDXReader.parseImages(gzBytes, name: "x.gz")
        let fromFile = try IDXReader.readImages(path: dir.file("images-no-suffix"))
        for images in [fromGzBytes, fromFile] {
            #expect(images.rowStart == fromBytes.rowStart)
            #expect(images.colIndex == fromBytes.colIndex)
            #expect(images.values == fromBytes.values)
        }
        #expect(try IDXReader.parseLabels(IDXFixture.labelsFile([0, 9, 3]), name: "l") == [0, 9, 3])
    }

    @Test("a gzip file of several concatenated members decompresses whole")
    func multiMemberGzip() throws {
        let dir = try TemporaryDirectory()
        let labels = IDXFixture.labels(count: 1000)
        let file = IDXFixture.labelsFile(labels)
        let a = try IDXFixture.gzip(try dir.write(Array(file[..<300]), to: "a"))
        let b = try IDXFixture.gzip(try dir.write(Array(file[300...]), to: "b"))
        let joined = try Data(contentsOf: URL(fileURLWithPath: a)) + Data(contentsOf: URL(fileURLWithPath: b))
        try joined.write(to: URL(fileURLWithPath: dir.file("labels.gz")))
        #expect(try IDXReader.readLabels(path: dir.file("labels.gz")) == labels)
    }

    @Test("a file with no images parses to an empty matrix")
    func empty() throws {
        let images = try IDXReader.parseImages(IDXFixture.imagesFile([], n: 0), name: "empty")
        #expect(images.rows == 0)
        #expect(images.rowStart == [0])
        #expect(try IDXReader.parseLabels(IDXFixture.labelsFile([]), name: "empty").isEmpty)
    }

    @Test("the truncation message gives both sizes, as documented")
    func truncationMessage() throws {
        var bytes = IDXFixture.imagesFile([], n: 60000)
        bytes += [UInt8](repeating: 0, count: 1000 - bytes.count)
        let error = try #require(throws: DatasetError.self) {
            try IDXReader.parseImages(bytes, name: "train-images.idx3-ubyte")
        }
        #expect(error.description == "train-images.idx3-ubyte: truncated: expected 47040016 bytes, found 1000")
        #expect(error == .truncated(file: "train-images.idx3-ubyte", expected: 47_040_016, found: 1000))
    }

    /// A corrupted file, the reader to use, and what the message must say.
    struct Corruption: Sendable, CustomTestStringConvertible {
        enum Kind: Sendable { case images, labels }
        let name: String
        let kind: Kind
        let bytes: @Sendable () -> [UInt8]
        let phrase: String
        var testDescription: String { name }
    }

    static let pixels3 = IDXFixture.pixels(count: 3)
    static let corruptions: [Corruption] = [
        .init(name: "images-labels-magic", kind: .images,
              bytes: { IDXFixture.imagesFile(pixels3, n: 3, magic: 0x0801) },
              phrase: "bad magic number 0x00000801, expected 0x00000803"),
        .init(name: "images-float-magic", kind: .images,
              bytes: { IDXFixture.imagesFile(pixels3, n: 3, magic: 0x0D03) }, phrase: "bad magic number"),
        .init(name: "images-27-cols", kind: .images,
              bytes: { IDXFixture.imagesFile(Array(pixels3[..<(3 * 28 * 27)]), n: 3, cols: 27) },
              phrase: "wrong dimensions: expected n×28×28, found 3×28×27"),
        .init(name: "images-truncated", kind: .images,
              bytes: { Array(IDXFixture.imagesFile(pixels3, n: 3).dropLast(5)) },
              phrase: "truncated: expected 2368 bytes, found 2363"),
        .init(name: "images-header-only", kind: .images,
              bytes: { Array(IDXFixture.imagesFile([], n: 3)[..<10]) }, phrase: "truncated: expected 16 bytes, found 10"),
        .init(name: "images-3-bytes", kind: .images, bytes: { [0, 0, 8] }, phrase: "truncated"),
        .init(name: "images-trailing", kind: .images,
              bytes: { IDXFixture.imagesFile(pixels3, n: 3) + [1, 2] },
              phrase: "trailing bytes: expected 2368 bytes, found 2370"),
        .init(name: "labels-images-magic", kind: .labels,
              bytes: { IDXFixture.labelsFile([1, 2], magic: 0x0803) },
              phrase: "bad magic number 0x00000803, expected 0x00000801"),
        .init(name: "labels-bad-value", kind: .labels,
              bytes: { IDXFixture.labelsFile([1, 2, 3, 10, 4]) }, phrase: "bad label 10 at index 3"),
        .init(name: "labels-truncated", kind: .labels,
              bytes: { Array(IDXFixture.labelsFile([1, 2, 3]).dropLast()) }, phrase: "truncated: expected 11 bytes, found 10"),
        .init(name: "labels-trailing", kind: .labels,
              bytes: { IDXFixture.labelsFile([1, 2, 3]) + [0] }, phrase: "trailing bytes"),
        .init(name: "labels-empty-file", kind: .labels, bytes: { [] }, phrase: "truncated: expected 8 bytes, found 0"),
    ]

    @Test("each corruption of a raw file yields an error naming the file", arguments: corruptions)
    func corruptRaw(_ c: Corruption) throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write(c.bytes(), to: c.name)
        let error = try #require(throws: DatasetError.self) { try Self.read(c.kind, path) }
        #expect(error.description.hasPrefix(c.name + ": "), "\(error)")
        #expect(error.description.contains(c.phrase), "\(error)")
    }

    @Test("the same corruptions inside a gzip file name the .gz file", arguments: corruptions)
    func corruptInsideGzip(_ c: Corruption) throws {
        let dir = try TemporaryDirectory()
        let gz = try IDXFixture.gzip(try dir.write(c.bytes(), to: c.name))
        let error = try #require(throws: DatasetError.self) { try Self.read(c.kind, gz) }
        #expect(error.description.hasPrefix(c.name + ".gz: "), "\(error)")
        #expect(error.description.contains(c.phrase), "\(error)")
    }

    @Test("a damaged gzip stream is reported as corrupt gzip data", arguments: ["truncated", "flipped", "garbage-after"])
    func corruptGzip(damage: String) throws {
        let dir = try TemporaryDirectory()
        let file = IDXFixture.labelsFile(IDXFixture.labels(count: 5000))
        let gz = try IDXFixture.gzip(try dir.write(file, to: "labels-\(damage)"))
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: gz)))
        switch damage {
        case "truncated": bytes.removeLast(bytes.count / 2)
        case "flipped": for i in 20 ..< 40 { bytes[i] ^= 0x5a }
        default: bytes += [1, 2, 3, 4]
        }
        _ = try dir.write(bytes, to: "labels-\(damage).gz")
        let error = try #require(throws: DatasetError.self) { try IDXReader.readLabels(path: gz) }
        #expect(error.description.hasPrefix("labels-\(damage).gz: corrupt gzip data: "), "\(error)")
    }

    @Test("a missing file is an error giving its full path")
    func missingFile() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("nope.idx3-ubyte")
        let error = try #require(throws: DatasetError.self) { try IDXReader.readImages(path: path) }
        #expect(error == .fileNotFound(path: path))
        #expect(error.description == "\(path): no such file")
        let dirError = try #require(throws: DatasetError.self) { try IDXReader.readLabels(path: dir.path) }
        #expect(dirError.description.contains(dir.path))
    }

    private static func read(_ kind: Corruption.Kind, _ path: String) throws(DatasetError) {
        switch kind {
        case .images: _ = try IDXReader.readImages(path: path)
        case .labels: _ = try IDXReader.readLabels(path: path)
        }
    }
}
