import Foundation
import Testing
@preconcurrency import Glibc
import Cluster
import RunState
import TestSupport

// Shared machinery of the integration tests: where the package, the data and the built
// `hypertrain` binary are; real child processes with their output in files; polling waits
// that always end; and readers for the summary, metrics and checkpoint files.

/// Where things are.
enum Env {
    /// The package root: the first directory above this file that holds Package.swift.
    static let root: String = {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir.path }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }()

    /// The MNIST directory (`$HYPERTRAIN_DATA`, else data/mnist of the package); fails the test
    /// with the fix when the files are missing.
    static func data() throws -> String {
        try RealData.requireDirectory()
    }

    /// The `hypertrain` executable built with the tests: next to the running test bundle,
    /// else `<root>/.build/release/hypertrain`.
    static func binary() throws -> String {
        var candidates: [String] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            candidates.append(URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("hypertrain").path)
        }
        candidates.append(root + "/.build/release/hypertrain")
        let found = candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
        return try #require(found, "no hypertrain executable at \(candidates.joined(separator: " or ")): build it with `swift build -c release`")
    }
}

/// A fresh directory under /tmp (short, so ipc:// paths stay under the 107-byte limit).
final class Scratch {
    let path: String

    init(_ tag: String) throws {
        path = "/tmp/hti-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    /// An ipc endpoint in this directory.
    func ipc(_ name: String = "c.sock") -> String { "ipc://" + file(name) }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// One child process, its stdout and stderr in files.
final class Child {
    let name: String
    let process = Process()
    let stdoutPath: String
    let stderrPath: String
    let arguments: [String]

    init(_ name: String, _ arguments: [String], binary: String, in scratch: Scratch) throws {
        self.name = name
        self.arguments = arguments
        stdoutPath = scratch.file("\(name).out")
        stderrPath = scratch.file("\(name).err")
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        // A spawned process inherits the spawning thread's signal mask, and the test runs on a
        // Dispatch worker thread that blocks SIGINT/SIGTERM: the child would never see them.
        // Spawn with nothing blocked, as from a shell.
        var none = sigset_t(), saved = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
        try process.run()
    }

    /// The child's blocked-signal mask (SigBlk in /proc/PID/status), for diagnostics.
    var blockedSignals: String {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        return status.split(separator: "\n").first { $0.hasPrefix("SigBlk:") }.map(String.init) ?? "?"
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    func signal(_ s: Int32) { if process.isRunning { _ = Glibc.kill(pid, s) } }

    /// SIGKILL and reap (no-op when already gone).
    func killAndReap() {
        signal(SIGKILL)
        process.waitUntilExit()
    }

    /// The exit status once the process ends within `timeout` seconds; nil if it is still running.
    func wait(timeout: Double) -> Int32? {
        guard Poll.until(timeout: timeout, { !self.process.isRunning }) else { return nil }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Killed by a signal rather than exiting?
    var signalled: Bool { process.terminationReason == .uncaughtSignal }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// For failure messages: the command and the tail of both streams.
    var report: String {
        func tail(_ s: String) -> String { s.count > 3000 ? "…" + String(s.suffix(3000)) : s }
        return "── \(name) (pid \(pid)): hypertrain \(arguments.joined(separator: " "))\n── stdout:\n\(tail(stdout))── stderr:\n\(tail(stderr))"
    }
}

/// Every process a test starts; `stopAll()` (in a `defer`) SIGKILLs and reaps them all.
final class Processes {
    let binary: String
    let scratch: Scratch
    private(set) var children: [Child] = []

    init(_ scratch: Scratch) throws {
        binary = try Env.binary()
        self.scratch = scratch
    }

    @discardableResult
    func start(_ name: String, _ arguments: [String]) throws -> Child {
        let c = try Child(name, arguments, binary: binary, in: scratch)
        children.append(c)
        return c
    }

    /// Starts, waits for the exit (bounded), and returns the child; fails the test on timeout.
    func run(_ name: String, _ arguments: [String], timeout: Double = 120) throws -> (child: Child, status: Int32) {
        let c = try start(name, arguments)
        let status = try #require(c.wait(timeout: timeout), "\(name) still running after \(timeout) s\n\(c.report)")
        return (c, status)
    }

    func stopAll() { for c in children { c.killAndReap() } }

    /// All logs, for failure messages.
    var logs: String { children.map(\.report).joined(separator: "\n") }
}

enum Poll {
    /// Polls `condition` every 20 ms until it holds or `timeout` seconds pass.
    @discardableResult
    static func until(timeout: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if condition() { return true }
            if Date() >= deadline { return false }
            usleep(20_000)
        }
    }
}

// MARK: - Outputs

/// The files a run writes.
enum Outputs {
    /// A JSON object file (the summary).
    static func object(_ path: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "\(path) is not a JSON object")
    }

    /// Complete lines of a JSON Lines file, parsed (a partial last line is skipped).
    static func lines(_ path: String) -> [[String: Any]] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        var parts = text.split(separator: "\n", omittingEmptySubsequences: false)
        if !text.hasSuffix("\n") { parts.removeLast() }
        return parts.compactMap { line in
            guard !line.isEmpty, let d = line.data(using: .utf8) else { return nil }
            return (try? JSONSerialization.jsonObject(with: d)) as? [String: Any]
        }
    }

    /// The last step logged in a metrics file (0 when none yet).
    static func lastStep(_ path: String) -> Int {
        (lines(path).last?["step"] as? Int) ?? 0
    }

    /// step → λ̂ of a metrics file (the last line wins when a step was logged twice).
    static func lambdaByStep(_ path: String) -> [Int: [Double]] {
        var out: [Int: [Double]] = [:]
        for l in lines(path) {
            if let s = l["step"] as? Int, let lambda = l["lambda_hat"] as? [Double] { out[s] = lambda }
        }
        return out
    }

    static func checkpoint(_ path: String) throws -> Checkpoint {
        try Checkpoint.read(from: path)
    }
}

/// Bit patterns, so that == means bit-identical (and a NaN would not compare unequal to itself).
func bits(_ xs: [Float]) -> [UInt32] { xs.map(\.bitPattern) }

/// Counts of a summary's `gradients_rejected` object.
func rejections(_ summary: [String: Any]) -> [String: Int] {
    (summary["gradients_rejected"] as? [String: Any] ?? [:]).compactMapValues { $0 as? Int }
}

// MARK: - Configurations

/// Small experiment flags: a few seconds per run on 2 cores.
func experimentFlags(steps: Int, seed: Int = 7) -> [String] {
    ["--n-train", "100", "--n-valid", "1000", "--n-test", "1000", "--batch-size", "50", "--valid-batch-size", "200",
     "--steps", "\(steps)", "--eval-every", "0", "--seed", "\(seed)"]
}

/// A free TCP port on 127.0.0.1 (bound and released; callers retry on a rare collision).
func freeTCPPort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    try #require(fd >= 0, "socket() failed: errno \(errno)")
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    try #require(bound == 0, "bind(127.0.0.1:0) failed: errno \(errno)")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    try #require(named == 0, "getsockname failed: errno \(errno)")
    return UInt16(bigEndian: addr.sin_port)
}

