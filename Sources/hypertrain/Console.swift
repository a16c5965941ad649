import Foundation
import Telemetry

/// Terminal output helpers.
enum Console {
    /// Logs a line as it is (the command's own `run: `, `coordinator: `… prefix included) at
    /// `notice`, through swift-log's handler, to standard error.
    static func error(_ line: String) {
        Log.logger("").notice("\(line)")
    }
    /// Writes a line to standard output immediately (unbuffered).
    static func out(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}
