import Foundation
import Linalg
import Testing
import TestSupport
import Telemetry

@Suite struct SummaryWriterTests {
    private struct Summary: Decodable {
        var lambda_hat: [Double]
        var valid_loss: Double
        var test_loss: Double?
        var steps: Int
        var wall_seconds: Double
    }

    @Test("The summary is written as pretty JSON, replacing the old one, with no temporary file left")
    func atomicWrite() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.path + "/out/summary.json"

        try SummaryWriter.write(JSONRecord([("steps", 1)]), to: path)
        let summary = JSONRecord([
            ("lambda_hat", [-2.25, 0.5]), ("valid_loss", 0.125), ("test_loss", Double.nan),
            ("steps", 5000), ("wall_seconds", 12.5),
        ])
        try SummaryWriter.write(summary, to: path)

        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text == """
            {
              "lambda_hat" : [
                -2.25,
                0.5
              ],
              "steps" : 5000,
              "test_loss" : null,
              "valid_loss" : 0.125,
              "wall_seconds" : 12.5
            }

            """)
        let back = try JSONDecoder().decode(Summary.self, from: Data(text.utf8))
        #expect(back.lambda_hat == [-2.25, 0.5] && back.test_loss == nil && back.steps == 5000)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path + "/out") == ["summary.json"])
    }

    /// Doubles a run writes: losses with 17 significant digits, a Float λ̂ widened to Double,
    /// subnormals, extremes, negative zero.
    static let awkward: [Double] = [
        0.1, 1.0 / 3.0, 0.30000000000000004, Double(Float(0.1)), Double(Float(-1.8234567)), 123456789.12345679,
        2.2250738585072014e-308, 4.9406564584124654e-324, 1.7976931348623157e308, -0.0, 1e-5, 1e22, 2.0, -2.25,
    ]

    @Test("Every summary number reads back bit for bit (Double → JSON → Double)")
    func doublesRoundTrip() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.path + "/summary.json"
        // Seeded, so that a value that fails fails every time.
        var rng = SplitMix64(seed: 2026_12_06)
        let random = (0..<2000).map { _ in Double(bitPattern: rng.next() & ~(0x7FF << 52) | (UInt64.random(in: 1...2046, using: &rng) << 52)) }
        let values = Self.awkward + random
        try SummaryWriter.write(JSONRecord([("values", values), ("one", values[1])]), to: path)

        struct Back: Decodable { var values: [Double]; var one: Double }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let back: Back
        do {
            // Denormals kept while decoding: Foundation's JSONDecoder refuses subnormal numbers
            // ("not valid JSON") on a thread that flushes them (FTZ/DAZ), which `BLASRuntime.
            // setThreads` turns on — other tests leave it on for the pool threads they ran on,
            // and a new thread inherits it from the thread that starts it.
            back = try BLASRuntime.keepingDenormals { try JSONDecoder().decode(Back.self, from: bytes) }
        } catch {
            // Say where the text is not JSON (JSONSerialization names the position).
            let why = (try? JSONSerialization.jsonObject(with: bytes)).map { _ in "JSONSerialization reads it" }
                ?? "\((Result { try JSONSerialization.jsonObject(with: bytes) }.mapError { $0 as NSError }).failure.map { "\($0.userInfo)" } ?? "")"
            Issue.record("\(error); \(bytes.count) bytes; \(why); starts \(String(decoding: bytes.prefix(120), as: UTF8.self)) … ends \(String(decoding: bytes.suffix(120), as: UTF8.self))")
            return
        }
        #expect(back.values.count == values.count)
        for (written, read) in zip(values, back.values) {
            #expect(written.bitPattern == read.bitPattern, "\(written) read back as \(read)")
        }
        #expect(back.one.bitPattern == values[1].bitPattern)
    }

    @Test("Non-finite numbers become null, alone, optional or inside an array")
    func nonFinite() throws {
        let text = try JSONRecord([
            ("a", Double.infinity), ("b", Double?.some(-.infinity)), ("c", Double?.none), ("d", [1.5, .nan]), ("e", Float.nan),
        ]).encoded()
        #expect(text == #"{"a":null,"b":null,"c":null,"d":[1.5,null],"e":null}"#)
    }

    @Test("An unwritable destination fails without leaving a temporary file")
    func failure() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let target = directory.path + "/summary.json"
        try FileManager.default.createDirectory(atPath: target + "/occupied", withIntermediateDirectories: true)
        // rename(2) cannot replace a non-empty directory with a file.
        #expect(throws: TelemetryError.self) { try SummaryWriter.write(JSONRecord([("ok", true)]), to: target) }
        #expect(try directory.contents() == ["summary.json"])
    }
}

private extension Result {
    var failure: Failure? { if case .failure(let f) = self { f } else { nil } }
}
