// Tensors as extra ZeroMQ frames: the element types, the per-body schema (which tensors a
// body carries, in which order), and the byte copies between Swift arrays and frames.
//
// Frames hold raw little-endian elements. Copies are single memcpy's, so this code assumes a
// little-endian host; `requireLittleEndianHost()` turns a big-endian build into a clear
// failure instead of silently garbled tensors.

@inline(__always)
func requireLittleEndianHost() {
    #if _endian(big)
    preconditionFailure("Wire: tensor frames are little-endian and copied with memcpy; big-endian hosts need a byte-swapping codec")
    #endif
}

/// Element type of a tensor frame; raw values are the proto `DType` values.
enum TensorDType: UInt32 {
    case float32 = 0
    case int32 = 1

    var protoName: String {
        switch self {
        case .float32: "DTYPE_FLOAT32"
        case .int32: "DTYPE_INT32"
        }
    }
}

/// Both dtypes are 4 bytes per element.
let tensorElementBytes = 4

/// A tensor's elements.
enum TensorPayload: Equatable {
    case float32([Float])
    case int32([Int32])

    var dtype: TensorDType {
        switch self {
        case .float32: .float32
        case .int32: .int32
        }
    }

    var count: Int {
        switch self {
        case .float32(let a): a.count
        case .int32(let a): a.count
        }
    }

    var byteCount: Int { count * tensorElementBytes }

    /// Decodes a frame whose length was already checked to be `count × 4`: one copy, from
    /// wherever the frame's bytes are (a `[UInt8]` or libzmq's message buffer).
    init(dtype: TensorDType, bytes: UnsafeRawBufferPointer) {
        switch dtype {
        case .float32: self = .float32(elementsOf(bytes, as: Float.self))
        case .int32: self = .int32(elementsOf(bytes, as: Int32.self))
        }
    }

    /// The frame to send: the array itself (its bytes are the frame).
    var encoded: EncodedFrame {
        switch self {
        case .float32(let a): .float32(a)
        case .int32(let a): .int32(a)
        }
    }
}

private func bytesOf<T: BitwiseCopyable>(_ a: [T]) -> [UInt8] {
    a.withUnsafeBytes { src in
        [UInt8](unsafeUninitializedCapacity: src.count) { dst, initialized in
            if let base = src.baseAddress, src.count > 0 {
                UnsafeMutableRawBufferPointer(dst).copyMemory(
                    from: UnsafeRawBufferPointer(start: base, count: src.count))
            }
            initialized = src.count
        }
    }
}

private func elementsOf<T: BitwiseCopyable>(_ frame: UnsafeRawBufferPointer, as: T.Type) -> [T] {
    let n = frame.count / MemoryLayout<T>.stride
    precondition(n * MemoryLayout<T>.stride == frame.count, "frame of \(frame.count) bytes is not a whole number of \(T.self)")
    return [T](unsafeUninitializedCapacity: n) { dst, initialized in
        if n > 0 {
            UnsafeMutableRawBufferPointer(dst).copyMemory(from: frame)
        }
        initialized = n
    }
}

/// The bytes of one received frame, wherever they live: a `[UInt8]`, or a buffer owned by the
/// transport (Cluster makes `Transport.ReceivedFrame` one, so tensors are copied once, straight
/// out of libzmq's message into their arrays).
public protocol WireFrame {
    /// Number of bytes.
    var count: Int { get }
    /// Calls `body` with the bytes (valid only inside `body`).
    func withFrameBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R
}

extension Array: WireFrame where Element == UInt8 {
    /// Calls `body` with the array's bytes.
    public func withFrameBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUnsafeBytes { body($0) }
    }
}

/// One frame of an encoded message, ready to send: the envelope's bytes, or a tensor as the
/// array of its elements, whose in-memory bytes (little-endian) are the frame. Handing the
/// array over instead of a byte copy lets the transport send it without copying.
public enum EncodedFrame: Sendable, Equatable {
    /// Bytes (the envelope frame).
    case bytes([UInt8])
    /// A float32 tensor frame.
    case float32([Float])
    /// An int32 tensor frame.
    case int32([Int32])

    /// Number of bytes of the frame.
    public var byteCount: Int {
        switch self {
        case .bytes(let b): b.count
        case .float32(let a): a.count * tensorElementBytes
        case .int32(let a): a.count * tensorElementBytes
        }
    }

    /// The frame's bytes (a copy).
    public var bytes: [UInt8] {
        switch self {
        case .bytes(let b): b
        case .float32(let a): bytesOf(a)
        case .int32(let a): bytesOf(a)
        }
    }
}

/// A tensor of a body: its name on the wire and its elements.
struct NamedTensor {
    let name: String
    let payload: TensorPayload
}

/// One entry of a body's tensor schema.
struct TensorSlot {
    let name: String
    let dtype: TensorDType
    /// An optional tensor may be left out of the message (it is then empty).
    var optional = false
}

