import SystemIO

/// Reads back a JSON Lines metrics file, for example to resume a run from its last logged step.
public enum JSONLinesReader {
    /// The values in the JSON Lines file at `path`, in file order.
    ///
    /// Empty lines are skipped. A last line without a trailing newline is treated as the
    /// remains of an interrupted write and ignored if it does not parse; any other line that
    /// does not parse is an error.
    ///
    /// - Throws: ``TelemetryError`` if the file cannot be read, ``JSONParseError`` if a complete line is
    ///   not JSON; its message starts with the 1-based line number and its offset counts from
    ///   the start of that line.
    public static func read(path: String) throws -> [JSONValue] {
        try parse(SystemCall.readFile(path))
    }

    /// The values in JSON Lines `bytes`, with the same rules as ``read(path:)``.
    public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> [JSONValue] {
        var values: [JSONValue] = []
        var start = 0
        var lineNumber = 0
        while start < bytes.count {
            lineNumber += 1
            let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n"))
            let end = newline ?? bytes.count
            let line = Array(bytes[start..<end])
            start = end + 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            do {
                values.append(try JSONValue(parsing: line))
            } catch {
                if newline == nil { break }  // torn final line
                throw JSONParseError(message: "line \(lineNumber): \(error.message)", offset: error.offset)
            }
        }
        return values
    }
}
