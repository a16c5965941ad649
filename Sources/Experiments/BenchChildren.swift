import Foundation

/// The synthetic worker processes a benchmark starts (`bench cluster`, `bench study`): stdin
/// closed; `stop` gives them up to `timeout` seconds to exit by themselves (they do on the
/// coordinator's Shutdown), then kills and reaps the rest.
final class BenchChildren {
    private let executable: String
    private var processes: [Process] = []

    init(executable: String) { self.executable = executable }

    /// Starts one child with `arguments`.
    func start(_ arguments: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        p.standardInput = FileHandle.nullDevice
        try p.run()
        processes.append(p)
    }

    /// Waits up to `timeout` seconds for every child to exit.
    func waitForExit(timeout: Double) {
        let deadline = Date().addingTimeInterval(timeout)
        while processes.contains(where: \.isRunning) && Date() < deadline { usleep(20_000) }
    }

    /// `waitForExit(timeout:)`, then SIGKILL for the rest; every child reaped.
    func stop(timeout: Double = 5) {
        waitForExit(timeout: timeout)
        for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) }
        for p in processes { p.waitUntilExit() }
    }
}
