import Foundation
import Linalg
import Testing
@testable import HyperOpt

@Suite("JSON decoding on compute threads")
struct JSONDecodingTests {
    @Test("a configuration with a subnormal number decodes on a thread that flushes denormals (as every worker's does)")
    func subnormalUnderFlushToZero() throws {
        var config = ExperimentConfig()
        config.lambdaInit = 1e-310
        let data = try JSONEncoder().encode(config)
        // On a thread of its own: the flag is per thread, and this one must not leak into others.
        let result = Box()
        let thread = Thread {
            BLASRuntime.flushDenormalsToZero()
            result.plain = Result { try JSONDecoder().decode(ExperimentConfig.self, from: data) }.map { _ in () }
            result.decoded = try? JSONDecoding.decode(ExperimentConfig.self, from: data)
            // Still flushing afterwards: 1e-310 as a Double result becomes 0.
            result.flushedAfter = Self.tiny(result.seed) == 0
            result.done.signal()
        }
        thread.start()
        result.done.wait()
        #expect(result.decoded == config, "JSONDecoding refused or changed 1e-310")
        #expect(result.flushedAfter, "FTZ/DAZ not restored after decoding")
        // The reason it exists: Foundation's decoder refuses the number while denormals are flushed.
        if case .success = result.plain { Issue.record("Foundation decoded a subnormal under FTZ; JSONDecoding may be unnecessary now") }
    }

    /// A subnormal result computed at run time (not constant-folded).
    @inline(never) static func tiny(_ x: Double) -> Double { x * 1e-300 }

    private final class Box: @unchecked Sendable {
        var plain: Result<Void, Error> = .success(())
        var decoded: ExperimentConfig?
        var flushedAfter = false
        let seed = 1e-10
        let done = DispatchSemaphore(value: 0)
    }
}
