import Foundation

/// The four files of MNIST and the names each may go by on disk.
enum MNISTFile: CaseIterable {
    case trainImages, trainLabels, testImages, testLabels

    /// The dotted name of the raw file, as in the PyPI sdist and in `MNISTFetcher.expected`.
    var canonicalName: String {
        switch self {
        case .trainImages: "train-images.idx3-ubyte"
        case .trainLabels: "train-labels.idx1-ubyte"
        case .testImages: "t10k-images.idx3-ubyte"
        case .testLabels: "t10k-labels.idx1-ubyte"
        }
    }

    /// The hyphenated name used by the original distribution (`train-images-idx3-ubyte`).
    var hyphenatedName: String { canonicalName.replacingOccurrences(of: ".idx", with: "-idx") }

    /// Names to look for, in order of preference: raw dotted, raw hyphenated, then gzipped.
    var candidateNames: [String] {
        [canonicalName, hyphenatedName, canonicalName + ".gz", hyphenatedName + ".gz"]
    }

    /// The first candidate present in `directory`.
    func locate(in directory: String) throws(DatasetError) -> String {
        for name in candidateNames {
            let path = (directory as NSString).appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                return path
            }
        }
        throw .missingFile(directory: directory, tried: candidateNames)
    }
}
