import Foundation
import SystemIO

/// Reads back a JSON Lines metrics file, for example to resume a run from its last logged step.
public enum JSONLinesReader {
    /// The records in the JSON Lines file at `path`, in file order, each decoded as `T` by
    /// `JSONDecoder`.
    ///
    /// Empty lines are skipped. A last line without a trailing newline is treated as the
    /// remains of an interrupted write and ignored if it does not decode; any other line that
    /// does not decode is an error.
    ///
    /// - Throws: ``TelemetryError`` if the file cannot be read, ``JSONLinesError`` if a complete
    ///   line does not decode as `T`.
    public static func read<T: Decodable>(_ type: T.Type, path: String) throws -> [T] {
        try parse(type, SystemCall.readFile(path))
    }

    /// The records in JSON Lines `bytes`, with the same rules as ``read(_:path:)``.
    public static func parse<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws(JSONLinesError) -> [T] {
        let decoder = JSONDecoder()
        var values: [T] = []
        var start = 0
        var lineNumber = 0
        while start < bytes.count {
            lineNumber += 1
            let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n"))
            let end = newline ?? bytes.count
            let line = bytes[start..<end]
            start = end + 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            do {
                values.append(try decoder.decode(T.self, from: Data(line)))
            } catch {
                if newline == nil { break }  // torn final line
                throw JSONLinesError(line: lineNumber, reason: String(describing: error))
            }
        }
        return values
    }
}

/// A complete line of a JSON Lines file that does not decode.
public struct JSONLinesError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The 1-based line number.
    public let line: Int
    /// JSONDecoder's explanation.
    public let reason: String

    /// `line N: reason`.
    public var description: String { "line \(line): \(reason)" }
}
