import Testing
import Linalg

@Suite struct AlignedBufferTests {
    @Test("a new buffer is zeroed and 64-byte aligned", arguments: [0, 1, 7, 8, 1000])
    func zeroedAndAligned(n: Int) {
        let b = AlignedBuffer<Float>(count: n)
        #expect(b.count == n)
        #expect(Int(bitPattern: b.pointer) % 64 == 0)
        #expect(b.array == [Float](repeating: 0, count: n))
        let d = AlignedBuffer<Double>(count: n)
        #expect(Int(bitPattern: d.pointer) % 64 == 0)
    }

    @Test("load, subscript, zero and array round-trip the contents")
    func roundTrip() {
        let values: [Double] = [1, -2, 3.5, 0, 7]
        let b = AlignedBuffer(values)
        #expect(b.array == values)
        b[2] = 9
        #expect(b[2] == 9)
        let c = AlignedBuffer<Double>(count: 5)
        c.load(b)
        #expect(c.array == [1, -2, 9, 0, 7])
        c.zero()
        #expect(c.array == [0, 0, 0, 0, 0])
        #expect(b.array == [1, -2, 9, 0, 7])
    }

    @Test("allFinite detects NaN and ±infinity anywhere")
    func allFinite() {
        let b = AlignedBuffer<Float>(count: 19)
        #expect(b.allFinite)
        for bad in [Float.nan, .infinity, -.infinity] {
            for i in [0, 8, 18] {
                b.zero()
                b[i] = bad
                #expect(!b.allFinite, "\(bad) at \(i)")
            }
        }
        #expect([Float]().allFinite)
        #expect(![1, Double.nan].allFinite)
    }
}
