/// One frame to send: bytes that libzmq copies, or the storage of an array that it sends
/// without copying (zero-copy, `zmq_msg_init_data`).
///
/// Zero-copy: the frame keeps the array's storage alive (a retained reference) until libzmq's
/// free callback runs — on its I/O thread once the bytes are written to the wire, or on the
/// sending thread if the message is dropped — so there is neither a copy nor a
/// use-after-free. The array is immutable (a `let` inside the keeper), so its elements cannot
/// change while libzmq reads them. Small frames are copied: below `zeroCopyThreshold` a copy
/// is cheaper than the callback and its allocation.
public struct OutgoingFrame {
    enum Storage {
        case copy([UInt8])
        case shared(ArrayKeeper)
    }
    let storage: Storage

    /// Frames at least this large travel zero-copy (bytes).
    public static let zeroCopyThreshold = 16 << 10

    /// A frame holding `bytes`.
    public init(_ bytes: [UInt8]) {
        storage = bytes.count >= Self.zeroCopyThreshold ? .shared(ArrayKeeper(bytes)) : .copy(bytes)
    }

    /// A frame holding the raw in-memory bytes of `elements` (e.g. little-endian float32).
    public init<T: BitwiseCopyable>(elements: [T]) {
        if elements.count * MemoryLayout<T>.stride >= Self.zeroCopyThreshold {
            storage = .shared(ArrayKeeper(elements))
        } else {
            storage = .copy(elements.withUnsafeBytes { Array($0) })
        }
    }

    /// Number of bytes.
    public var count: Int {
        switch storage {
        case .copy(let b): b.count
        case .shared(let k): k.count
        }
    }
}

/// Owns an array whose elements libzmq sends in place. The address is that of the array's
/// heap storage: a native Swift array (no Objective-C bridging on Linux) with at least one
/// element keeps its elements in one storage object, which lives as long as this keeper holds
/// the array and does not move because the array is never mutated.
final class ArrayKeeper: @unchecked Sendable {
    // @unchecked Sendable: immutable after init; libzmq's I/O thread only reads the bytes and
    // releases the keeper (atomic reference counting) from its free callback.
    private let array: Any
    let base: UnsafeRawPointer
    let count: Int

    init<T: BitwiseCopyable>(_ elements: [T]) {
        precondition(!elements.isEmpty, "ArrayKeeper: nothing to keep")
        array = elements
        (base, count) = elements.withUnsafeBytes { ($0.baseAddress!, $0.count) }
    }
}
