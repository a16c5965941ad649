import Foundation
import HyperOpt
import Settings

/// The resolved configuration as a settings file next to the run's summary
/// (`summary.json` → `summary.config.yaml`), written before the run starts so that a killed run
/// has it too; `hypertrain run --config` of it repeats the run.
enum ResolvedSettings {
    /// `modelSpec`: an external model's `--model-spec` file, written with its scope (the
    /// configuration holds the layout, not the file the initial weights came from).
    static func write(_ config: ExperimentConfig, besideSummary summary: String?, modelSpec: String? = nil) throws {
        guard let summary else { return }
        let path = ExperimentSettings.companionPath(ofSummary: summary)
        do {
            let url = URL(fileURLWithPath: path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            var text = ExperimentSettings.resolvedFile(config)
            if let external = config.external, let modelSpec {
                let absolute = URL(fileURLWithPath: modelSpec).standardizedFileURL.path
                text += "# An external model (docs/sdk.md): `hypertrain coordinator --config THIS_FILE` repeats it.\n"
                text += "model-spec: \"\(absolute)\"\nmodel-scope: \(external.scope.rawValue)\n"
            }
            try text.write(to: url, atomically: true, encoding: .utf8)
        } catch {
            throw CommandError("cannot write the resolved settings to \(path): \(error.localizedDescription)")
        }
    }
}
