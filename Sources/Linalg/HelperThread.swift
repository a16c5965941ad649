private import CKernels
import Foundation

/// One long-lived compute thread that runs the jobs handed to it in order, with denormals
/// flushed as on every compute thread of every role (so its arithmetic rounds as the caller's).
///
/// The coordinator draws the coming steps' λ noise on one while the peers compute. The thread
/// ends when the `HelperThread` is released (after the jobs already handed over).
public final class HelperThread: @unchecked Sendable {
    /// The queue both threads touch, under `condition`'s lock.
    private final class Queue: @unchecked Sendable {
        let condition = NSCondition()
        var jobs: [() -> Void] = []
        var stopping = false

        func loop(background: Bool) {
            BLASRuntime.flushDenormalsToZero()
            // Linux schedules threads: a background job yields to every thread that wants a core.
            if background { _ = hypertrain_idle_this_thread() }
            while true {
                condition.lock()
                while jobs.isEmpty && !stopping { condition.wait() }
                if jobs.isEmpty { condition.unlock(); return }
                let job = jobs.removeFirst()
                condition.unlock()
                job()
            }
        }
    }

    private let queue = Queue()

    /// Starts the thread (`name` shows in `top -H` and debuggers). A `background` thread runs
    /// only on an otherwise idle core (Linux SCHED_IDLE): it fills idle time instead of taking
    /// a core from a thread or process that something waits for.
    public init(name: String, background: Bool = false) {
        let q = queue
        let thread = Thread { q.loop(background: background) }
        thread.name = name
        thread.start()
    }

    deinit {
        queue.condition.lock()
        queue.stopping = true
        queue.condition.signal()
        queue.condition.unlock()
    }

    /// Runs `job` on the thread after the jobs handed over before it.
    public func submit(_ job: @escaping @Sendable () -> Void) {
        queue.condition.lock()
        queue.jobs.append(job)
        queue.condition.signal()
        queue.condition.unlock()
    }
}


