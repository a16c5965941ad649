import Foundation
import Testing
import Transport

@Suite struct KeyFileTests {
    @Test("generated keys are 40 Z85 characters and the public key derives from the secret")
    func generate() throws {
        let k = try CurveKeyPair.generate()
        #expect(k.publicKey.utf8.count == 40 && k.secretKey.utf8.count == 40)
        #expect(try CurveKeyPair.derivePublic(fromSecret: k.secretKey) == k.publicKey)
        #expect(try CurveKeyPair(publicKey: k.publicKey, secretKey: k.secretKey) == k)
        #expect(!k.description.contains(k.secretKey))
        #expect(!"\(k)".contains(k.secretKey))
        let other = try CurveKeyPair.generate()
        #expect(throws: KeyFileError.self) { try CurveKeyPair(publicKey: other.publicKey, secretKey: k.secretKey) }
    }

    @Test("write then load round-trips; the .key file is 0600 and the .pub holds only the public key")
    func roundTrip() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let k = try CurveKeyPair.generate()
        let (keyFile, pubFile) = try k.write(to: dir.path, name: "worker-1")
        #expect(keyFile == dir.file("worker-1.key") && pubFile == dir.file("worker-1.pub"))

        let attrs = try FileManager.default.attributesOfItem(atPath: keyFile)
        #expect((attrs[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let pubText = try String(contentsOfFile: pubFile, encoding: .utf8)
        #expect(pubText == "public=\(k.publicKey)\n")
        #expect(!pubText.contains(k.secretKey))

        #expect(try CurveKeyPair.load(from: keyFile) == k)
        #expect(try CurveKeyPair.loadPublicKey(from: pubFile) == k.publicKey)
        #expect(try CurveKeyPair.loadPublicKey(from: keyFile) == k.publicKey)

