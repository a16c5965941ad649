import Foundation
import HyperOpt
import Transport
import Wire

/// A worker on a thread of the coordinator's process, connected over inproc:// with the
/// coordinator's ZeroMQ context and splits.
final class InProcessWorker: @unchecked Sendable {
    /// Its role.
    let role: Role
    private let node: WorkerNode
    private let done = DispatchSemaphore(value: 0)
    private var started = false
    private let log: @Sendable (String) -> Void

    init(role: Role, connect: String, context: ZMQContext, data: ExperimentData, busyWaitMicroseconds: Int = 0,
         log: @escaping @Sendable (String) -> Void) {
        var o = WorkerNode.Options(connect: connect, role: role, dataDirectory: "")
        o.busyWaitMicroseconds = busyWaitMicroseconds
        o.context = context
        o.data = data
        o.log = { line in log("in-process \(role): " + line) }
        node = WorkerNode(options: o)
        self.role = role
        self.log = log
    }

    private let lock = NSLock()
    private var error: String?

    /// Why the worker stopped before the coordinator told it to (nil while it runs or after
    /// a Shutdown): the run cannot go on without it.
    var failure: String? { lock.withLock { error } }

    /// Starts the worker's thread.
    func start() {
        started = true
        let thread = Thread { [self] in
            do {
                if case .shutdown = try node.run() {} else { lock.withLock { error = "it stopped" } }
            } catch {
                log("in-process worker stopped: \(error)")
                lock.withLock { self.error = "\(error)" }
            }
            done.signal()
        }
        thread.name = "in-process-worker"
        thread.start()
    }

    /// Waits for the worker to end (it ends on the coordinator's Shutdown); after 5 s, makes
    /// the context's blocking calls fail so that it ends.
    func join(orAbort context: ZMQContext) {
        guard started else { return }
        if done.wait(timeout: .now() + 5) == .timedOut {
            log("the in-process worker did not stop within 5 s; stopping it")
            context.shutdown()
            done.wait()
        }
    }
}
