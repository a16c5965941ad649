import ArgumentParser
import Datasets
import Settings

/// `--data DIR`: where the MNIST files are.
struct DataOption: ParsableArguments {
    @Option(help: "Data directory (default: $HYPERTRAIN_DATA or data/mnist).")
    var data: String?

    static let settings: [String: SettingsFile.Kind] = ["data": .text]

    /// The directory to read.
    var directory: String { data ?? MNISTFetcher.defaultDirectory }
}
