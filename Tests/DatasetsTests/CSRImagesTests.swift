import Datasets
import Testing

@Suite struct CSRImagesTests {
    static let n = 12
    static let pixels = IDXFixture.pixels(count: n, seed: 9)
    static let labels = IDXFixture.labels(count: n, seed: 4)

    static func data() throws -> LabeledImages {
        LabeledImages(
            images: try IDXReader.parseImages(IDXFixture.imagesFile(pixels, n: n), name: "x"),
            labels: labels)
    }

    static func denseRow(_ r: Int) -> [Float] { pixels[r * 784 ..< (r + 1) * 784].map { Float($0) / 255 } }

    @Test("the CSR arrays describe exactly the dense pixels, columns ascending")
    func matchesDense() throws {
        let images = try Self.data().images
        #expect(images.rowStart.count == Self.n + 1)
        for r in 0 ..< Self.n {
            let lo = Int(images.rowStart[r]), hi = Int(images.rowStart[r + 1])
            let cols = images.colIndex[lo ..< hi].map(Int.init)
            #expect(cols == cols.sorted() && Set(cols).count == cols.count)
            let dense = Self.denseRow(r)
            #expect(cols == dense.indices.filter { dense[$0] != 0 })
            #expect(Array(images.values[lo ..< hi]) == cols.map { dense[$0] })
            #expect(images.dense(row: r) == dense)
        }
        #expect(images.values.allSatisfy { $0 > 0 && $0 <= 1 })
        #expect(images.values.contains(1))
        let zeros = Self.pixels.filter { $0 == 0 }.count
        #expect(abs(images.density - Double(Self.pixels.count - zeros) / Double(Self.pixels.count)) < 1e-12)
    }

    @Test("a slice keeps its rows and labels in order with offsets rebased to zero")
    func slice() throws {
        let data = try Self.data()
        let part = data.slice(3 ..< 8)
        #expect(part.count == 5)
        #expect(part.images.rowStart.first == 0)
        #expect(part.labels == Array(Self.labels[3 ..< 8]))
        for r in 0 ..< 5 { #expect(part.dense(row: r) == Self.denseRow(3 + r)) }
        #expect(data.slice(4 ..< 4).count == 0)
        #expect(data.slice(0 ..< Self.n).images.values == data.images.values)
    }

    @Test("the label histogram counts each digit")
    func histogram() throws {
        let histogram = try Self.data().labelHistogram
        #expect(histogram.reduce(0, +) == Self.n)
        for d in 0 ..< 10 { #expect(histogram[d] == Self.labels.filter { $0 == d }.count) }
    }

    @Test("the fingerprint is FNV-1a of count, columns, labels and pixel bytes")
    func fingerprint() throws {
        let data = try Self.data()
        let expected = referenceFNV1a([littleEndian(UInt64(Self.n)), littleEndian(784), Self.labels, Self.pixels])
        #expect(data.fingerprint == expected)
        var other = Self.pixels
        other[5 * 784 + 100] ^= 1
        let changed = LabeledImages(images: try IDXReader.parseImages(IDXFixture.imagesFile(other, n: Self.n), name: "y"),
                                    labels: Self.labels)
        #expect(changed.fingerprint != data.fingerprint)
    }
}
