import Foundation
@preconcurrency import Glibc
import Testing
@testable import Telemetry
import SystemIO

@Suite struct TensorBoardWriterTests {
    /// Splits a TFRecord file into payloads, checking both CRCs of every record.
    static func records(_ bytes: [UInt8]) throws -> [[UInt8]] {
        var out: [[UInt8]] = []
        var i = 0
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) } }
        while i < bytes.count {
            try #require(bytes.count - i >= TFRecord.overhead)
            let length = Int((0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[i + $1]) << (8 * $1) })
            let lengthCRC = bytes[i..<i + 8].withUnsafeBytes { CRC32C.checksum($0) }
            #expect(TFRecord.unmask(u32(i + 8)) == lengthCRC)
            try #require(bytes.count - i - TFRecord.overhead >= length)
            let payload = Array(bytes[i + 12..<i + 12 + length])
            #expect(TFRecord.unmask(u32(i + 12 + length)) == payload.withUnsafeBytes { CRC32C.checksum($0) })
            out.append(payload)
            i += length + TFRecord.overhead
        }
        return out
    }

    @Test("a new file named events.out.tfevents.<seconds>.<host>.<pid>: header, then one record per write")
    func writesRecords() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let logdir = directory.path + "/runs/tb"
        let writer = try TensorBoardWriter(directory: logdir, wallTime: 1_764_387_200.25)
        let name = SystemCall.lastComponent(of: writer.path)
        #expect(name.hasPrefix("events.out.tfevents.1764387200."))
        #expect(name.hasSuffix(".\(getpid())"))
        let values: [TensorBoardValue] = [.scalar(tag: "loss/train", value: 0.5)]
        try writer.write(step: 50, values: values, wallTime: 1_764_387_201)
        try writer.write(step: 60, values: [], wallTime: 1_764_387_202)  // nothing to write
        // Each write reaches the kernel at once: another reader sees both records before close.
        let beforeClose = try Self.records(SystemCall.readFile(writer.path))
        #expect(beforeClose == [
            TensorBoardEvent.header(wallTime: 1_764_387_200.25),
            TensorBoardEvent.summary(wallTime: 1_764_387_201, step: 50, values: values),
        ])
        try writer.close()
        try writer.close()
        #expect(!writer.isOpen)
        #expect(try FileManager.default.contentsOfDirectory(atPath: logdir) == [name])
    }

    @Test("a second writer in the same second gets its own file; a resumed one starts with SessionLog START")
    func secondWriterAndRestart() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let first = try TensorBoardWriter(directory: directory.path, wallTime: 100)
        let second = try TensorBoardWriter(directory: directory.path, restartStep: 201, wallTime: 100.5)
        try first.close()
        try second.close()
        #expect(second.path == first.path + ".1")
        #expect(try Self.records(SystemCall.readFile(second.path)) == [
            TensorBoardEvent.header(wallTime: 100.5), TensorBoardEvent.restart(wallTime: 100.5, step: 201),
        ])
    }

    @Test("an unwritable directory is an error at creation, naming the path")
    func unwritableDirectory() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let file = directory.path + "/not-a-directory"
        #expect(FileManager.default.createFile(atPath: file, contents: Data()))
        #expect {
            _ = try TensorBoardWriter(directory: file + "/tb")
        } throws: { error in
            guard let error = error as? TelemetryError else { return false }
            return error.operation == "mkdir" && error.subject == file && error.code == ENOTDIR
        }
        #expect {
            _ = try TensorBoardWriter(directory: file)
        } throws: { error in
            (error as? TelemetryError)?.code == ENOTDIR
        }
    }

    @Test("histograms: equal-width buckets from min to max, each value in the first bucket whose limit exceeds it")
    func histogram() throws {
        let values = [-3.5, -1.0, -1.0, 0.0, 2.0, .nan, .infinity]
        let h = try #require(TensorBoardHistogram(values: values, bucketCount: 11))
        #expect(h.min == -3.5 && h.max == 2 && h.count == 5)
        #expect(abs(h.sum - -3.5) < 1e-12 && abs(h.sumOfSquares - 18.25) < 1e-12)
        #expect(h.bucketLimits.count == 11 && h.bucketCounts.count == 11)
        #expect(abs(h.bucketLimits[0] - -3.0) < 1e-12 && abs(h.bucketLimits[9] - 1.5) < 1e-12)
        #expect(h.bucketLimits.last == .greatestFiniteMagnitude)
        #expect(zip(h.bucketLimits, h.bucketLimits.dropFirst()).allSatisfy { $0 < $1 })
        // Widths 0.5: −3.5 → bucket 0, −1 → bucket 5 (twice), 0 → 7, 2 → the last.
        #expect(h.bucketCounts == [1, 0, 0, 0, 0, 2, 0, 1, 0, 0, 1])

        let single = try #require(TensorBoardHistogram(values: [0.25, 0.25]))
        #expect(single.bucketLimits == [.greatestFiniteMagnitude] && single.bucketCounts == [2])
        let huge = try #require(TensorBoardHistogram(values: [-Double.greatestFiniteMagnitude, .greatestFiniteMagnitude]))
        #expect(huge.bucketCounts == [2])
        #expect(TensorBoardHistogram(values: [Double.nan, .infinity]) == nil)
        #expect(TensorBoardHistogram(values: [Double]()) == nil)
    }
}
