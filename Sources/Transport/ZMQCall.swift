// The one checked path into libzmq: every call that can fail goes through `zmqCall` or
// `zmqPointer`, which retry EINTR and turn errno into a `TransportError`.
//
// EINTR is retried because a signal (SIGCHLD, SIGWINCH, a profiler) must not look like a
// network failure. Code that has to react to SIGINT/SIGTERM does so by polling with a timeout
// and checking a flag, not by relying on EINTR.

private import CZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// Calls `body` until it does not fail with EINTR; a return of -1 becomes a TransportError.
@discardableResult
func zmqCall(_ operation: @autoclosure () -> String, _ body: () -> Int32) throws(TransportError) -> Int32 {
    while true {
        let rc = body()
        if rc != -1 { return rc }
        let err = zmq_errno()
        if err == EINTR { continue }
        throw transportError(operation(), err)
    }
}

/// As `zmqCall`, for functions that return a handle (nil on failure).
func zmqPointer(_ operation: @autoclosure () -> String, _ body: () -> UnsafeMutableRawPointer?) throws(TransportError) -> UnsafeMutableRawPointer {
    while true {
        if let p = body() { return p }
        let err = zmq_errno()
        if err == EINTR { continue }
        throw transportError(operation(), err)
    }
}

/// A TransportError for `errno` with libzmq's message and an optional detail.
func transportError(_ operation: String, _ err: Int32, detail: String = "") -> TransportError {
    let text = String(cString: zmq_strerror(err))
    let code: TransportError.Code
    switch err {
    case EAGAIN: code = .wouldBlock
    case ETERM: code = .terminated
    case EHOSTUNREACH: code = .hostUnreachable
    case EADDRINUSE: code = .addressInUse
    case EINVAL: code = .invalidArgument
    case EPROTONOSUPPORT, ENOTSUP: code = .notSupported
    default: code = .other
    }
    return TransportError(operation: operation, code: code, errno: err,
                          message: detail.isEmpty ? text : "\(text) (\(detail))")
}

/// The text of a NUL-terminated C string held in a Swift array (as filled by libzmq).
func string(fromCBuffer buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
