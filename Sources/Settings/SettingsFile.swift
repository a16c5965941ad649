import Foundation
import HyperOpt
import Yams

/// A settings file (`--config FILE`): the flags of one command as a YAML mapping, keyed by the
/// flag's name without `--` (`steps: 4000`, `lambda-init: -3.5`, `bind: [tcp://0.0.0.0:5555]`,
/// `resume: true`). A run summary (`.json` with a top-level `config` object) is read as the
/// settings of its resolved configuration.
///
/// Parsing checks every key against the command's `schema` (unknown key, wrong type and
/// duplicate key are ``SettingsFileError``s naming the key and the file) and turns the file into
/// the command-line arguments it stands for, so a file is exactly a list of flags: the recipe
/// counts its settings as given, and the command line overrides it key by key.
public struct SettingsFile: Sendable, Equatable {
    /// The type of a flag's value.
    public enum Kind: Sendable, Equatable {
        /// A whole number (`steps: 4000`).
        case integer
        /// A number (`sigma: 0.5`, `phi-lr: 3e-4`; whole numbers too).
        case number
        /// Any scalar, taken as written (`layers: 784-100-10`, `box: -10:2`, `scope: per-class`).
        case text
        /// A flag without a value: `true` gives it, `false` leaves it out.
        case flag
        /// A repeatable option: a list of scalars, or one scalar.
        case texts
    }

    /// One setting as read: its key, the line it is on (1-based; 0 for a summary's config) and
    /// its value as the flag's text (one element per occurrence; a flag's is `true` or `false`).
    public struct Entry: Sendable, Equatable {
        public let key: String
        public let line: Int
        public let values: [String]
        public let kind: Kind
    }

    /// The file's path (for messages).
    public let path: String
    /// The settings in file order.
    public let entries: [Entry]

    /// Reads and checks the file at `path` against `schema` (flag name → kind).
    public static func load(path: String, schema: [String: Kind]) throws(SettingsFileError) -> SettingsFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unreadable(path: path)
        }
        guard let text = String(data: data, encoding: .utf8) else { throw .syntax(path: path, detail: "not UTF-8 text") }
        if path.hasSuffix(".json") { return try summary(text, path: path, schema: schema) }
        return try parse(text, path: path, schema: schema)
    }

    /// Parses YAML `text` (the contents of `path`) against `schema`.
    public static func parse(_ text: String, path: String, schema: [String: Kind]) throws(SettingsFileError) -> SettingsFile {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw .syntax(path: path, detail: "\(error)")
        }
        guard let root else { return SettingsFile(path: path, entries: []) }      // an empty file
        guard let mapping = root.mapping else { throw .notAMapping(path: path) }
        var entries: [Entry] = []
        for (keyNode, valueNode) in mapping {
            let line = keyNode.mark?.line ?? 0
            guard let key = keyNode.scalar?.string else { throw .syntax(path: path, detail: "line \(line): a key must be a flag name") }
            if entries.contains(where: { $0.key == key }) { throw .duplicateKey(path: path, key: key, line: line) }
            guard let kind = schema[key] else { throw .unknownKey(path: path, key: key, line: line, suggestion: suggestion(for: key, in: schema)) }
            entries.append(Entry(key: key, line: line, values: try values(of: valueNode, kind: kind, key: key, line: line, path: path), kind: kind))
        }
        return SettingsFile(path: path, entries: entries)
    }

    /// A run summary's `config` object as settings (``ExperimentSettings/entries(of:)``).
    static func summary(_ text: String, path: String, schema: [String: Kind]) throws(SettingsFileError) -> SettingsFile {
        let config: ExperimentConfig
        do {
            guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                  let inner = object["config"] as? [String: Any] else { throw SettingsFileError.notASummary(path: path) }
            config = try JSONDecoding.decode(ExperimentConfig.self, from: try JSONSerialization.data(withJSONObject: inner))
        } catch let error as SettingsFileError {
            throw error
        } catch {
            throw .notASummary(path: path)
        }
        var entries: [Entry] = []
        for (key, value) in ExperimentSettings.entries(of: config) {
            guard let kind = schema[key] else { throw .unknownKey(path: path, key: key, line: 0, suggestion: nil) }
            entries.append(Entry(key: key, line: 0, values: [value], kind: kind))
        }
        return SettingsFile(path: path, entries: entries)
    }

    /// The arguments the file stands for, `--key=value` (so negative numbers need no care),
    /// leaving out the keys in `overridden` (those given on the command line).
    public func arguments(overridden: Set<String> = []) -> [String] {
        entries.filter { !overridden.contains($0.key) }.flatMap { e -> [String] in
            e.kind == .flag ? (e.values == ["true"] ? ["--" + e.key] : []) : e.values.map { "--\(e.key)=\($0)" }
        }
    }

    private static func values(of node: Node, kind: Kind, key: String, line: Int, path: String) throws(SettingsFileError) -> [String] {
        func wrong(_ got: String) -> SettingsFileError { .wrongType(path: path, key: key, line: line, expected: kind, got: got) }
        if kind == .texts, let sequence = node.sequence {
            return try sequence.map { (item: Node) throws(SettingsFileError) -> String in
                guard let s = item.scalar else { throw wrong("a nested list or mapping") }
                return s.string
            }
        }
        guard let scalar = node.scalar else { throw wrong(node.mapping != nil ? "a mapping" : "a list") }
        let text = scalar.string
        let quoted = scalar.style == .singleQuoted || scalar.style == .doubleQuoted
        switch kind {
        case .text, .texts:
            return [text]
        case .integer:
            guard !quoted, let v = Int64(text) else { throw wrong(quoted ? "the string \"\(text)\"" : "'\(text)'") }
            return [String(v)]
        case .number:
            guard !quoted, Double(text)?.isFinite == true else { throw wrong(quoted ? "the string \"\(text)\"" : "'\(text)'") }
            return [text]
        case .flag:
            switch quoted ? "" : text {
            case "true", "false": return [text]
            default: throw wrong(quoted ? "the string \"\(text)\"" : "'\(text)'")
            }
        }
    }

    /// The schema key `key` was probably meant to be (snake_case or camelCase of a flag name).
    private static func suggestion(for key: String, in schema: [String: Kind]) -> String? {
        var kebab = ""
        for ch in key {
            if ch == "_" { kebab.append("-") } else if ch.isUppercase { kebab += "-" + ch.lowercased() } else { kebab.append(ch) }
        }
        return schema[kebab] != nil ? kebab : nil
    }
}
