import Testing
import TestSupport
import Wire

@Suite struct FramingBenchmarkTests {
    /// The two encodings the benchmark times must carry the same tensor, or the comparison in
    /// docs/protocol.md compares different work.
    @Test("both framings give back φ bit for bit, including awkward floats")
    func bothPathsRoundTrip() throws {
        var rng = SplitMix64(seed: 42)
        let phi: [Float] = [0, -0.0, .infinity, -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude]
            + (0..<10_000).map { _ in Float.random(in: -1..<1, using: &rng) }
        let decoded = FramingBenchmark.decodedBothWays(phi: phi)
        let frames = try #require(decoded.frames, "extra-frame path did not decode to a TrainTask")
        #expect(frames.map(\.bitPattern) == phi.map(\.bitPattern))
        #expect(decoded.bytes.map(\.bitPattern) == phi.map(\.bitPattern))
    }

    // Prints the numbers recorded in docs/protocol.md.
    // Release numbers: swift test -c release --filter FramingBenchmark
    @Test("benchmark: tensor as extra frame vs inside protobuf bytes, 165,000 floats")
    func framingBenchmark() {
        var rng = SplitMix64(seed: 42)
        let result = FramingBenchmark.run(floats: 165_000, iterations: 200, using: &rng)
        print(result)
        #expect(result.floats == 165_000)
        // Every timing is a real measurement (the clock moved) and finite.
        for t in [result.framesEncode, result.framesDecode, result.bytesEncode, result.bytesDecode] {
            #expect(t > 0 && t.isFinite)
        }
    }
}
