import Foundation
import HyperOpt
import Settings

/// The resolved configuration as a settings file next to the run's summary
/// (`summary.json` → `summary.config.yaml`), written before the run starts so that a killed run
/// has it too; `hypertrain run --config` of it repeats the run.
enum ResolvedSettings {
    static func write(_ config: ExperimentConfig, besideSummary summary: String?) throws {
        guard let summary else { return }
        let path = ExperimentSettings.companionPath(ofSummary: summary)
        do {
            let url = URL(fileURLWithPath: path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try ExperimentSettings.resolvedFile(config).write(to: url, atomically: true, encoding: .utf8)
        } catch {
            throw CommandError("cannot write the resolved settings to \(path): \(error.localizedDescription)")
        }
    }
}
