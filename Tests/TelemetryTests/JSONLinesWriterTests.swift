import Foundation
import Testing
import Telemetry

/// A metrics line as the tests read it back.
private struct Line: Decodable, Equatable {
    var step: Int
    var train_loss: Double?
    var note: String?
    var task: Int?
    var pad: String?
}

@Suite struct JSONLinesWriterTests {
    @Test("Each record is a complete line on disk as soon as write returns")
    func flushPerLine() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.path + "/runs/mnist/metrics.jsonl"
        let writer = try JSONLinesWriter(path: path)
        defer { try? writer.close() }

        try writer.write(JSONRecord([("step", 1), ("train_loss", 2.5)]))
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"step\":1,\"train_loss\":2.5}\n")

        try writer.write(JSONRecord([("step", 2), ("train_loss", Double.nan), ("note", "a\nb")]))
        let text = try String(contentsOfFile: path, encoding: .utf8)
        // Keys are sorted by JSONEncoder; a NaN loss is null.
        #expect(text == "{\"step\":1,\"train_loss\":2.5}\n{\"note\":\"a\\nb\",\"step\":2,\"train_loss\":null}\n")

        let records = try JSONLinesReader.read(Line.self, path: path)
        #expect(records == [Line(step: 1, train_loss: 2.5), Line(step: 2, train_loss: nil, note: "a\nb")])
        #expect(writer.isOpen)
        try writer.close()
        #expect(!writer.isOpen)
        try writer.close()  // idempotent
    }

    @Test("Append mode keeps the earlier lines; the default truncates")
    func appendMode() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.path + "/metrics.jsonl"
        for (append, step) in [(false, 1), (true, 2)] {
            let writer = try JSONLinesWriter(path: path, append: append)
            try writer.write(JSONRecord([("step", step)]))
            try writer.close()
        }
        #expect(try JSONLinesReader.read(Line.self, path: path).map(\.step) == [1, 2])

        let truncating = try JSONLinesWriter(path: path)
        try truncating.write(JSONRecord([("step", 3)]))
        try truncating.close()
        #expect(try JSONLinesReader.read(Line.self, path: path).map(\.step) == [3])
    }

    @Test("Concurrent writers never interleave within a line")
    func concurrentWrites() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let writer = try JSONLinesWriter(path: directory.path + "/metrics.jsonl")
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<4 {
                group.addTask {
                    for step in 0..<250 {
                        try? writer.write(JSONRecord([("task", task), ("step", step), ("pad", String(repeating: "x", count: 200))]))
                    }
                }
            }
        }
        try writer.close()
        let records = try JSONLinesReader.read(Line.self, path: writer.path)
        #expect(records.count == 1000)
        #expect(records.allSatisfy { $0.pad?.count == 200 })
        #expect(Set(records.map { "\($0.task!)/\($0.step)" }).count == 1000)
    }

    @Test("Opening a path under a regular file fails with a TelemetryError")
    func openFailure() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let file = directory.path + "/file"
        try Data().write(to: URL(fileURLWithPath: file))
        let error = try #require(throws: TelemetryError.self) { try JSONLinesWriter(path: file + "/metrics.jsonl") }
        #expect(error.code == ENOTDIR)
    }
}

@Suite struct JSONLinesReaderTests {
    private struct Step: Decodable, Equatable { var step: Int }

    @Test("A torn final line from an interrupted write is ignored; blank lines are skipped")
    func tornLastLine() throws {
        let bytes = Array("{\"step\":1}\n\n{\"step\":2}\n{\"step\":".utf8)
        #expect(try JSONLinesReader.parse(Step.self, bytes) == [Step(step: 1), Step(step: 2)])
        #expect(try JSONLinesReader.parse(Step.self, Array("{\"step\":1}".utf8)) == [Step(step: 1)])
    }

    @Test("A malformed complete line is an error naming the line")
    func malformedLine() throws {
        let bytes = Array("{\"step\":1}\n{\"step\" 2}\n{\"step\":3}\n".utf8)
        let error = try #require(throws: JSONLinesError.self) { try JSONLinesReader.parse(Step.self, bytes) }
        #expect(error.line == 2)
        #expect(error.description.hasPrefix("line 2: "))
    }

    @Test("A missing file is a TelemetryError with ENOENT")
    func missingFile() {
        #expect(throws: TelemetryError(operation: "open", subject: "/nonexistent/metrics.jsonl", code: ENOENT)) {
            try JSONLinesReader.read(Step.self, path: "/nonexistent/metrics.jsonl")
        }
    }
}
