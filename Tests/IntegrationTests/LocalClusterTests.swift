import Cluster
import Foundation
@preconcurrency import Glibc
import Testing
import TestSupport

/// LocalCluster with real `hypertrain` children, pointed at an ipc:// endpoint nobody serves
/// (so they wait for a coordinator until stopped or orphaned).
@Suite struct LocalClusterTests {
    /// `true` while `pid` exists and is not a zombie.
    static func alive(_ pid: Int32) -> Bool {
        guard Glibc.kill(pid, 0) == 0 else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(close, offsetBy: 2)] != "Z"
    }

    static func waitUntil(seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }

    @Test("stop() ends and reaps every child it started, within a bound")
    func stopReapsChildren() throws {
        let scratch = try Scratch("lc")
        let cluster = LocalCluster(executable: try Env.binary(), endpoint: "ipc://\(scratch.path)/nobody.sock",
                                   trainers: 2, validators: 1, dataDirectory: try Env.data(), log: { _ in })
        try cluster.start()
        let pids = cluster.pids
        #expect(pids.count == 3)
        // They keep running: nobody answers, so they wait for a coordinator.
        usleep(500_000)
        #expect(pids.allSatisfy(Self.alive), "children exited before being stopped")
        #expect(cluster.running == 3)

        let started = Date()
        cluster.stop(timeout: 0)
        #expect(Date().timeIntervalSince(started) < 5, "stop() took longer than SIGTERM + 1 s + SIGKILL")
        #expect(cluster.running == 0)
        for pid in pids {
            // Reaped: the pid no longer exists at all (not even as a zombie).
            #expect(Glibc.kill(pid, 0) == -1 && errno == ESRCH, "child \(pid) left behind")
        }
    }

    @Test("a child whose parent dies exits by itself (--parent-pid)")
    func orphanExits() throws {
        let scratch = try Scratch("lo")
        // The shell is the child's parent and passes its own pid, as LocalCluster does; it
        // prints the child's pid and exits, orphaning it.
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", #""$0" worker --connect "$1" --data "$2" --insecure --parent-pid $$ </dev/null >/dev/null 2>&1 & echo $!"#,
                           try Env.binary(), "ipc://\(scratch.path)/nobody.sock", try Env.data()]
        let output = Pipe()
        shell.standardOutput = output
        try shell.run()
        shell.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let pid = try #require(Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), "no pid from the shell: \(text)")
        defer { if Self.alive(pid) { Glibc.kill(pid, SIGKILL) } }
        #expect(Self.waitUntil(seconds: 10) { !Self.alive(pid) }, "orphaned worker \(pid) still running after 10 s")
    }
}
