/// An external model's layout on the wire (`hypertrain.v1.ModelSpec`, docs/protocol.md §12):
/// named tensors in flat-layout order and the run's scope.
public struct ModelSpec: Sendable, Equatable {
    /// One tensor: its name in the user's model and its shape (outermost first).
    public struct Tensor: Sendable, Equatable {
        public var name: String
        public var shape: [UInt64]
        /// - Parameters: see the properties.
        public init(name: String, shape: [UInt64]) {
            self.name = name
            self.shape = shape
        }
    }

    /// The tensors, in the order they are concatenated into w.
    public var tensors: [Tensor]
    /// "global" | "per-tensor" | "per-weight" | "per-output-unit".
    public var scope: String

    /// - Parameters: see the properties.
    public init(tensors: [Tensor], scope: String = "") {
        self.tensors = tensors
        self.scope = scope
    }
}
