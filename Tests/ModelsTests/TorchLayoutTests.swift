import Testing
@testable import Models

/// `MLPShape.torchTensors`: the flat `[in, out]` blocks become `nn.Linear` `[out, in]`
/// weights named as in `nn.Sequential(Linear, ReLU, Linear, …)`, and back.
@Suite struct TorchLayoutTests {
    @Test("names, shapes and the transpose: weight[o][i] is the flat W[i, o]")
    func layout() throws {
        let shape = MLPShape([3, 4, 2])
        let w = (0..<shape.parameterCount).map { Float($0) }
        let tensors = shape.torchTensors(w)
        #expect(tensors.map(\.name) == ["0.weight", "0.bias", "2.weight", "2.bias"])
        #expect(tensors.map(\.tensor.shape) == [[4, 3], [4], [2, 4], [2]])
        for l in 0..<shape.layerCount {
            let (fanIn, fanOut) = (shape.sizes[l], shape.sizes[l + 1])
            let weight = tensors[2 * l].tensor.values
            for i in 0..<fanIn {
                for o in 0..<fanOut {
                    #expect(weight[o * fanIn + i] == w[shape.weightOffset[l] + i * fanOut + o])
                }
            }
            #expect(tensors[2 * l + 1].tensor.values == Array(w[shape.biasOffset[l] ..< shape.biasOffset[l] + fanOut]))
        }
    }

    @Test("flatWeights inverts torchTensors through a safetensors file", arguments: [[784, 10], [5, 3, 4, 2]])
    func roundTrip(sizes: [Int]) throws {
        let shape = MLPShape(sizes)
        let w = (0..<shape.parameterCount).map { Float($0 % 97) * 0.5 - 7 }
        let file = try SafeTensors(decoding: SafeTensors(tensors: shape.torchTensors(w)).encoded())
        #expect(shape.flatWeights(from: file) == w)
    }

    @Test("a file for another shape gives nil")
    func wrongShape() {
        let file = SafeTensors(tensors: MLPShape([5, 3]).torchTensors([Float](repeating: 0, count: 18)))
        #expect(MLPShape([5, 4]).flatWeights(from: file) == nil)
        #expect(MLPShape([5, 3, 2]).flatWeights(from: file) == nil)
    }
}
