/// Layer sizes of an elementary MLP `[784, h₁, …, 10]` and where each layer's parameters
/// sit in the flat weight vector `w`.
///
/// Flat order, shared by the hypernetwork's output, the optimizers, checkpoints and the wire:
/// for each layer, its weight matrix `[in, out]` row-major, then its bias.
public struct MLPShape: Sendable, Equatable, Codable, CustomStringConvertible {
    /// Units per layer, input first.
    public let sizes: [Int]
    /// Offset of layer `l`'s weight matrix in `w`.
    public let weightOffset: [Int]
    /// Offset of layer `l`'s bias in `w`.
    public let biasOffset: [Int]
    /// `D`, the length of `w`.
    public let parameterCount: Int

    /// - Precondition: at least two sizes, all positive.
    public init(_ sizes: [Int]) {
        precondition(sizes.count >= 2 && sizes.allSatisfy { $0 > 0 }, "MLPShape: bad sizes \(sizes)")
        self.sizes = sizes
        var wo: [Int] = [], bo: [Int] = [], off = 0
        for l in 0..<(sizes.count - 1) {
            wo.append(off); off += sizes[l] * sizes[l + 1]
            bo.append(off); off += sizes[l + 1]
        }
        weightOffset = wo
        biasOffset = bo
        parameterCount = off
    }

    /// Number of weight layers.
    public var layerCount: Int { sizes.count - 1 }
    /// Input dimension.
    public var inputSize: Int { sizes[0] }
    /// Output dimension (classes).
    public var outputSize: Int { sizes[sizes.count - 1] }
    /// `784-100-10` notation.
    public var description: String { sizes.map(String.init).joined(separator: "-") }

    /// Parses `784-100-10`.
    public init?(parsing text: String) {
        let parts = text.split(separator: "-").map { Int($0) }
        guard parts.count >= 2, parts.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        self.init(parts.map { $0! })
    }

    private enum CodingKeys: String, CodingKey { case sizes }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let s = try c.decode([Int].self, forKey: .sizes)
        guard s.count >= 2, s.allSatisfy({ $0 > 0 }) else {
            throw DecodingError.dataCorruptedError(forKey: .sizes, in: c, debugDescription: "bad layer sizes \(s)")
        }
        self.init(s)
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(sizes, forKey: .sizes)
    }
}
