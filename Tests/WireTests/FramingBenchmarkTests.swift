import Testing
import Wire

@Suite struct FramingBenchmarkTests {
    // Prints the numbers recorded in docs/protocol.md; asserts only that both paths ran.
    // Release numbers: swift test -c release --filter FramingBenchmark
    @Test("benchmark: tensor as extra frame vs inside protobuf bytes, 165,000 floats")
    func framingBenchmark() {
        let result = FramingBenchmark.run(floats: 165_000, iterations: 200)
        print(result)
        #expect(result.framesEncode > 0 && result.bytesEncode > 0)
    }
}
