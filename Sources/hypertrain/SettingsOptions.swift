import ArgumentParser
import Settings

/// `--config FILE`: the command's flags from a YAML settings file (README, "Settings files").
/// The file is read before parsing (``SettingsArguments/expand(_:)``); this declaration puts the
/// flag in `--help`.
struct SettingsFileOption: ParsableArguments {
    @Option(help: ArgumentHelp("YAML settings file: this command's flags as `name: value` (names without --; e.g. presets/fig5.yaml, or a run's summary.config.yaml or summary JSON). Flags given on the command line override it.", valueName: "file"))
    var config: String?
}

/// A command that takes `--config`: the flags a settings file may give and their types.
protocol SettingsCommand: ParsableCommand {
    static var settings: [String: SettingsFile.Kind] { get }
}

/// Turns `--config FILE` into the flags it stands for, before ArgumentParser sees them.
enum SettingsArguments {
    /// `arguments` (without the executable) with the settings file's flags inserted after the
    /// subcommand's name; a key also given on the command line is left out, so the command
    /// line wins (also for repeatable flags such as `--bind`). Unchanged without `--config`.
    static func expand(_ arguments: [String]) throws -> [String] {
        guard let configIndex = arguments.firstIndex(where: { $0 == "--config" || $0.hasPrefix("--config=") }) else { return arguments }
        guard let name = arguments.first,
              let command = Hypertrain.configuration.subcommands.first(where: { $0._commandName == name }),
              let settingsCommand = command as? any SettingsCommand.Type else {
            return arguments      // ArgumentParser reports --config as unknown to this command
        }
        let path: String
        if arguments[configIndex] == "--config" {
            guard configIndex + 1 < arguments.count else { return arguments }   // ArgumentParser: missing value
            path = arguments[configIndex + 1]
        } else {
            path = String(arguments[configIndex].dropFirst("--config=".count))
        }
        let file: SettingsFile
        do {
            file = try SettingsFile.load(path: path, schema: settingsCommand.settings)
        } catch {
            throw ValidationError(error.description)
        }
        let given = Set(arguments.dropFirst().compactMap { a -> String? in
            guard a.hasPrefix("--") else { return nil }
            return String(a.dropFirst(2).prefix { $0 != "=" })
        })
        return [name] + file.arguments(overridden: given) + arguments.dropFirst()
    }
}
