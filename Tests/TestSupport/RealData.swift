import Foundation

/// Where the real MNIST lives for the tests: `$HYPERTRAIN_DATA`, else `data/mnist` under the
/// package root. CI fetches it first; when it is absent the real-data tests fail with a
/// message saying how to get it, they do not skip.
public enum RealData {
    /// The four raw IDX files a test run needs.
    public static let fileNames = ["train-images.idx3-ubyte", "train-labels.idx1-ubyte",
                                   "t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte"]

    /// The package root: the nearest directory above this file holding Package.swift.
    public static let packageRoot: String = {
        var dir = (#filePath as NSString).deletingLastPathComponent
        while dir != "/" && !dir.isEmpty {
            if FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent("Package.swift")) {
                return dir
            }
            dir = (dir as NSString).deletingLastPathComponent
        }
        return FileManager.default.currentDirectoryPath
    }()

    /// `$HYPERTRAIN_DATA` when set and not empty, else `<package root>/data/mnist`.
    public static var directory: String {
        if let dir = ProcessInfo.processInfo.environment["HYPERTRAIN_DATA"], !dir.isEmpty { return dir }
        return (packageRoot as NSString).appendingPathComponent("data/mnist")
    }

    /// The files of ``fileNames`` missing from ``directory``.
    public static var missingFiles: [String] {
        fileNames.filter { !FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent($0)) }
    }

    /// `true` when the four raw files are present (not verified).
    public static var isPresent: Bool { missingFiles.isEmpty }

    /// What a failing test says when the files are missing.
    public static var missingMessage: String {
        "MNIST not found in \(directory) (missing \(missingFiles.joined(separator: ", "))): "
            + "run `make data` or `scripts/fetch-mnist.sh` first (or set HYPERTRAIN_DATA)"
    }

    /// The MNIST directory, or an error (which fails the test) saying how to fetch it.
    public static func requireDirectory() throws -> String {
        guard isPresent else { throw Missing(description: missingMessage) }
        return directory
    }

    /// The real data set is not where the tests look for it.
    public struct Missing: Error, CustomStringConvertible {
        public let description: String
    }
}
