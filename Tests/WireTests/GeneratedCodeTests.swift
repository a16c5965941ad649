import Foundation
import Testing

/// The package root: the nearest ancestor of this file that holds Package.swift.
func packageRoot(from file: String = #filePath) -> URL? {
    var dir = URL(fileURLWithPath: file).deletingLastPathComponent()
    while dir.path != "/" {
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir }
        dir = dir.deletingLastPathComponent()
    }
    return nil
}

private let protocCAvailable: Bool = {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/protoc-c") }
}()

@Suite struct GeneratedCodeTests {
    // Skipped (not failed) where protoc-c is not installed; CI installs protobuf-c-compiler.
    @Test("the committed protoc-c output matches proto/hypertrain.proto", .enabled(if: protocCAvailable, "needs protoc-c"))
    func generatedCodeIsFresh() throws {
        let root = try #require(packageRoot())
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [root.appendingPathComponent("scripts/gen-proto.sh").path, "--check"]
        process.currentDirectoryURL = root
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "scripts/gen-proto.sh --check failed:\n\(text.prefix(4_000))")
    }
}
