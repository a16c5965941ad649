import Foundation
import Testing
@preconcurrency import Glibc
import Cluster

/// Baseline studies with real processes and a real SQLite file: a worker killed mid-study
/// loses nothing, and a killed study resumes with every finished trial kept.
@Suite(.serialized) struct StudyIntegrationTests {
    private func studyFlags(trials: Int, db: String) throws -> [String] {
        ["--data", try Env.data(), "--n-train", "100", "--n-valid", "1000", "--n-test", "1000", "--batch-size", "50",
         "--trials", "\(trials)", "--trial-steps", "400", "--box=-6:2", "--study", db, "--seed", "3"]
    }

    private func trialRows(_ db: String) throws -> [(id: Int, status: String, valid: Double?)] {
        // Opening creates the file: never do that before the coordinator has.
        guard FileManager.default.fileExists(atPath: db) else { return [] }
        let store = try StudyStore(path: db)
        defer { store.close() }
        return try store.trials().map { ($0.id, $0.status.rawValue, $0.validLoss) }
    }

    @Test("Killing a trial worker mid-study loses no trial; a new worker joins and the study completes")
    func killWorker() throws {
        let scratch = try Scratch("study-kill")
        let procs = try Processes(scratch)
        defer { procs.stopAll() }
        let endpoint = scratch.ipc()
        let db = scratch.file("study.sqlite")
        let summary = scratch.file("summary.json")
        let coordinator = try procs.start("coordinator", ["coordinator", "--study-mode", "--bind", endpoint, "--insecure",
                                                          "--summary", summary, "--heartbeat-ms", "200"] + (try studyFlags(trials: 16, db: db)))
        let data = try Env.data()
        let w1 = try procs.start("worker1", ["worker", "--connect", endpoint, "--insecure", "--data", data])
        _ = try procs.start("worker2", ["worker", "--connect", endpoint, "--insecure", "--data", data])
        let progressed = Poll.until(timeout: 60) { ((try? self.trialRows(db))?.filter { $0.status == "done" }.count ?? 0) >= 3 }
        #expect(progressed, "no trials finished\n\(procs.logs)")
        w1.killAndReap()
        _ = try procs.start("worker3", ["worker", "--connect", endpoint, "--insecure", "--data", data])
        let status = try #require(coordinator.wait(timeout: 120), "study did not finish\n\(procs.logs)")
        #expect(status == 0, "\(procs.logs)")
        let rows = try trialRows(db)
        #expect(rows.count == 16)
        #expect(rows.allSatisfy { $0.status == "done" && ($0.valid?.isFinite ?? false) }, "\(rows)")
        let s = try Outputs.object(summary)
        #expect(s["trials_done"] as? Int == 16)
    }

    @Test("A killed study resumes with --resume and keeps every finished trial")
    func resume() throws {
        let scratch = try Scratch("study-resume")
        let procs = try Processes(scratch)
        defer { procs.stopAll() }
        let db = scratch.file("study.sqlite")
        let flags = try studyFlags(trials: 12, db: db) + ["--parallel", "2"]
        let first = try procs.start("search1", ["search"] + flags)
        let progressed = Poll.until(timeout: 60) { ((try? self.trialRows(db))?.filter { $0.status == "done" }.count ?? 0) >= 3 }
        #expect(progressed, "no trials finished\n\(procs.logs)")
        first.killAndReap()
        let before = try trialRows(db).filter { $0.status == "done" }
        #expect(before.count >= 3)

        // Without --resume an existing study is refused rather than overwritten.
        let (refused, refusedStatus) = try procs.run("search-refused", ["search"] + flags, timeout: 60)
        #expect(refusedStatus != 0)
        #expect(refused.stderr.contains("--resume"), "\(refused.report)")

        let (second, status) = try procs.run("search2", ["search"] + flags + ["--resume"], timeout: 120)
        #expect(status == 0, "\(second.report)")
        let after = try trialRows(db)
        #expect(after.count == 12)
        #expect(after.allSatisfy { $0.status == "done" }, "\(after)")
        for b in before {
            #expect(after[b.id].valid == b.valid, "trial \(b.id) changed across the resume")
        }
    }
}
