/// Keeps a log readable when the same event repeats (async mode's stale gradients, a
/// checkpoint that keeps failing on a full disk): the first line of a kind is written at once,
/// later ones of that kind at most once per `interval` seconds, with a count of those held back.
/// A line's kind is its text with the digits taken out.
public struct LogThrottle: Sendable {
    /// Seconds between two lines of one kind.
    public let interval: Double
    private var kinds: [String: (lastWritten: Double, held: Int)] = [:]

    /// A throttle writing one line per kind per `interval` seconds.
    public init(interval: Double) {
        precondition(interval >= 0, "LogThrottle: interval \(interval)")
        self.interval = interval
    }

    /// The lines to write now for `line` at time `now` (none when it is held back).
    public mutating func lines(for line: String, now: Double) -> [String] {
        let kind = String(line.unicodeScalars.filter { !("0"..."9").contains($0) })
        guard let seen = kinds[kind] else {
            kinds[kind] = (now, 0)
            return [line]
        }
        guard now - seen.lastWritten >= interval else {
            kinds[kind] = (seen.lastWritten, seen.held + 1)
            return []
        }
        kinds[kind] = (now, 0)
        return [seen.held == 0 ? line : line + " (and \(seen.held) more like it in the last \(Int((now - seen.lastWritten).rounded())) s)"]
    }

    /// One line per kind with lines held back since it was last written (at the end of a run).
    public mutating func flush() -> [String] {
        let out = kinds.filter { $0.value.held > 0 }.keys.sorted().map { kind in
            "\(kinds[kind]!.held) more line(s) like: \(kind.prefix(160))"
        }
        for kind in kinds.keys { kinds[kind]?.held = 0 }
        return out
    }
}
