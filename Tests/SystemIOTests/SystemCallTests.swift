import Testing
import SystemIO

@Suite struct SystemCallTests {
    @Test("parent(of:) and lastComponent(of:) split paths like dirname and basename", arguments: [
        ("summary.json", ".", "summary.json"),
        ("/summary.json", "/", "summary.json"),
        ("runs/a/summary.json", "runs/a", "summary.json"),
        ("/runs/a/", "/runs", "a"),
    ])
    func pathSplitting(path: String, parent: String, last: String) {
        #expect(SystemCall.parent(of: path) == parent)
        #expect(SystemCall.lastComponent(of: path) == last)
    }
}
