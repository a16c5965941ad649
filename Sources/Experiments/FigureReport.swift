import HyperOpt
import Foundation
import Telemetry

/// How much compute a reproduction spends.
public enum ExperimentScale: String, Sendable, Codable, CaseIterable {
    /// Seconds: every code path once, for the test suite (the numbers mean little).
    case smoke
    /// A few minutes on 2 cores: the shape of the figure.
    case quick
    /// The paper's setting, or the closest that fits a few hours (each figure says which).
    case full
}

/// What every reproduction needs from its caller.
public struct ExperimentContext: Sendable {
    /// MNIST directory.
    public var dataDirectory: String
    /// Where the CSV, PNG and summary go.
    public var outputDirectory: String
    /// Compute budget.
    public var scale: ExperimentScale
    /// Run seed.
    public var seed: UInt64
    /// Trials evaluated at once (threads for cross-validation grids, worker processes for studies).
    public var parallel: Int
    /// The `hypertrain` executable (trial workers of the study baselines are started from it).
    public var executable: String
    /// Progress lines.
    public var log: @Sendable (String) -> Void
    /// The recipe of the hyper-training runs (`.stable`: Hypertrain's default; the figures
    /// that compare with the paper's form run that too, labelled "paper's form").
    public var recipe: Recipe = .stable

    /// - Parameters: see the properties.
    public init(dataDirectory: String, outputDirectory: String, scale: ExperimentScale, seed: UInt64 = 1,
                parallel: Int = 2, executable: String, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.dataDirectory = dataDirectory
        self.outputDirectory = outputDirectory
        self.scale = scale
        self.seed = seed
        self.parallel = max(parallel, 1)
        self.executable = executable
        self.log = log
    }

    /// `smoke`, `quick` or `full` value by scale.
    public func pick<T>(smoke: T, quick: T, full: T) -> T {
        switch scale {
        case .smoke: smoke
        case .quick: quick
        case .full: full
        }
    }

    /// A path inside the output directory.
    public func path(_ name: String) -> String { (outputDirectory as NSString).appendingPathComponent(name) }
}

/// What a reproduction produced: the tables behind the figure, the headline numbers, and the
/// paper's claims to read them against.
public struct FigureReport: Sendable {
    /// Figure name (`fig4`, …): also the PNG's base name.
    public let name: String
    /// One-line title for the plot.
    public let title: String
    /// The settings actually used, in words (printed and stored).
    public var settings: [String] = []
    /// CSV files by base name (`fig4_curve` → `fig4_curve.csv`).
    public var tables: [(name: String, table: CSVTable)] = []
    /// Headline numbers for the summary JSON.
    public var numbers: [(String, JSONRecord.Value)] = []
    /// The paper's claims next to ours, one line each (printed and stored).
    public var comparison: [String] = []
    /// Seconds spent computing.
    public var seconds = 0.0

    /// An empty report.
    public init(name: String, title: String) {
        self.name = name
        self.title = title
    }

    /// Writes every CSV and `NAME_summary.json` into `directory`; returns the paths written.
    public func write(into directory: String, scale: ExperimentScale) throws -> [String] {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var written: [String] = []
        for (base, table) in tables {
            let path = (directory as NSString).appendingPathComponent(base + ".csv")
            try table.write(to: path)
            written.append(path)
        }
        let summaryPath = (directory as NSString).appendingPathComponent(name + "_summary.json")
        let summary = JSONRecord([
            ("figure", name),
            ("title", title),
            ("scale", scale.rawValue),
            ("seconds", seconds),
            ("settings", settings),
            ("numbers", JSONRecord(numbers)),
            ("comparison", comparison),
            ("csv", tables.map { $0.name + ".csv" }),
        ])
        try SummaryWriter.write(summary, to: summaryPath)
        written.append(summaryPath)
        return written
    }
}
