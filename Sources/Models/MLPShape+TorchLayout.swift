/// The flat weight vector as PyTorch `nn.Linear` tensors: layer `l` is module `2l` of
/// `nn.Sequential(Linear, ReLU, Linear, …)`, its `weight` `[out, in]` (the transpose of the
/// flat `[in, out]` block) and its `bias` `[out]`.
extension MLPShape {
    /// The names and tensors of `w` in `nn.Sequential` order: `"0.weight"`, `"0.bias"`,
    /// `"2.weight"`, ….
    /// - Precondition: `w.count == parameterCount`.
    public func torchTensors(_ w: [Float]) -> [(name: String, tensor: SafeTensors.Tensor)] {
        precondition(w.count == parameterCount, "torchTensors: \(w.count) weights for a \(self) model of \(parameterCount)")
        var out: [(name: String, tensor: SafeTensors.Tensor)] = []
        for l in 0..<layerCount {
            let (fanIn, fanOut) = (sizes[l], sizes[l + 1])
            var transposed = [Float](repeating: 0, count: fanIn * fanOut)
            let base = weightOffset[l]
            for i in 0..<fanIn {
                for o in 0..<fanOut { transposed[o * fanIn + i] = w[base + i * fanOut + o] }
            }
            out.append(("\(2 * l).weight", SafeTensors.Tensor(shape: [fanOut, fanIn], values: transposed)))
            out.append(("\(2 * l).bias", SafeTensors.Tensor(shape: [fanOut], values: Array(w[biasOffset[l] ..< biasOffset[l] + fanOut]))))
        }
        return out
    }

    /// The flat weight vector from the tensors ``torchTensors(_:)`` names; nil when one is
    /// missing or has the wrong shape.
    public func flatWeights(from file: SafeTensors) -> [Float]? {
        var w = [Float](repeating: 0, count: parameterCount)
        for l in 0..<layerCount {
            let (fanIn, fanOut) = (sizes[l], sizes[l + 1])
            guard let weight = file["\(2 * l).weight"], weight.shape == [fanOut, fanIn],
                  let bias = file["\(2 * l).bias"], bias.shape == [fanOut] else { return nil }
            let base = weightOffset[l]
            for i in 0..<fanIn {
                for o in 0..<fanOut { w[base + i * fanOut + o] = weight.values[o * fanIn + i] }
            }
            w.replaceSubrange(biasOffset[l] ..< biasOffset[l] + fanOut, with: bias.values)
        }
        return w
    }
}
