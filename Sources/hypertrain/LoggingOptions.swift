import ArgumentParser
import Logging
import Settings
import Telemetry

/// `--log-level`, shared by the commands that log (`@OptionGroup var logging: LoggingOptions`).
struct LoggingOptions: ParsableArguments {
    /// swift-log's levels, by the names the flag takes.
    enum Level: String, CaseIterable, ExpressibleByArgument {
        case trace, debug, info, notice, warning, error, critical

        var logger: Logger.Level { Logger.Level(rawValue: rawValue)! }
    }

    /// The settings-file key (`log-level: warning`).
    static let settings: [String: SettingsFile.Kind] = ["log-level": .text]

    @Option(help: "Lowest level of log line written to stderr: trace, debug, info, notice, warning, error or critical.")
    var logLevel: Level = .info

    /// Installs the process's log handler at the chosen level; call first in `run()`.
    func bootstrap() {
        Log.bootstrap(level: logLevel.logger)
    }
}