        // No silent overwrite.
        #expect(throws: KeyFileError.self) { try k.write(to: dir.path, name: "worker-1") }
        let k2 = try CurveKeyPair.generate()
        try k2.write(to: dir.path, name: "worker-1", overwrite: true)
        #expect(try CurveKeyPair.load(from: keyFile) == k2)
    }

    @Test("a key file with only the secret derives the public key")
    func secretOnly() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let k = try CurveKeyPair.generate()
        let path = try dir.write("s.key", "# mine\n\nsecret=\(k.secretKey)\n")
        #expect(try CurveKeyPair.load(from: path) == k)
    }

    /// Loads `text` as a key file and returns the error (nil if it loaded).
    private func loadError(_ text: String, _ dir: TempDir, pair: Bool = true) throws -> KeyFileError? {
        let path = try dir.write("bad-\(UInt32.random(in: 0...UInt32.max)).key", text)
        do {
            if pair { _ = try CurveKeyPair.load(from: path) } else { _ = try CurveKeyPair.loadPublicKey(from: path) }
            return nil
        } catch {
            #expect(error.path == path)
            #expect(error.description.hasPrefix(path))
            return error
        }
    }

    @Test("bad key files are rejected with the file (and line) named")
    func badFiles() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let k = try CurveKeyPair.generate()
        let other = try CurveKeyPair.generate()

        #expect(try loadError("public=\(k.publicKey)\n", dir)?.reason.contains(".pub") == true)
        #expect(try loadError("secret=\(String(k.secretKey.dropLast()))\n", dir)?.line == 1)
        #expect(try loadError("# c\nsecret=\(String(k.secretKey.dropLast()))~\n", dir)?.line == 2)   // ~ is not Z85
        #expect(try loadError("public=\(other.publicKey)\nsecret=\(k.secretKey)\n", dir)?.line == 1)
        #expect(try loadError("secret=\(k.secretKey)\nsecret=\(k.secretKey)\n", dir)?.line == 2)
        #expect(try loadError("private=\(k.secretKey)\n", dir)?.line == 1)
        #expect(try loadError("just text\n", dir)?.line == 1)
        #expect(try loadError("", dir, pair: false) != nil)
        #expect(try loadError("\(k.publicKey)\n", dir, pair: false)?.line == 1)   // bare key needs public=
        // A secret error message never contains the secret.
        let e = try loadError("secret=\(k.secretKey)X\n", dir)
        #expect(e.map { !$0.description.contains(k.secretKey) } == true)

        do {
            _ = try CurveKeyPair.load(from: dir.file("missing.key"))
            Issue.record("loaded a missing file")
        } catch {
            #expect(error.path == dir.file("missing.key"))
            #expect(error.reason == "no such file")
        }
        #expect(throws: KeyFileError.self) { try k.write(to: dir.path, name: "../escape") }
        #expect(throws: KeyFileError.self) { try k.write(to: dir.file("no/such/dir"), name: "x") }
    }

    @Test("authorized-keys files: keys, public= lines, labels, comments and blanks")
    func authorizedKeys() throws {
        let a = try CurveKeyPair.generate(), b = try CurveKeyPair.generate(), c = try CurveKeyPair.generate()
        let text = """
            # Hypertrain workers
            \(a.publicKey)

              public=\(b.publicKey)
            \(c.publicKey)   worker-3 on node-7
            #\(a.publicKey)
            """
        let keys = try AuthorizedKeys.parse(text, source: "authorized_keys")
        #expect(keys.count == 3)
        #expect(keys.contains(a.publicKey) && keys.contains(b.publicKey) && keys.contains(c.publicKey))

        let dir = try TempDir()
        defer { dir.remove() }
        let path = try dir.write("authorized_keys", text)
        #expect(try AuthorizedKeys.load(from: path) == keys)
    }

    @Test("no valid key starts with # (the group overflows 32 bits), so # lines are always comments")
    func hashNeverStartsAKey() throws {
        for _ in 0..<20 {
            let key = try CurveKeyPair.generate().publicKey
            #expect(!key.hasPrefix("#") && !key.hasPrefix("$"))
            let hashed = "#" + key.dropFirst()
            #expect(throws: KeyFileError.self) { try AuthorizedKeys([hashed]) }
            #expect(try AuthorizedKeys.parse("\(hashed)\n\(key)\n", source: "x").keys == [key])
        }
    }

    @Test("an invalid authorized-keys line is an error naming its line number", arguments: [
        ("short", 2), ("public=tooshort", 2), ("\(String(repeating: "~", count: 40))", 2),
    ])
    func badAuthorizedKeys(_ line: String, _ expectedLine: Int) throws {
        let good = try CurveKeyPair.generate().publicKey
        do {
            _ = try AuthorizedKeys.parse("\(good)\n\(line)\n", source: "keys.txt")
            Issue.record("accepted \(line)")
        } catch {
            #expect(error.path == "keys.txt")
            #expect(error.line == expectedLine)
            #expect(error.description.hasPrefix("keys.txt:\(expectedLine):"))
        }
        let dir = try TempDir()
        defer { dir.remove() }
        #expect(throws: KeyFileError.self) { try AuthorizedKeys.load(from: dir.file("absent")) }
    }

    @Test("a bad Z85 key names the offending character and its position, or the group that overflows")
    func z85ProblemNamesTheCharacter() throws {
        let good = try CurveKeyPair.generate().publicKey
        var chars = Array(good)
        chars[10] = "~"
        do {
            _ = try AuthorizedKeys.parse(String(chars) + "\n", source: "ak")
            Issue.record("accepted a key with '~'")
        } catch {
            #expect(error.description.contains("character '~' at position 11"), "\(error)")
            #expect(!error.description.contains("expected 40 characters, got 40"), "\(error)")
        }
        let dir = try TempDir()
        defer { dir.remove() }
        try "public=\(String(chars))\n".write(toFile: dir.file("bad.pub"), atomically: true, encoding: .utf8)
        #expect { try CurveKeyPair.loadPublicKey(from: dir.file("bad.pub")) } throws: { error in
            "\(error)".contains("character '~' at position 11")
        }
        do {
            _ = try AuthorizedKeys.parse("#" + String(good.dropFirst()) + "x" + "\n", source: "ak")
        } catch {
            Issue.record("a # line is a comment: \(error)")
        }
        do {
            _ = try AuthorizedKeys.parse(String(good.prefix(39)) + "\n", source: "ak")
            Issue.record("accepted 39 characters")
        } catch {
            #expect(error.description.contains("expected 40 characters, got 39"), "\(error)")
        }
    }

    @Test("a secret key file others can read is refused with the chmod to run; 0600 loads")
    func secretKeyPermissions() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let k = try CurveKeyPair.generate()
        let (keyFile, _) = try k.write(to: dir.path, name: "server")
        for mode: mode_t in [0o644, 0o604, 0o660] {
            chmod(keyFile, mode)
            #expect { try CurveKeyPair.load(from: keyFile) } throws: { error in
                "\(error)".contains("chmod 600 \(keyFile)")
            }
        }
        chmod(keyFile, 0o600)
        #expect(try CurveKeyPair.load(from: keyFile) == k)
        chmod(keyFile, 0o400)
        #expect(try CurveKeyPair.load(from: keyFile) == k)
    }

    @Test("an empty authorized-keys file parses to an empty set (the CLI warns about it)")
    func emptyAuthorizedKeys() throws {
        let keys = try AuthorizedKeys.parse("# nobody yet\n\n", source: "ak")
        #expect(keys.isEmpty && keys.count == 0)
    }
}
