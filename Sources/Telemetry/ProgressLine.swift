import Foundation
@preconcurrency import Glibc
import SystemIO

/// A live one-line training progress display that stays quiet in log files.
///
/// On a terminal (interactive mode) each redraw returns to the start of the line with `\r`,
/// writes the text and clears the rest of the line (`ESC [K`), at most once per
/// `redrawInterval` (0.2 s, i.e. 5 updates/s, by default); ``finish(_:)`` ends the line with a
/// newline. When stderr is not a terminal (plain mode) it writes one ordinary line at the first
/// update and then at most one every `plainInterval` seconds (10 s by default), so a log file
/// gets a readable trickle instead of thousands of carriage returns.
///
/// A line reads, for example:
///
///     step 1200/5000 (24%)  λ̂=-1.234  train 0.4321  valid 0.4567  38.2 steps/s  ETA 1m39s
///
/// The output sink, clock and terminal width are injectable for tests. Updates may come from
/// any thread; they are serialized internally.
public final class ProgressLine: @unchecked Sendable {
    // @unchecked Sendable: the configuration is immutable and every piece of mutable state
    // below is read and written only while holding `lock`. The injected closures are @Sendable.

    private let interactive: Bool
    private let redrawInterval: Double
    private let plainInterval: Double
    private let now: @Sendable () -> Double
    private let write: @Sendable (String) -> Void
    private let columns: @Sendable () -> Int?

    private let lock = NSLock()
    private var latest: ProgressSnapshot?
    private var latestShown = false
    private var lastOutputTime: Double?
    private var origin: (step: Int, time: Double)?
    private var finished = false

    /// Creates a progress display; nothing is written until the first ``update(_:)``.
    ///
    /// - Parameters:
    ///   - interactive: Whether to redraw in place. Defaults to whether stderr is a terminal.
    ///   - redrawInterval: Minimum seconds between redraws in interactive mode.
    ///   - plainInterval: Minimum seconds between lines in plain mode.
    ///   - now: A monotonic clock in seconds.
    ///   - columns: The terminal width, used to cut interactive lines short so they never
    ///     wrap; `nil` means no limit. Asked again at every redraw, so resizes are followed.
    ///   - write: Where the text goes; it receives complete control sequences and lines.
    public init(
        interactive: Bool = ProgressLine.standardErrorIsTerminal,
        redrawInterval: Double = 0.2,
        plainInterval: Double = 10,
        now: @escaping @Sendable () -> Double = ProgressLine.monotonicSeconds,
        columns: @escaping @Sendable () -> Int? = ProgressLine.standardErrorColumns,
        write: @escaping @Sendable (String) -> Void = ProgressLine.writeToStandardError
    ) {
        precondition(redrawInterval >= 0 && plainInterval >= 0,
                     "intervals must be non-negative, got redraw \(redrawInterval) plain \(plainInterval)")
        self.interactive = interactive
        self.redrawInterval = redrawInterval
        self.plainInterval = plainInterval
        self.now = now
        self.columns = columns
        self.write = write
    }

    /// Records `snapshot` and shows it unless the last output was too recent. Cheap enough to
    /// call every step. Ignored after ``finish(_:)``.
    public func update(_ snapshot: ProgressSnapshot) {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { return }
        let time = now()
        if origin == nil { origin = (snapshot.step, time) }
        latest = snapshot
        latestShown = false
        let interval = interactive ? redrawInterval : plainInterval
        if let last = lastOutputTime, time - last < interval { return }
        show(snapshot, at: time, terminator: "")
    }

