/// A run's failed checkpoint writes (disk full, permissions), by distinct reason: the first
/// failure of each kind is reported, the rest only counted, and the counts are reported at the
/// end — a full disk must not cost every interval a log line. Used by the single-process run
/// and the coordinator alike.
public struct CheckpointFailures: Sendable {
    private var kinds: [(reason: String, count: Int)] = []

    public init() {}

    /// Counts a failure; `true` when it is the first of its kind (report it now).
    public mutating func record(_ error: any Error) -> Bool {
        let reason = "\(error)"
        if let i = kinds.firstIndex(where: { $0.reason == reason }) {
            kinds[i].count += 1
            return false
        }
        kinds.append((reason, 1))
        return true
    }

    /// Every failure so far.
    public var total: Int { kinds.reduce(0) { $0 + $1.count } }

    /// For the end of the run: "checkpoint failed N times: reason" for each kind seen more than once.
    public var repeatedLines: [String] {
        kinds.filter { $0.count > 1 }.map { "checkpoint failed \($0.count) times: \($0.reason)" }
    }
}
