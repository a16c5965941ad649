private import CZeroMQ
import Foundation
import SystemIO
#if canImport(Glibc)
import Glibc
#endif

/// A CurveZMQ (Curve25519) key pair in Z85 text, 40 characters each.
///
/// Files written by `write(to:name:)` (what `hypertrain keygen` produces):
/// - `NAME.key`, mode 0600 — the pair; give it only to the process that owns the identity:
///   ```
///   # Hypertrain CURVE key pair "NAME" (Z85). Keep this file secret.
///   public=<40 characters>
///   secret=<40 characters>
///   ```
/// - `NAME.pub` — the public half alone, one line `public=<40 characters>`; copy it to the
///   peers (servers list client keys in their authorized-keys file; clients need the
///   server's public key).
///
/// `description` shows only the public key, so a key pair can be logged safely.
public struct CurveKeyPair: Sendable, Equatable, CustomStringConvertible {
    /// The public key, Z85.
    public let publicKey: String
    /// The secret key, Z85. Never log it.
    public let secretKey: String

    /// A pair from Z85 text; checks both formats and that the public key belongs to the secret.
    public init(publicKey: String, secretKey: String) throws(KeyFileError) {
        guard Z85.isValidKey(publicKey) else {
            throw KeyFileError(path: "<memory>", reason: "public key is not 40 valid Z85 characters")
        }
        guard Z85.isValidKey(secretKey) else {
            throw KeyFileError(path: "<memory>", reason: "secret key is not 40 valid Z85 characters")
        }
        guard (try? Self.derivePublic(fromSecret: secretKey)) == publicKey else {
            throw KeyFileError(path: "<memory>", reason: "public key does not belong to the secret key")
        }
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    private init(unchecked publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// Shows the public key only.
    public var description: String { "CurveKeyPair(public: \(publicKey))" }

    /// A fresh random key pair (zmq_curve_keypair). Throws `.notSupported` without CURVE.
    public static func generate() throws(TransportError) -> CurveKeyPair {
        var pub = [CChar](repeating: 0, count: Z85.keyLength + 1)
        var sec = [CChar](repeating: 0, count: Z85.keyLength + 1)
        try zmqCall("zmq_curve_keypair") { zmq_curve_keypair(&pub, &sec) }
        defer { for i in sec.indices { sec[i] = 0 } }
        return CurveKeyPair(unchecked: string(fromCBuffer: pub), secretKey: string(fromCBuffer: sec))
    }

    /// The public key belonging to a Z85 secret key (zmq_curve_public).
    public static func derivePublic(fromSecret secretKey: String) throws(TransportError) -> String {
        guard Z85.isValidKey(secretKey) else {
            throw TransportError(operation: "zmq_curve_public", code: .invalidArgument, errno: EINVAL,
                                 message: "secret key is not 40 valid Z85 characters")
        }
        var pub = [CChar](repeating: 0, count: Z85.keyLength + 1)
        try zmqCall("zmq_curve_public") { zmq_curve_public(&pub, secretKey) }
        return string(fromCBuffer: pub)
    }

    // MARK: Files

    /// Writes `dir/NAME.key` (mode 0600) and `dir/NAME.pub` (mode 0644); returns their paths.
    /// Refuses to replace existing files unless `overwrite` is true. Each file is written to
    /// a temporary name, fsync'ed and renamed, so a crash leaves no half-written key.
    @discardableResult
    public func write(to dir: String, name: String, overwrite: Bool = false) throws(KeyFileError) -> (secretFile: String, publicFile: String) {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw KeyFileError(path: dir, reason: "invalid key name '\(name)' (no slashes)")
        }
        let keyPath = (dir as NSString).appendingPathComponent("\(name).key")
        let pubPath = (dir as NSString).appendingPathComponent("\(name).pub")
        if !overwrite {
            for path in [keyPath, pubPath] where FileManager.default.fileExists(atPath: path) {
                throw KeyFileError(path: path, reason: "already exists; refusing to overwrite a key")
            }
        }
        let secretText = """
            # Hypertrain CURVE key pair "\(name)" (Curve25519, Z85). Keep this file secret.
            public=\(publicKey)
            secret=\(secretKey)

            """
        try Self.atomicWrite(secretText, to: keyPath, mode: 0o600)
        try Self.atomicWrite("public=\(publicKey)\n", to: pubPath, mode: 0o644)
        return (keyPath, pubPath)
    }

    /// Reads a key pair from a `.key` file (a file with only `public=` is refused: it has no
    /// secret). A missing `public=` line is derived from the secret; a present one must match.
    ///
    /// A secret key others could read is refused, as ssh refuses such a private key: the file
    /// must not grant any permission to others, and may grant group read only when root owns
    /// it (PostgreSQL's rule for its TLS key: a Kubernetes secret volume is root-owned, mode
    /// 0440, group `fsGroup`).
    public static func load(from path: String) throws(KeyFileError) -> CurveKeyPair {
        try checkSecretFilePermissions(path)
        let fields = try parseKeyFile(path)
        guard let secret = fields.secret else {
            throw KeyFileError(path: path, reason: "no 'secret=' line (is this a .pub file? a key pair needs the .key file)")
        }
        guard let derived = try? derivePublic(fromSecret: secret.value) else {
            throw KeyFileError(path: path, line: secret.line, reason: "cannot derive the public key from the secret key")
        }
        if let pub = fields.public, pub.value != derived {
            throw KeyFileError(path: path, line: pub.line, reason: "public key does not belong to the secret key in this file")
        }
        return CurveKeyPair(unchecked: derived, secretKey: secret.value)
    }

    /// Reads the public key from a `.pub` or a `.key` file (derived from the secret when the
    /// file has no `public=` line).
    public static func loadPublicKey(from path: String) throws(KeyFileError) -> String {
        let fields = try parseKeyFile(path)
        if let pub = fields.public { return pub.value }
        if let secret = fields.secret, let derived = try? derivePublic(fromSecret: secret.value) { return derived }
        throw KeyFileError(path: path, reason: "no 'public=' or 'secret=' line")
    }

    private struct Field { let value: String; let line: Int }

    /// Parses `public=` / `secret=` lines; `#` comments and blank lines are allowed.
    private static func parseKeyFile(_ path: String) throws(KeyFileError) -> (public: Field?, secret: Field?) {
        let text = try readText(path)
        var pub: Field?, sec: Field?
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNo = i + 1
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let eq = line.firstIndex(of: "=") else {
                throw KeyFileError(path: path, line: lineNo, reason: "expected 'public=<key>' or 'secret=<key>'")
            }
            let name = line[..<eq].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            switch name {
            case "public":
                guard pub == nil else { throw KeyFileError(path: path, line: lineNo, reason: "second 'public=' line") }
                guard Z85.isValidKey(value) else {
                    throw KeyFileError(path: path, line: lineNo, reason: "public key is not a Z85 key: \(Z85.problem(value) ?? "invalid")")
                }
                pub = Field(value: value, line: lineNo)
            case "secret":
                guard sec == nil else { throw KeyFileError(path: path, line: lineNo, reason: "second 'secret=' line") }
                guard Z85.isValidKey(value) else {
                    throw KeyFileError(path: path, line: lineNo, reason: "secret key is not a Z85 key: \(Z85.problem(value, secret: true) ?? "invalid")")
                }
                sec = Field(value: value, line: lineNo)
            default:
                throw KeyFileError(path: path, line: lineNo, reason: "unknown field '\(name)' (expected 'public' or 'secret')")
            }
        }
        return (pub, sec)
    }

