/// A failed ZeroMQ call: which operation, the errno it set, and libzmq's explanation.
public struct TransportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The errno values callers act on; everything else is `.other`.
    public enum Code: Sendable, Equatable {
        /// EAGAIN: a non-blocking call could not proceed, or a send/receive timeout expired.
        case wouldBlock
        /// ETERM: the context was shut down or terminated; close the socket.
        case terminated
        /// EHOSTUNREACH: a ROUTER with `routerMandatory` has no peer with that routing id.
        case hostUnreachable
        /// EADDRINUSE: the endpoint is already bound.
        case addressInUse
        /// EINVAL: a bad argument (endpoint syntax, option value, key format).
        case invalidArgument
        /// EPROTONOSUPPORT / ENOTSUP: transport or feature not available (e.g. CURVE).
        case notSupported
        /// Anything else.
        case other
    }

    /// The ZeroMQ function (or Transport operation) that failed, e.g. "zmq_bind".
    public let operation: String
    /// The classified error.
    public let code: Code
    /// The raw errno (`zmq_errno()`).
    public let errno: Int32
    /// `zmq_strerror(errno)`, plus any detail Transport adds (such as the endpoint).
    public let message: String

    /// Creates an error (Transport builds these; public for fakes in tests).
    public init(operation: String, code: Code, errno: Int32, message: String) {
        self.operation = operation
        self.code = code
        self.errno = errno
        self.message = message
    }

    /// "operation: message (errno N)".
    public var description: String { "\(operation): \(message) (errno \(errno))" }
}
