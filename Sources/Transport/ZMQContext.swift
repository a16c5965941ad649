private import CZeroMQ
import Foundation

/// Owns one libzmq context: the I/O threads and the in-process namespace (inproc://) shared
/// by the sockets created from it.
///
/// Create one per process, share it freely, create sockets from it on the threads that use
/// them, and `close()` it after every socket is closed (sockets keep their context alive).
///
/// `@unchecked Sendable`: libzmq contexts are thread-safe (zmq_socket, zmq_ctx_shutdown and
/// zmq_ctx_term may be called from any thread); the handle never changes after `init`, and the
/// one mutable flag (`closed`) is guarded by `lock`.
public final class ZMQContext: @unchecked Sendable {
    /// The libzmq handle, for Socket and ZAPAuthenticator in this module only.
    let handle: UnsafeMutableRawPointer
    private let lock = NSLock()
    private var closed = false

    /// Creates a context with `ioThreads` background I/O threads (1 moves ~1 GB/s).
    public init(ioThreads: Int32 = 1) throws(TransportError) {
        handle = try zmqPointer("zmq_ctx_new") { zmq_ctx_new() }
        do {
            try zmqCall("zmq_ctx_set(ZMQ_IO_THREADS)") { zmq_ctx_set(handle, ZMQ_IO_THREADS, ioThreads) }
        } catch {
            zmq_ctx_term(handle)
            throw error
        }
    }

    /// Makes every blocking call on this context's sockets fail with `.terminated`, from any
    /// thread, without waiting. Sockets must still be closed, then `close()` called.
    public func shutdown() {
        lock.lock()
        defer { lock.unlock() }
        if !closed { zmq_ctx_shutdown(handle) }
    }

    /// Terminates the context. Blocks until every socket created from it is closed (and their
    /// linger periods have passed). Idempotent.
    public func close() {
        lock.lock()
        let wasClosed = closed
        closed = true
        lock.unlock()
        if wasClosed { return }
        // Only EFAULT (not a context) could remain after the EINTR retries: nothing to report.
        _ = try? zmqCall("zmq_ctx_term") { zmq_ctx_term(handle) }
    }

    deinit {
        // Sockets retain their context, so every socket is gone by now; terminating cannot block
        // on an open socket.
        close()
    }

    /// Whether libzmq was built with CURVE security (libsodium).
    public static var hasCurve: Bool { zmq_has("curve") == 1 }

    /// The libzmq version, e.g. (4, 3, 4).
    public static var libraryVersion: (major: Int, minor: Int, patch: Int) {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (Int(major), Int(minor), Int(patch))
    }
}
