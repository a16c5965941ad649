import Foundation
private import CSQLite

/// A trial's lifecycle in the study database.
public enum TrialStatus: String, Sendable, Codable {
    /// Proposed, waiting for a worker.
    case pending
    /// Leased to a worker.
    case running
    /// Finished with results.
    case done
    /// Failed (non-finite loss, or too many attempts).
    case failed
}

/// One trial row.
public struct TrialRecord: Sendable, Equatable {
    /// 0-based trial index (also its id).
    public var id: Int
    /// The hyperparameters.
    public var lambda: [Double]
    /// Status.
    public var status: TrialStatus
    /// The worker that holds or held it.
    public var worker: String?
    /// Times leased.
    public var attempts: Int
    /// Final losses (done trials).
    public var trainLoss: Double?
    /// Validation loss.
    public var validLoss: Double?
    /// Test loss.
    public var testLoss: Double?
    /// Seconds from the last lease to the result.
    public var trialSeconds: Double?
    /// Study wall-clock seconds when the result arrived.
    public var finishedAtStudySeconds: Double?
}

/// Errors of the study database.
public struct StudyStoreError: Error, Sendable, CustomStringConvertible {
    /// What failed.
    public let message: String
    /// Another connection holds a lock on the file (SQLITE_BUSY/SQLITE_LOCKED): the same write
    /// may succeed later.
    public var isBusy = false
    public var description: String { "study database: \(message)" }
}

/// One change to the study database. The coordinator queues these in order and applies them
/// with ``StudyStore/apply(_:)``, so a write that cannot be made now (the file is locked by
/// another process) is retried later without reordering or losing it.
public enum StudyWrite: Sendable, Equatable {
    /// A new pending trial.
    case insert(id: Int, lambda: [Double])
    /// Leased to a worker.
    case running(id: Int, worker: String)
    /// Back to the queue (its worker died).
    case pending(id: Int)
    /// A result.
    case done(id: Int, train: Double, valid: Double, test: Double, trialSeconds: Double, studySeconds: Double)
    /// Failed (non-finite loss).
    case failed(id: Int)
    /// A metadata value.
    case meta(key: String, value: String)
}

/// The study's SQLite database, written by the coordinator alone. Every state change is a
/// committed transaction (WAL, synchronous=FULL), so a killed study loses no finished trial.
public final class StudyStore {
    private var db: OpaquePointer?
    /// The database file.
    public let path: String

