/// Why a settings file was refused; every message names the file, and the key where there is one.
public enum SettingsFileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file does not exist or cannot be read.
    case unreadable(path: String)
    /// Not YAML (the parser's message).
    case syntax(path: String, detail: String)
    /// The top level is not a mapping of flag names to values.
    case notAMapping(path: String)
    /// A `.json` file that is not a run summary with a `config` object.
    case notASummary(path: String)
    /// A key that is not a flag of the command (`suggestion`: the flag name it probably meant).
    case unknownKey(path: String, key: String, line: Int, suggestion: String?)
    /// A value of the wrong type.
    case wrongType(path: String, key: String, line: Int, expected: SettingsFile.Kind, got: String)
    /// A key given twice.
    case duplicateKey(path: String, key: String, line: Int)

    public var description: String {
        switch self {
        case .unreadable(let path):
            return "settings file \(path): cannot read it"
        case .syntax(let path, let detail):
            return "settings file \(path): not valid YAML: \(detail)"
        case .notAMapping(let path):
            return "settings file \(path): expected a mapping of flag names to values (e.g. `steps: 4000`)"
        case .notASummary(let path):
            return "settings file \(path): a .json settings file must be a run summary (`--summary F`) with a `config` object"
        case .unknownKey(let path, let key, let line, let suggestion):
            return "settings file \(path)\(Self.at(line)): unknown key '\(key)'"
                + (suggestion.map { " (did you mean '\($0)'? keys are the flag names without --)" } ?? " (not a flag of this command; keys are the flag names without --)")
        case .wrongType(let path, let key, let line, let expected, let got):
            return "settings file \(path)\(Self.at(line)): '\(key)' must be \(Self.describe(expected)), got \(got)"
        case .duplicateKey(let path, let key, let line):
            return "settings file \(path)\(Self.at(line)): key '\(key)' is given twice"
        }
    }

    private static func at(_ line: Int) -> String { line > 0 ? ", line \(line)" : "" }

    private static func describe(_ kind: SettingsFile.Kind) -> String {
        switch kind {
        case .integer: "a whole number"
        case .number: "a number"
        case .text: "a value"
        case .flag: "true or false"
        case .texts: "a value or a list of values"
        }
    }
}
