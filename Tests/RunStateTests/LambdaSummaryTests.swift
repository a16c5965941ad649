import Testing
import RunState

@Suite struct LambdaSummaryTests {
    @Test("Up to three values are printed individually", arguments: [
        ([-1.2344], "λ̂=-1.234"),
        ([0.5, 2], "λ̂=(0.500, 2.000)"),
        ([1, -2, 3.14159], "λ̂=(1.000, -2.000, 3.142)"),
        ([], "λ̂=()"),
    ])
    func fewValues(lambda: [Double], text: String) {
        #expect(LambdaSummary.describe(lambda) == text)
    }

    @Test("Many values are summarized by mean and range")
    func manyValues() {
        let lambda = [-3.4, -2.0, -2.5, 0.51, -3.0, -1.3, -2.99]
        #expect(LambdaSummary.describe(lambda) == "λ̂ mean -2.10 [-3.40, 0.51] (n=7)")
        let large = [Double](repeating: -2.5, count: 7850)
        #expect(LambdaSummary.describe(large) == "λ̂ mean -2.50 [-2.50, -2.50] (n=7850)")
    }

    @Test("A NaN entry shows in the mean but not the range")
    func nanEntry() {
        #expect(LambdaSummary.describe([1, 2, .nan, 4]) == "λ̂ mean nan [1.00, 4.00] (n=4)")
        #expect(LambdaSummary.describe([.nan]) == "λ̂=nan")
    }

    @Test("Another symbol names a λ that is not λ̂")
    func symbol() {
        #expect(LambdaSummary.describe([-1.5], symbol: "λ") == "λ=-1.500")
        #expect(LambdaSummary.describe([1, 2], symbol: "λ") == "λ=(1.000, 2.000)")
        #expect(LambdaSummary.describe([1, 2, 3, 4], symbol: "λ") == "λ mean 2.50 [1.00, 4.00] (n=4)")
    }
}