    /// Opens (creating if needed) the database at `path`.
    public init(path: String) throws(StudyStoreError) {
        self.path = path
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        var handle: OpaquePointer?
        guard sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nil) == SQLITE_OK else {
            let msg = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close(handle)
            throw StudyStoreError(message: "\(path): \(msg)")
        }
        db = handle
        // Opening may wait for another process's lock for a while; the study loop then sets a
        // short timeout (`busyTimeoutMilliseconds`) so a locked file never freezes it.
        sqlite3_busy_timeout(handle, 5000)
        try exec("PRAGMA journal_mode=WAL")
        try exec("PRAGMA synchronous=FULL")
        try exec("""
            CREATE TABLE IF NOT EXISTS study (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS trials (
                id INTEGER PRIMARY KEY,
                lambda TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('pending','running','done','failed')),
                worker TEXT,
                attempts INTEGER NOT NULL DEFAULT 0,
                train_loss REAL, valid_loss REAL, test_loss REAL,
                trial_seconds REAL, finished_at REAL
            );
            """)
        // A quick integrity check: a corrupt file is an error, not silently recreated.
        let check = try queryStrings("PRAGMA quick_check")
        guard check == ["ok"] else { throw StudyStoreError(message: "\(path) is corrupt: \(check.joined(separator: "; "))") }
    }

    deinit { sqlite3_close(db) }

    /// How long a statement waits for another connection's lock before failing with
    /// `isBusy` (SQLite's busy handler); 5 s after `init`.
    public var busyTimeoutMilliseconds: Int32 = 5000 {
        didSet { sqlite3_busy_timeout(db, busyTimeoutMilliseconds) }
    }

    /// Applies one queued change.
    public func apply(_ write: StudyWrite) throws(StudyStoreError) {
        switch write {
        case .insert(let id, let lambda): try insert(id: id, lambda: lambda)
        case .running(let id, let worker): try markRunning(id: id, worker: worker)
        case .pending(let id): try markPending(id: id)
        case .done(let id, let train, let valid, let test, let trialSeconds, let studySeconds):
            try markDone(id: id, train: train, valid: valid, test: test, trialSeconds: trialSeconds, studySeconds: studySeconds)
        case .failed(let id): try markFailed(id: id)
        case .meta(let key, let value): try setMeta(key, value)
        }
    }

    /// Closes the database.
    public func close() {
        sqlite3_close(db)
        db = nil
    }

    // MARK: - Study metadata

    /// Reads a metadata value.
    public func meta(_ key: String) throws(StudyStoreError) -> String? {
        try query("SELECT value FROM study WHERE key = ?", [.text(key)]) { stmt in String(cString: sqlite3_column_text(stmt, 0)) }.first
    }

    /// Writes a metadata value.
    public func setMeta(_ key: String, _ value: String) throws(StudyStoreError) {
        try run("INSERT INTO study(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", [.text(key), .text(value)])
    }

    // MARK: - Trials

    /// All trials in id order.
    public func trials() throws(StudyStoreError) -> [TrialRecord] {
        try query("SELECT id, lambda, status, worker, attempts, train_loss, valid_loss, test_loss, trial_seconds, finished_at FROM trials ORDER BY id", []) { s in
            TrialRecord(
                id: Int(sqlite3_column_int64(s, 0)),
                lambda: Self.decodeLambda(String(cString: sqlite3_column_text(s, 1))),
                status: TrialStatus(rawValue: String(cString: sqlite3_column_text(s, 2))) ?? .failed,
                worker: sqlite3_column_type(s, 3) == SQLITE_NULL ? nil : String(cString: sqlite3_column_text(s, 3)),
                attempts: Int(sqlite3_column_int64(s, 4)),
                trainLoss: Self.double(s, 5), validLoss: Self.double(s, 6), testLoss: Self.double(s, 7),
                trialSeconds: Self.double(s, 8), finishedAtStudySeconds: Self.double(s, 9))
        }
    }

    /// Inserts a new pending trial.
    public func insert(id: Int, lambda: [Double]) throws(StudyStoreError) {
        try run("INSERT INTO trials(id, lambda, status) VALUES(?, ?, 'pending')", [.int(id), .text(Self.encodeLambda(lambda))])
    }

    /// Marks a trial leased to `worker`.
    public func markRunning(id: Int, worker: String) throws(StudyStoreError) {
        try run("UPDATE trials SET status = 'running', worker = ?, attempts = attempts + 1 WHERE id = ?", [.text(worker), .int(id)])
    }

    /// Returns a running trial to the queue (its worker died).
    public func markPending(id: Int) throws(StudyStoreError) {
        try run("UPDATE trials SET status = 'pending', worker = NULL WHERE id = ? AND status = 'running'", [.int(id)])
    }

    /// Stores a result.
    public func markDone(id: Int, train: Double, valid: Double, test: Double, trialSeconds: Double, studySeconds: Double) throws(StudyStoreError) {
        try run("UPDATE trials SET status = 'done', train_loss = ?, valid_loss = ?, test_loss = ?, trial_seconds = ?, finished_at = ? WHERE id = ?",
                [.double(train), .double(valid), .double(test), .double(trialSeconds), .double(studySeconds), .int(id)])
    }

    /// Marks a trial failed.
    public func markFailed(id: Int) throws(StudyStoreError) {
        try run("UPDATE trials SET status = 'failed' WHERE id = ?", [.int(id)])
    }

    /// On resume: trials that were running when the coordinator stopped go back to pending.
    public func requeueRunning() throws(StudyStoreError) -> Int {
        try run("UPDATE trials SET status = 'pending', worker = NULL WHERE status = 'running'", [])
        return Int(sqlite3_changes(db))
    }

    // MARK: - SQLite plumbing

    private enum Value { case int(Int), double(Double), text(String) }

    private func exec(_ sql: String) throws(StudyStoreError) {
        var err: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &err)
        if rc != SQLITE_OK {
            let msg = err.map { String(cString: $0) } ?? "error"
            sqlite3_free(err)
            throw StudyStoreError(message: msg, isBusy: Self.isBusy(rc))
        }
    }

    private static func isBusy(_ rc: Int32) -> Bool {
        let primary = rc & 0xff
        return primary == SQLITE_BUSY || primary == SQLITE_LOCKED
    }

    private func failure(_ rc: Int32) -> StudyStoreError {
        StudyStoreError(message: String(cString: sqlite3_errmsg(db)), isBusy: Self.isBusy(rc))
    }

    private func prepare(_ sql: String, _ values: [Value]) throws(StudyStoreError) -> OpaquePointer? {
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nil)
        guard rc == SQLITE_OK else { throw failure(rc) }
        for (i, v) in values.enumerated() {
            let idx = Int32(i + 1)
            switch v {
            case .int(let x): sqlite3_bind_int64(stmt, idx, Int64(x))
            case .double(let x): if x.isFinite { sqlite3_bind_double(stmt, idx, x) } else { sqlite3_bind_null(stmt, idx) }
            case .text(let s): sqlite3_bind_text(stmt, idx, s, -1, hypertrain_sqlite_transient())
            }
        }
        return stmt
    }

    private func run(_ sql: String, _ values: [Value]) throws(StudyStoreError) {
        let stmt = try prepare(sql, values)
        defer { sqlite3_finalize(stmt) }
        let rc = sqlite3_step(stmt)
        guard rc == SQLITE_DONE else { throw failure(rc) }
    }

    private func query<R>(_ sql: String, _ values: [Value], row: (OpaquePointer?) -> R) throws(StudyStoreError) -> [R] {
        let stmt = try prepare(sql, values)
        defer { sqlite3_finalize(stmt) }
        var out: [R] = []
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_ROW { out.append(row(stmt)); continue }
            if rc == SQLITE_DONE { return out }
            throw failure(rc)
        }
    }

    private func queryStrings(_ sql: String) throws(StudyStoreError) -> [String] {
        try query(sql, []) { String(cString: sqlite3_column_text($0, 0)) }
    }

    private static func double(_ s: OpaquePointer?, _ i: Int32) -> Double? {
        sqlite3_column_type(s, i) == SQLITE_NULL ? nil : sqlite3_column_double(s, i)
    }

    private static func encodeLambda(_ l: [Double]) -> String {
        "[" + l.map { "\($0)" }.joined(separator: ",") + "]"
    }

    private static func decodeLambda(_ s: String) -> [Double] {
        s.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).split(separator: ",").compactMap { Double($0) }
    }
}
