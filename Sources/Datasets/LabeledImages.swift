/// Images with their labels: row `i` of `images` shows the digit `labels[i]`.
public struct LabeledImages: Sendable {
    /// The images, one CSR row each.
    public let images: CSRImages
    /// The digit shown by each image, `0…9`.
    public let labels: [UInt8]

    /// Pairs images with labels; their counts must agree (a programmer error otherwise).
    public init(images: CSRImages, labels: [UInt8]) {
        precondition(images.rows == labels.count,
                     "LabeledImages: \(images.rows) images but \(labels.count) labels")
        self.images = images
        self.labels = labels
    }

    /// Number of examples.
    public var count: Int { labels.count }

    /// The examples `range` (a contiguous block of rows), in order.
    public func slice(_ range: Range<Int>) -> LabeledImages {
        precondition(range.lowerBound >= 0 && range.upperBound <= count,
                     "LabeledImages.slice: \(range) out of 0..<\(count)")
        return LabeledImages(images: images.slice(range), labels: Array(labels[range]))
    }

    /// Example `row`'s pixels as a dense vector (see ``CSRImages/dense(row:)``).
    public func dense(row: Int) -> [Float] { images.dense(row: row) }

    /// How many examples carry each label: entry `d` counts the label `d`, `0…9`.
    public var labelHistogram: [Int] {
        var histogram = [Int](repeating: 0, count: 10)
        for label in labels { histogram[Int(label)] += 1 }
        return histogram
    }

    /// A 64-bit FNV-1a content fingerprint that hosts can compare to be sure they train on
    /// the same data. It hashes, in order: the count and the columns (each as 8 little-endian
    /// bytes), the label bytes, then every image's pixel bytes row-major (value·255 rounded,
    /// i.e. the bytes of the IDX file). Equal data give equal fingerprints on any host.
    public var fingerprint: UInt64 {
        var hasher = FNV1a()
        hash(into: &hasher)
        return hasher.value
    }

    /// Feeds this part's bytes (as described for ``fingerprint``) into `hasher`.
    func hash(into hasher: inout FNV1a) {
        hasher.update(UInt64(count))
        hasher.update(UInt64(images.cols))
        labels.withUnsafeBytes { hasher.update($0) }
        var row = [UInt8](repeating: 0, count: images.cols)
        images.rowStart.withUnsafeBufferPointer { starts in
            images.colIndex.withUnsafeBufferPointer { cols in
                images.values.withUnsafeBufferPointer { vals in
                    row.withUnsafeMutableBytes { bytes in
                        for r in 0 ..< count {
                            let lo = Int(starts[r]), hi = Int(starts[r + 1])
                            for k in lo ..< hi { bytes[Int(cols[k])] = UInt8((vals[k] * 255).rounded()) }
                            hasher.update(UnsafeRawBufferPointer(bytes))
                            for k in lo ..< hi { bytes[Int(cols[k])] = 0 }
                        }
                    }
                }
            }
        }
    }
}