/// The uninterrupted single-process reference of a configuration, computed once per
/// configuration and shared by the tests that compare against it.
final class References: @unchecked Sendable {
    // @unchecked Sendable: `cache` is only touched with `lock` held.
    static let shared = References()
    private let lock = NSLock()
    private var cache: [[String]: Reference] = [:]

    /// What `hypertrain run --workers 0` produced.
    struct Reference {
        /// The final checkpoint.
        let checkpoint: Checkpoint
        /// λ̂ after every step (metrics with --log-every 1).
        let lambdaByStep: [Int: [Double]]
        /// Wall seconds of the run.
        let seconds: Double
    }

    /// The single-process run of these experiment flags.
    func reference(_ flags: [String]) throws -> Reference {
        lock.lock()
        defer { lock.unlock() }
        if let r = cache[flags] { return r }
        let scratch = try Scratch("ref")
        let procs = try Processes(scratch)
        defer { procs.stopAll() }
        let path = scratch.file("ref.bin"), metrics = scratch.file("ref.jsonl")
        let start = Date()
        let (child, status) = try procs.run("reference", ["run"] + flags + ["--workers", "0", "--checkpoint", path,
                                                                           "--metrics", metrics, "--log-every", "1", "--quiet", "--data", try Env.data()])
        try #require(status == 0, "reference run failed\n\(child.report)")
        let r = Reference(checkpoint: try Outputs.checkpoint(path), lambdaByStep: Outputs.lambdaByStep(metrics),
                          seconds: Date().timeIntervalSince(start))
        cache[flags] = r
        return r
    }
}