    /// Throws unless the secret key file at `path` is private enough (see `load(from:)`).
    static func checkSecretFilePermissions(_ path: String) throws(KeyFileError) {
        var info = stat()
        guard stat(path, &info) == 0 else { return }   // reading it reports what is wrong
        let mode = info.st_mode & 0o777
        let tooOpen = info.st_uid == 0 && info.st_uid != getuid() ? mode & 0o037 != 0 : mode & 0o077 != 0
        if tooOpen {
            throw KeyFileError(path: path, reason: "this secret key is accessible by others (mode \(String(mode, radix: 8))); run `chmod 600 \(path)` (a root-owned file may also be group-readable, 0640)")
        }
    }

    /// The file's text; errors name the file.
    static func readText(_ path: String) throws(KeyFileError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw KeyFileError(path: path, reason: exists ? "cannot read (permissions?)" : "no such file")
        }
        guard data.count <= 1 << 20 else { throw KeyFileError(path: path, reason: "too large for a key file (\(data.count) bytes)") }
        guard let text = String(data: data, encoding: .utf8) else {
            throw KeyFileError(path: path, reason: "not UTF-8 text")
        }
        return text
    }

    private static func atomicWrite(_ text: String, to path: String, mode: mode_t) throws(KeyFileError) {
        do throws(SystemCallError) {
            try SystemCall.writeFileAtomically(Array(text.utf8), to: path, mode: mode)
        } catch {
            let verb = error.operation == "open" ? "cannot create" : "cannot write"
            throw KeyFileError(path: path, reason: "\(verb): \(error.reason)")
        }
    }
}
