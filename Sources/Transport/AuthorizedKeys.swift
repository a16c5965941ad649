/// The CURVE client public keys a server accepts (checked by `ZAPAuthenticator`).
///
/// File format: one Z85 public key per line, optionally written `public=<key>` (so `.pub`
/// files can be concatenated) and optionally followed by whitespace and a label
/// (`<key> worker-3`). Blank lines and lines starting with `#` are ignored. (`#` is a Z85
/// character, but no valid key starts with it: a 5-character group starting with `#` or `$`
/// exceeds 32 bits.) Any other line is an error naming its number.
public struct AuthorizedKeys: Sendable, Equatable {
    /// The accepted public keys, Z85.
    public private(set) var keys: Set<String>

    /// A set from keys in memory; each must be a valid Z85 key.
    public init(_ keys: some Sequence<String>) throws(KeyFileError) {
        var set = Set<String>()
        for (i, key) in keys.enumerated() {
            guard Z85.isValidKey(key) else {
                throw KeyFileError(path: "<memory>", line: i + 1, reason: "not a 40-character Z85 public key")
            }
            set.insert(key)
        }
        self.keys = set
    }

    /// Reads an authorized-keys file.
    public static func load(from path: String) throws(KeyFileError) -> AuthorizedKeys {
        try parse(CurveKeyPair.readText(path), source: path)
    }

    /// Parses authorized-keys text; `source` names it in errors.
    public static func parse(_ text: String, source: String) throws(KeyFileError) -> AuthorizedKeys {
        var keys: [String] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let words = raw.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard let first = words.first else { continue }
            if first.hasPrefix("#") { continue }
            var candidate = String(first)
            if candidate.hasPrefix("public=") { candidate.removeFirst("public=".count) }
            if Z85.isValidKey(candidate) {
                keys.append(candidate)
            } else {
                throw KeyFileError(path: source, line: i + 1,
                                   reason: "not a Z85 public key (\(Z85.problem(candidate) ?? "invalid")); comments start with #")
            }
        }
        return try AuthorizedKeys(keys)
    }

    /// Whether `publicKey` (Z85) is accepted.
    public func contains(_ publicKey: String) -> Bool { keys.contains(publicKey) }

    /// Number of distinct keys.
    public var count: Int { keys.count }

    /// Whether no key is accepted (every client will be refused).
    public var isEmpty: Bool { keys.isEmpty }
}
