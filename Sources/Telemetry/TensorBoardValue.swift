/// One tagged value of a TensorBoard summary (`Summary.Value` in tensorflow's `summary.proto`).
public enum TensorBoardValue: Sendable, Equatable {
    /// A point on a scalar chart (`simple_value`), e.g. `loss/train`.
    case scalar(tag: String, value: Float)
    /// A distribution (`histo`), e.g. the components of λ̂.
    case histogram(tag: String, TensorBoardHistogram)

    /// The tag the value is charted under.
    public var tag: String {
        switch self {
        case .scalar(let tag, _), .histogram(let tag, _): tag
        }
    }
}
