import Foundation
import Testing
import Telemetry

@Suite struct SummaryWriterTests {
    @Test("The summary is written as pretty JSON, replacing the old one, with no temporary file left")
    func atomicWrite() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.path + "/out/summary.json"

        try SummaryWriter.write(["steps": 1], to: path)
        let summary: JSONValue = [
            "lambda_hat": JSONValue([-2.25, 0.5]), "valid_loss": 0.125, "test_loss": .double(.nan),
            "steps": 5000, "wall_seconds": 12.5,
        ]
        try SummaryWriter.write(summary, to: path)

        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text == """
            {
              "lambda_hat": [
                -2.25,
                0.5
              ],
              "valid_loss": 0.125,
              "test_loss": null,
              "steps": 5000,
              "wall_seconds": 12.5
            }

            """)
        #expect(try JSONValue(parsing: text)["lambda_hat"] == [-2.25, 0.5])
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path + "/out") == ["summary.json"])
    }

    @Test("An unwritable destination fails without leaving a temporary file")
    func failure() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let target = directory.path + "/summary.json"
        try FileManager.default.createDirectory(atPath: target + "/occupied", withIntermediateDirectories: true)
        // rename(2) cannot replace a non-empty directory with a file.
        #expect(throws: TelemetryError.self) { try SummaryWriter.write(["ok": true], to: target) }
        #expect(try directory.contents() == ["summary.json"])
    }
}
