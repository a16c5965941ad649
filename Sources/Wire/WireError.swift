/// Why `WireCodec.decode` refused a message. Every case maps to the `ErrorCode` a receiver
/// sends back (`errorCode`); use `WireCodec.peekHeader` to address that reply.
public enum WireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The envelope frame is not a valid protobuf `Envelope`, has no body, or a field holds
    /// a value this version does not know (the string says which).
    case malformed(String)
    /// The body is a `oneof` member this version does not know (a newer peer).
    case unknownBody(fieldNumber: UInt32)
    /// The envelope describes `described` tensors but `frames` tensor frames followed it.
    case tensorCountMismatch(described: Int, frames: Int)
    /// Tensor `name`'s frame is not `length × 4` bytes long.
    case tensorSizeMismatch(name: String, expectedBytes: UInt64, got: Int)
    /// Tensor `name` has a dtype other than the body requires (`got` is the raw enum value).
    case tensorTypeMismatch(name: String, expected: String, got: UInt32)
    /// A tensor the body does not have, or one described twice.
    case unknownTensor(String)
    /// A tensor the body needs was not described.
    case missingTensor(String)
    /// The envelope frame or the declared tensors exceed the size limit.
    case tooLarge(bytes: UInt64, limit: UInt64)
    /// The envelope parsed but speaks another protocol version.
    case wrongVersion(got: UInt32)

    /// The code to answer the sender with.
    public var errorCode: ErrorCode {
        switch self {
        case .malformed, .tooLarge: .malformed
        case .unknownBody: .unexpected
        case .wrongVersion: .versionMismatch
        case .tensorCountMismatch, .tensorSizeMismatch, .tensorTypeMismatch, .unknownTensor,
            .missingTensor:
            .badTensor
        }
    }

    /// A one-line explanation, suitable for `ErrorReply.message` and logs.
    public var description: String {
        switch self {
        case .malformed(let why): "malformed envelope: \(why)"
        case .unknownBody(let n): "unknown body (oneof field \(n)); is the peer newer?"
        case .tensorCountMismatch(let d, let f):
            "envelope describes \(d) tensor(s) but \(f) tensor frame(s) followed"
        case .tensorSizeMismatch(let name, let e, let g):
            "tensor '\(name)': frame has \(g) bytes, its description needs \(e)"
        case .tensorTypeMismatch(let name, let e, let g):
            "tensor '\(name)': dtype \(g), expected \(e)"
        case .unknownTensor(let name): "unexpected tensor '\(name)' for this body"
        case .missingTensor(let name): "missing tensor '\(name)'"
        case .tooLarge(let b, let l): "message too large: \(b) bytes, limit \(l)"
        case .wrongVersion(let g): "protocol version \(g), this peer speaks \(Wire.protocolVersion)"
        }
    }
}
