import Foundation
import Testing
import TestSupport

/// A fresh directory under the system temp folder, removed when the value goes away.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("datasets-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    func write(_ bytes: [UInt8], to name: String) throws -> String {
        let target = file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: target))
        return target
    }
}

/// Synthetic IDX files with MNIST's layout and roughly MNIST's sparsity.
enum IDXFixture {
    static let pixelsPerImage = 784

    /// Deterministic pseudo-random pixel bytes, about 20% non-zero (some 255s, some 1s).
    static func pixels(count n: Int, seed: UInt64 = 1) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0 ..< n * pixelsPerImage).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17    // xorshift64
            let r = state % 100
            return r < 80 ? 0 : (r < 85 ? 255 : UInt8(truncatingIfNeeded: state >> 24) | 1)
        }
    }

    static func labels(count n: Int, seed: UInt64 = 1) -> [UInt8] {
        (0 ..< n).map { UInt8((UInt64($0) &* 7 &+ seed) % 10) }
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)]
    }

    /// An images file: magic, `[n, rows, cols]`, pixels.
    static func imagesFile(_ pixels: [UInt8], n: Int, rows: Int = 28, cols: Int = 28, magic: UInt32 = 0x0803) -> [UInt8] {
        bigEndian(magic) + bigEndian(UInt32(n)) + bigEndian(UInt32(rows)) + bigEndian(UInt32(cols)) + pixels
    }

    /// A labels file: magic, `[n]`, labels.
    static func labelsFile(_ labels: [UInt8], magic: UInt32 = 0x0801) -> [UInt8] {
        bigEndian(magic) + bigEndian(UInt32(labels.count)) + labels
    }

    /// gzip-compresses `path` into `path.gz` with the system's gzip (an independent encoder).
    @discardableResult
    static func gzip(_ path: String, level: Int = 6) throws -> String {
        let target = path + ".gz"
        try #require(FileManager.default.createFile(atPath: target, contents: nil), "cannot create \(target)")
        let output = try #require(FileHandle(forWritingAtPath: target))
        defer { try? output.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/gzip")
        process.arguments = ["-c", "-n", "-\(level)", path]
        process.standardOutput = output
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "gzip failed on \(path)")
        return target
    }

    /// Writes a small MNIST-shaped data set into `directory` under the given naming.
    static func writeDataSet(
        into directory: TemporaryDirectory, nTrain: Int, nTest: Int, hyphenated: Bool, gzipped: Bool
    ) throws {
        let sep = hyphenated ? "-" : "."
        let files: [(String, [UInt8])] = [
            ("train-images\(sep)idx3-ubyte", imagesFile(pixels(count: nTrain, seed: 1), n: nTrain)),
            ("train-labels\(sep)idx1-ubyte", labelsFile(labels(count: nTrain, seed: 1))),
            ("t10k-images\(sep)idx3-ubyte", imagesFile(pixels(count: nTest, seed: 2), n: nTest)),
            ("t10k-labels\(sep)idx1-ubyte", labelsFile(labels(count: nTest, seed: 2))),
        ]
        for (name, bytes) in files {
            let path = try directory.write(bytes, to: name)
            if gzipped {
                try gzip(path)
                try FileManager.default.removeItem(atPath: path)
            }
        }
    }
}

/// 64-bit FNV-1a written independently of the module, as an oracle for fingerprints.
func referenceFNV1a(_ parts: [[UInt8]]) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for part in parts { for b in part { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 } }
    return h
}

func littleEndian(_ v: UInt64) -> [UInt8] { (0 ..< 8).map { UInt8((v >> (8 * UInt64($0))) & 0xff) } }
