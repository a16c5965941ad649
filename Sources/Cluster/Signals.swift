@preconcurrency import Glibc

/// SIGINT/SIGTERM → a flag the event loops poll (the handler only stores a number).
public enum Signals {
    nonisolated(unsafe) private static var received: sig_atomic_t = 0

    /// Installs handlers for SIGINT and SIGTERM (idempotent).
    public static func install() {
        signal(SIGINT) { s in Signals.received = s }
        signal(SIGTERM) { s in Signals.received = s }
        signal(SIGPIPE, SIG_IGN)
        // A process may inherit a mask that blocks them (e.g. spawned from a Dispatch thread).
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// The signal received, if any.
    public static var pending: Int32? { received == 0 ? nil : received }

    /// Forgets a received signal.
    public static func clear() { received = 0 }

    /// The conventional exit status of a process stopped by `signal`: 128 + its number
    /// (SIGINT → 130, SIGTERM → 143), what a shell reports for a process the signal killed.
    public static func exitStatus(for signal: Int32) -> Int32 { 128 + signal }

    /// `true` when `parent` is no longer this process's parent (it died; we were re-parented).
    public static func orphaned(from parent: Int32?) -> Bool {
        guard let parent else { return false }
        return getppid() != parent
    }
}
