import Foundation

/// Terminal output helpers (Swift 6 forbids touching C's `stderr` global directly).
enum Console {
    /// Writes a line to standard error.
    static func error(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
    /// Writes a line to standard output immediately (unbuffered).
    static func out(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}
