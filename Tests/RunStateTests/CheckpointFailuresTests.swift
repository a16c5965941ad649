import Testing
import RunState

@Suite struct CheckpointFailuresTests {
    struct Failure: Error, CustomStringConvertible { let description: String }

    @Test("the first failure of each kind is reported, the rest counted; the end names kinds seen more than once")
    func countsByKind() {
        var f = CheckpointFailures()
        let reported = ["disk full", "disk full", "permission denied", "disk full"].map { f.record(Failure(description: $0)) }
        #expect(reported == [true, false, true, false])
        #expect(f.total == 4)
        #expect(f.repeatedLines == ["checkpoint failed 3 times: disk full"])
    }
}