    /// Shows the final state and ends the line.
    ///
    /// In interactive mode the latest snapshot is drawn if it was throttled, followed by a
    /// newline; in plain mode the latest snapshot is written if it has not been yet. Writes
    /// nothing if there was never an update. Later calls to ``update(_:)`` and ``finish(_:)``
    /// do nothing.
    ///
    /// - Parameter snapshot: A last snapshot to record first, e.g. with the final losses.
    public func finish(_ snapshot: ProgressSnapshot? = nil) {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { return }
        finished = true
        let time = now()
        if let snapshot {
            if origin == nil { origin = (snapshot.step, time) }
            latest = snapshot
            latestShown = false
        }
        guard let latest else { return }
        if !latestShown {
            show(latest, at: time, terminator: interactive ? "\n" : "")
        } else if interactive {
            write("\n")
        }
    }

    /// Writes `snapshot` in the current mode. Must hold `lock`.
    private func show(_ snapshot: ProgressSnapshot, at time: Double, terminator: String) {
        var text = render(snapshot, at: time)
        if interactive {
            if let width = columns(), width > 1, text.count > width - 1 {
                text = String(text.prefix(width - 1))
            }
            write("\r" + text + "\u{1B}[K" + terminator)
        } else {
            write(text + "\n")
        }
        lastOutputTime = time
        latestShown = true
    }

    /// The text of one progress line, without control sequences.
    func render(_ snapshot: ProgressSnapshot, at time: Double) -> String {
        var parts: [String] = []
        if snapshot.totalSteps > 0 {
            let percent = Int((Double(snapshot.step) / Double(snapshot.totalSteps) * 100).rounded(.down))
            parts.append("step \(snapshot.step)/\(snapshot.totalSteps) (\(percent)%)")
        } else {
            parts.append("step \(snapshot.step)")
        }
        if !snapshot.lambdaSummary.isEmpty { parts.append(snapshot.lambdaSummary) }
        if let loss = snapshot.trainLoss { parts.append("train " + Format.significant(loss)) }
        if let loss = snapshot.validLoss { parts.append("valid " + Format.significant(loss)) }
        if let rate = snapshot.stepsPerSecond ?? measuredRate(upTo: snapshot.step, at: time) {
            parts.append(Self.rateText(rate) + " steps/s")
            if snapshot.totalSteps > snapshot.step, rate > 0 {
                parts.append("ETA " + Format.duration(Double(snapshot.totalSteps - snapshot.step) / rate))
            }
        }
        if let extra = snapshot.extra, !extra.isEmpty { parts.append(extra) }
        // A newline inside a field would break the redraw-in-place line.
        return parts.joined(separator: "  ")
            .replacingOccurrences(of: "\r", with: " ")
            .replacingOccurrences(of: "\n", with: " ")
    }

    /// Steps per second since the first update, once the clock has advanced and steps were made.
    private func measuredRate(upTo step: Int, at time: Double) -> Double? {
        guard let origin, time > origin.time, step > origin.step else { return nil }
        return Double(step - origin.step) / (time - origin.time)
    }

    private static func rateText(_ rate: Double) -> String {
        let magnitude = abs(rate)
        return Format.fixed(rate, digits: magnitude < 10 ? 2 : magnitude < 100 ? 1 : 0)
    }
}

// MARK: - Defaults for the real terminal

extension ProgressLine {
    /// Whether standard error is a terminal (`isatty(STDERR_FILENO)`).
    public static var standardErrorIsTerminal: Bool {
        isatty(STDERR_FILENO) == 1
    }

    /// Seconds from `CLOCK_MONOTONIC`; unaffected by wall-clock changes.
    public static let monotonicSeconds: @Sendable () -> Double = {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) * 1e-9
    }

    /// The width of the terminal on standard error, or `nil` if it is not a terminal.
    public static let standardErrorColumns: @Sendable () -> Int? = {
        var size = winsize()
        guard ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
        return Int(size.ws_col)
    }

    /// Writes `text` straight to file descriptor 2 (unbuffered, so nothing lingers in a
    /// stdio buffer). Failures are ignored: progress output is never worth stopping a run for.
    public static let writeToStandardError: @Sendable (String) -> Void = { text in
        try? SystemCall.writeAll(STDERR_FILENO, text, subject: "stderr")
    }
}
