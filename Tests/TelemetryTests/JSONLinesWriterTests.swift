import Foundation
import Testing
import Telemetry

@Suite struct JSONLinesWriterTests {
    @Test("Each record is a complete line on disk as soon as write returns")
    func flushPerLine() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.path + "/runs/mnist/metrics.jsonl"
        let writer = try JSONLinesWriter(path: path)
        defer { try? writer.close() }

        try writer.write(["step": 1, "train_loss": 2.5])
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"step\":1,\"train_loss\":2.5}\n")

        try writer.write(["step": 2, "train_loss": .double(.nan), "note": "a\nb"])
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text == "{\"step\":1,\"train_loss\":2.5}\n{\"step\":2,\"train_loss\":null,\"note\":\"a\\nb\"}\n")

        let records = try JSONLinesReader.read(path: path)
        #expect(records.count == 2)
        #expect(records[1]["step"] == 2)
        #expect(records[1]["train_loss"] == .null)
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
            try writer.write(["step": .int(step)])
            try writer.close()
        }
        #expect(try JSONLinesReader.read(path: path) == [["step": 1], ["step": 2]])

        let truncating = try JSONLinesWriter(path: path)
        try truncating.write(["step": 3])
        try truncating.close()
        #expect(try JSONLinesReader.read(path: path) == [["step": 3]])
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
                        try? writer.write(["task": .int(task), "step": .int(step), "pad": .string(String(repeating: "x", count: 200))])
                    }
                }
            }
        }
        try writer.close()
        let records = try JSONLinesReader.read(path: writer.path)
        #expect(records.count == 1000)
        #expect(records.allSatisfy { $0["pad"]?.stringValue?.count == 200 })
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
    @Test("A torn final line from an interrupted write is ignored; blank lines are skipped")
    func tornLastLine() throws {
        let bytes = Array("{\"step\":1}\n\n{\"step\":2}\n{\"step\":".utf8)
        #expect(try JSONLinesReader.parse(bytes) == [["step": 1], ["step": 2]])
        #expect(try JSONLinesReader.parse(Array("{\"step\":1}".utf8)) == [["step": 1]])
    }

    @Test("A malformed complete line is an error naming the line")
    func malformedLine() {
        let bytes = Array("{\"step\":1}\n{\"step\" 2}\n{\"step\":3}\n".utf8)
        #expect(throws: JSONParseError(message: "line 2: expected ':' after object key", offset: 8)) {
            try JSONLinesReader.parse(bytes)
        }
    }

    @Test("A missing file is a TelemetryError with ENOENT")
    func missingFile() {
        #expect(throws: TelemetryError(operation: "open", subject: "/nonexistent/metrics.jsonl", code: ENOENT)) {
            try JSONLinesReader.read(path: "/nonexistent/metrics.jsonl")
        }
    }
}
