import Foundation
@preconcurrency import Glibc

/// Worker and validator processes started on this machine for local multi-process mode.
/// They are children of this process, watch for its death, and are stopped (SIGTERM, then
/// SIGKILL) by `stop()` — no process is left behind on exit, error or Ctrl-C.
public final class LocalCluster {
    private let executable: String
    private let arguments: [[String]]
    private var processes: [Process] = []
    private let log: (String) -> Void

    /// - Parameters:
    ///   - executable: the `hypertrain` binary.
    ///   - endpoint: the coordinator's endpoint.
    ///   - trainers: number of training workers.
    ///   - validators: number of validation workers (1 normally).
    ///   - dataDirectory: MNIST directory for the children.
    ///   - busyWaitMicroseconds: the children's `--busy-wait-us`.
    public init(executable: String, endpoint: String, trainers: Int, validators: Int = 1, dataDirectory: String,
                busyWaitMicroseconds: Int = 0, log: @escaping (String) -> Void) {
        self.executable = executable
        self.log = log
        let common = ["--connect", endpoint, "--data", dataDirectory, "--parent-pid", String(getpid()), "--insecure",
                      "--busy-wait-us", String(busyWaitMicroseconds)]
        arguments = Array(repeating: ["worker"] + common, count: trainers)
            + Array(repeating: ["validator"] + common, count: validators)
    }

    /// The path of the running executable.
    public static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// Starts every child.
    public func start() throws {
        guard !arguments.isEmpty else { return }
        for args in arguments { try spawn(args) }
        log("started \(arguments.count) local worker process(es): pids \(processes.map { String($0.processIdentifier) }.joined(separator: ", "))")
    }

    private func spawn(_ args: [String]) throws {
        processes.append(try launch(args))
    }

    private func launch(_ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Restarts beyond which a child that keeps dying stops the run.
    public static let maxRestarts = 3
    private var restarts: [Int: Int] = [:]

    /// Called while the run goes on (the coordinator's tick): a child that died (killed, out of
    /// memory, a crash) is started again — it registers as a new peer and its tasks are
    /// re-issued, so the run goes on and, in sync mode, stays bit-identical. Returns why the run
    /// cannot go on when a child died more than `maxRestarts` times, else nil.
    public func supervise() -> String? {
        for (i, p) in processes.enumerated() where !p.isRunning {
            let role = arguments[i].first ?? "worker"
            let how = p.terminationReason == .uncaughtSignal ? "was killed by signal \(p.terminationStatus)" : "exited with status \(p.terminationStatus)"
            let n = restarts[i, default: 0]
            guard n < Self.maxRestarts else {
                return "local \(role) process (pid \(p.processIdentifier)) \(how), after \(n) restarts; its log is above"
            }
            do {
                let replacement = try launch(arguments[i])
                processes[i] = replacement
                restarts[i] = n + 1
                log("local \(role) process \(p.processIdentifier) \(how); started pid \(replacement.processIdentifier) in its place (restart \(n + 1) of \(Self.maxRestarts))")
            } catch {
                return "local \(role) process (pid \(p.processIdentifier)) \(how) and could not be restarted: \(error)"
            }
        }
        return nil
    }

    /// The children's process ids, in start order.
    public var pids: [Int32] { processes.map(\.processIdentifier) }

    /// Children still running.
    public var running: Int { processes.filter(\.isRunning).count }

    /// Waits up to `timeout` seconds for the children to exit by themselves, then terminates
    /// the rest (SIGTERM, and SIGKILL after one more second).
    public func stop(timeout: Double = 5) {
        let deadline = Date().addingTimeInterval(timeout)
        while running > 0 && Date() < deadline { usleep(20_000) }
        for p in processes where p.isRunning { Glibc.kill(p.processIdentifier, SIGTERM) }
        let hard = Date().addingTimeInterval(1)
        while running > 0 && Date() < hard { usleep(20_000) }
        for p in processes where p.isRunning { Glibc.kill(p.processIdentifier, SIGKILL) }
        for p in processes { p.waitUntilExit() }
    }

    /// Kills every child at once.
    public func kill(signal: Int32 = SIGKILL) {
        for p in processes where p.isRunning { Glibc.kill(p.processIdentifier, signal) }
        for p in processes { p.waitUntilExit() }
    }
}