extension Message.Body {
    /// The tensors this body carries, in frame order.
    var tensors: [NamedTensor] {
        switch self {
        case .trainTask(let t):
            // "phi" (possibly empty: the cached φ) and "lambda_hat", or "w" and "lambda".
            t.weights.isEmpty
                ? [NamedTensor(name: "phi", payload: .float32(t.phi)),
                   NamedTensor(name: "lambda_hat", payload: .float32(t.lambdaHat))]
                : [NamedTensor(name: "w", payload: .float32(t.weights)),
                   NamedTensor(name: "lambda", payload: .float32(t.lambda))]
        case .validTask(let t):
            // "phi" (possibly empty: the cached φ), or "w" when the weights are sent instead.
            (t.weights.isEmpty ? [NamedTensor(name: "phi", payload: .float32(t.phi))] : [])
                + [NamedTensor(name: "lambda_hat", payload: .float32(t.lambdaHat))]
                + (t.weights.isEmpty ? [] : [NamedTensor(name: "w", payload: .float32(t.weights))])
        case .gradient(let g):
            // "grad_phi" or (when only it is set) "grad_w"; an empty grad_phi beside an empty
            // grad_w is still sent, so the receiver reports the wrong size.
            (g.gradW.isEmpty || !g.gradPhi.isEmpty ? [NamedTensor(name: "grad_phi", payload: .float32(g.gradPhi))] : [])
                + [NamedTensor(name: "lambda", payload: .float32(g.lambdas)),
                   NamedTensor(name: "indices", payload: .int32(g.indices))]
                + (g.gradW.isEmpty ? [] : [NamedTensor(name: "grad_w", payload: .float32(g.gradW))])
        case .hypergradient(let h):
            h.gradW.isEmpty || !h.gradLambda.isEmpty
                ? [NamedTensor(name: "grad_lambda", payload: .float32(h.gradLambda))]
                    + (h.gradW.isEmpty ? [] : [NamedTensor(name: "grad_w", payload: .float32(h.gradW))])
                : [NamedTensor(name: "grad_w", payload: .float32(h.gradW))]
        case .trialTask(let t):
            [NamedTensor(name: "lambda", payload: .float32(t.lambda))]
        case .hello, .welcome, .workRequest, .heartbeat, .error, .shutdown, .statusRequest,
            .status, .ack, .idle, .trialResult:
            []
        }
    }

    /// The tensors this kind of body must carry (the same names and order as `tensors`).
    var tensorSchema: [TensorSlot] {
        switch self {
        case .trainTask:
            [TensorSlot(name: "phi", dtype: .float32, optional: true), TensorSlot(name: "lambda_hat", dtype: .float32, optional: true),
             TensorSlot(name: "w", dtype: .float32, optional: true), TensorSlot(name: "lambda", dtype: .float32, optional: true)]
        case .validTask:
            [TensorSlot(name: "phi", dtype: .float32, optional: true), TensorSlot(name: "lambda_hat", dtype: .float32),
             TensorSlot(name: "w", dtype: .float32, optional: true)]
        case .gradient:
            [TensorSlot(name: "grad_phi", dtype: .float32, optional: true), TensorSlot(name: "lambda", dtype: .float32),
             TensorSlot(name: "indices", dtype: .int32), TensorSlot(name: "grad_w", dtype: .float32, optional: true)]
        case .hypergradient:
            [TensorSlot(name: "grad_lambda", dtype: .float32, optional: true), TensorSlot(name: "grad_w", dtype: .float32, optional: true)]
        case .trialTask:
            [TensorSlot(name: "lambda", dtype: .float32)]
        case .hello, .welcome, .workRequest, .heartbeat, .error, .shutdown, .statusRequest,
            .status, .ack, .idle, .trialResult:
            []
        }
    }

    /// Fills the tensor fields of a body decoded from the envelope (where they are empty).
    /// `tensors` holds exactly the schema's names with the schema's dtypes.
    mutating func attach(_ tensors: [String: TensorPayload]) {
        func floats(_ name: String, optional: Bool = false) -> [Float] {
            if optional && tensors[name] == nil { return [] }
            guard case .float32(let a)? = tensors[name] else { preconditionFailure("schema violated for '\(name)'") }
            return a
        }
        func ints(_ name: String) -> [Int32] {
            guard case .int32(let a)? = tensors[name] else { preconditionFailure("schema violated for '\(name)'") }
            return a
        }
        switch self {
        case .trainTask(var t):
            t.phi = floats("phi", optional: true)
            t.lambdaHat = floats("lambda_hat", optional: true)
            t.weights = floats("w", optional: true)
            t.lambda = floats("lambda", optional: true)
            self = .trainTask(t)
        case .validTask(var t):
            t.phi = floats("phi", optional: true)
            t.lambdaHat = floats("lambda_hat")
            t.weights = floats("w", optional: true)
            self = .validTask(t)
        case .gradient(var g):
            g.gradPhi = floats("grad_phi", optional: true)
            g.gradW = floats("grad_w", optional: true)
            g.lambdas = floats("lambda")
            g.indices = ints("indices")
            self = .gradient(g)
        case .hypergradient(var h):
            h.gradLambda = floats("grad_lambda", optional: true)
            h.gradW = floats("grad_w", optional: true)
            self = .hypergradient(h)
        case .trialTask(var t):
            t.lambda = floats("lambda")
            self = .trialTask(t)
        case .hello, .welcome, .workRequest, .heartbeat, .error, .shutdown, .statusRequest,
            .status, .ack, .idle, .trialResult:
            break
        }
    }
}
