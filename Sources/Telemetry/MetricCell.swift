import Foundation

/// The value of one series, shared between the registry and its handles.
final class MetricCell: @unchecked Sendable {
    // @unchecked Sendable: `storedValue` is only accessed while holding `lock`, which is the
    // owning registry's lock, so rendering sees a consistent snapshot of all series.

    private let lock: NSLock
    private var storedValue = 0.0

    init(lock: NSLock) {
        self.lock = lock
    }

    /// The value, for a caller that already holds the registry lock.
    var valueWhileLocked: Double { storedValue }

    /// The value, taking the lock.
    func read() -> Double {
        lock.withLock { storedValue }
    }

    /// Changes the value under the lock.
    func update(_ body: (inout Double) -> Void) {
        lock.withLock { body(&storedValue) }
    }
}
