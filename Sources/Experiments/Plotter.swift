import Foundation

/// Draws a figure's PNG by running scripts/plot_experiment.py with the project's Python
/// (`.venv`, created by scripts/setup-venv.sh when missing, or `$HYPERTRAIN_PYTHON`).
public struct Plotter: Sendable {
    /// Why plotting cannot happen or failed.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public let python: String
    public let script: String

    /// Finds the repository root — the working directory or an ancestor of `executable` that
    /// holds scripts/plot_experiment.py — and its Python, setting up `.venv` when it is missing
    /// or stale (announced through `log`).
    public static func locate(executable: String, log: (String) -> Void) throws(Failure) -> Plotter {
        let fm = FileManager.default
        var roots = [fm.currentDirectoryPath]
        var dir = URL(fileURLWithPath: executable).deletingLastPathComponent()
        for _ in 0..<5 { roots.append(dir.path); dir = dir.deletingLastPathComponent() }
        guard let root = roots.first(where: { fm.fileExists(atPath: $0 + "/scripts/plot_experiment.py") }) else {
            throw Failure(description: "scripts/plot_experiment.py not found (run from the repository, or pass --no-plot)")
        }
        let script = root + "/scripts/plot_experiment.py"
        if let python = ProcessInfo.processInfo.environment["HYPERTRAIN_PYTHON"] { return Plotter(python: python, script: script) }
        let venvPython = root + "/.venv/bin/python"
        if !fm.isExecutableFile(atPath: venvPython) || !fm.fileExists(atPath: root + "/.venv/.requirements.sha256") {
            log("setting up \(root)/.venv (matplotlib) with scripts/setup-venv.sh …")
            let status = try runProcess("/bin/bash", [root + "/scripts/setup-venv.sh"])
            guard status == 0, fm.isExecutableFile(atPath: venvPython) else {
                throw Failure(description: "could not create .venv (scripts/setup-venv.sh exited \(status)); set HYPERTRAIN_PYTHON to a Python with matplotlib, or pass --no-plot")
            }
        }
        return Plotter(python: venvPython, script: script)
    }

    /// Draws `figure`'s PNG from the CSVs in `directory`; returns the PNG path.
    public func plot(figure: String, directory: String) throws(Failure) -> String {
        let status = try Self.runProcess(python, [script, figure, directory])
        guard status == 0 else { throw Failure(description: "plotting failed (\(script) exited \(status)); the CSV files are written") }
        return (directory as NSString).appendingPathComponent(figure + ".png")
    }

    private static func runProcess(_ path: String, _ arguments: [String]) throws(Failure) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        do { try p.run() } catch { throw Failure(description: "cannot start \(path): \(error.localizedDescription)") }
        p.waitUntilExit()
        return p.terminationStatus
    }
}
