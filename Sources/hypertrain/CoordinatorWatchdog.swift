import Cluster
import Foundation
@preconcurrency import Glibc

/// `--give-up-after` for a coordinator that vanished without a word (kill -9, a lost host):
/// the worker's link gives up only while it was never registered, so this watches the link's
/// log for the moment it loses a registered coordinator and, after `seconds` without a new
/// registration, stops the worker the way a signal does (`Signals.request`).
///
/// It reads the link's log lines ("registered as …", "…; reconnecting", "…; re-registering")
/// because the link exposes no connection state; when it does, this can go.
final class CoordinatorWatchdog: @unchecked Sendable {
    // @unchecked: `lostAt` and `fired` are only touched under `lock` (the log closure runs on
    // the worker's thread, the check on the watchdog's).
    private let lock = NSLock()
    private var lostAt: Double?
    private var fired = false
    private var stopped = false
    let seconds: Double

    init(seconds: Double) { self.seconds = seconds }

    /// Whether it stopped the worker.
    var hasFired: Bool { lock.withLock { fired } }

    /// Wraps a log closure: passes every line on and notes registrations and disconnections.
    func observing(_ log: @escaping @Sendable (String) -> Void) -> @Sendable (String) -> Void {
        { [self] line in
            lock.withLock {
                if line.hasPrefix("registered as ") { lostAt = nil }
                else if lostAt == nil && (line.hasSuffix("reconnecting") || line.hasSuffix("re-registering")) {
                    lostAt = ProcessInfo.processInfo.systemUptime
                }
            }
            log(line)
        }
    }

    /// Starts the watching thread (a no-op for `seconds` ≤ 0).
    func start() {
        guard seconds > 0 else { return }
        let thread = Thread { [self] in
            while true {
                usleep(250_000)
                let fire: Bool = lock.withLock {
                    guard !stopped, !fired, let lostAt, ProcessInfo.processInfo.systemUptime - lostAt > seconds else { return false }
                    fired = true
                    return true
                }
                if fire { Signals.request(SIGTERM); return }
                if lock.withLock({ stopped }) { return }
            }
        }
        thread.start()
    }

    /// Stops the watching thread.
    func stop() { lock.withLock { stopped = true } }
}
