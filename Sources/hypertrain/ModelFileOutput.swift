import Foundation
import Models

/// Writing safetensors files for `export` and `predict --weights-out`.
enum ModelFileOutput {
    /// `nil` when `path` may be written as a file; otherwise why not (an existing directory is
    /// never replaced).
    static func problem(writingFileAt path: String) -> String? {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            return "'\(path)' is a directory; give a file name such as \(path)/model.safetensors"
        }
        return nil
    }

    /// Writes `contents` to `path` atomically (a temporary file in the same directory, then
    /// renamed), creating missing parent directories.
    static func write(_ contents: SafeTensors, to path: String) throws {
        if let problem = problem(writingFileAt: path) { throw CommandError(problem) }
        let url = URL(fileURLWithPath: path)
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(contents.encoded()).write(to: url, options: .atomic)
        } catch {
            throw CommandError("cannot write \(path): \(error.localizedDescription)")
        }
    }
}
