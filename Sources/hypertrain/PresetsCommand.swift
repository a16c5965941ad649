import ArgumentParser
import Foundation
import HyperOpt
import Settings

/// `hypertrain presets [--write DIR]`: the built-in presets as settings files.
struct PresetsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "presets",
        abstract: "List the built-in presets, or write them as settings files (presets/NAME.yaml).",
        discussion: "The presets are built into the binary (Sources/HyperOpt/StandardConfigs.swift); the files in presets/ are generated from them (`hypertrain presets --write presets`), and `--config presets/NAME.yaml` resolves exactly as `--preset NAME`. A test fails when a file differs.")

    @Option(help: ArgumentHelp("Write NAME.yaml for every preset into this directory (created if missing).", valueName: "dir"))
    var write: String?

    func run() throws {
        for (name, _) in StandardConfigs.benchmarks {
            let text = ExperimentSettings.presetFile(name: name)!
            guard let write else {
                print("# \(name)\n" + text.split(separator: "\n").filter { !$0.hasPrefix("#") }.joined(separator: "\n"))
                continue
            }
            try FileManager.default.createDirectory(atPath: write, withIntermediateDirectories: true)
            let path = (write as NSString).appendingPathComponent(name + ".yaml")
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            print("wrote \(path)")
        }
    }
}
