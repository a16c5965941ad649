import Foundation
import Testing
import HyperOpt
import Wire
@testable import Cluster

/// The shared peer layer on its own: what every coordinator gets from it.
@Suite struct PeerTableTests {
    typealias Table = PeerTable<Int, String>

    static func frames(_ body: Message.Body, from sender: String = "", sequence: UInt64) -> [[UInt8]] {
        WireCodec.encode(Message(senderID: sender, sequence: sequence, body: body))
    }

    static func sent(_ actions: [PeerAction<String>]) -> [(peer: [UInt8], message: Message)] {
        actions.compactMap { if case .send(let p, let m) = $0 { (p, m) } else { nil } }
    }

    /// Registers `peer` through `receive` + `register` as a coordinator does.
    static func register(_ table: inout Table, _ peer: [UInt8], role: Role = .trainer, previous: String = "", now: Double) -> String {
        guard case .hello(let hello) = table.receive(peer: peer, frames: frames(.hello(Hello(role: role, previousWorkerID: previous)), sequence: 1), now: now) else {
            Issue.record("a Hello was not handed to the state machine")
            return ""
        }
        return table.register(peer, hello: hello, prefix: "w", slot: 0, spec: ClusterSpec.spec(config: ExperimentConfig(), dataFingerprint: 0), now: now).workerID
    }

    @Test("registration gives consecutive ids, a Welcome with the heartbeat settings, and counts")
    func registration() throws {
        var t = Table(heartbeatInterval: 0.5, liveness: 4)
        let a = Self.register(&t, [1], now: 0)
        let b = Self.register(&t, [2], role: .validator, now: 0)
        #expect(a == "w-1" && b == "w-2")
        #expect(t.count(.trainer) == 1 && t.count(.validator) == 1 && t.registrations == 2)
        guard case .hello(let hello) = t.receive(peer: [3], frames: Self.frames(.hello(Hello(role: .trainer)), sequence: 1), now: 0) as Table.Intake else {
            Issue.record("no hello"); return
        }
        let out = Self.sent(t.register([3], hello: hello, prefix: "w", slot: 7, spec: ClusterSpec.spec(config: ExperimentConfig(), dataFingerprint: 0), now: 0).actions)
        guard case .welcome(let w) = try #require(out.first).message.body else { Issue.record("no Welcome"); return }
        #expect(w.workerID == "w-3" && w.heartbeatIntervalMs == 500 && w.heartbeatLiveness == 4)
        #expect(t[[3]]?.slot == 7)
    }

    @Test("unregistered senders, wrong sender ids and replayed sequence numbers are refused before the state machine sees them")
    func refusals() throws {
        var t = Table(heartbeatInterval: 1, liveness: 5)
        func code(_ intake: Table.Intake) -> ErrorCode? {
            guard case .handled(let actions) = intake else { return nil }
            for (_, m) in Self.sent(actions) { if case .error(let e) = m.body { return e.code } }
            return nil
        }
        #expect(code(t.receive(peer: [9], frames: Self.frames(.workRequest, sequence: 1), now: 0)) == .notRegistered)
        #expect(code(t.receive(peer: [9], frames: [[0xFF, 0x01]], now: 0)) != nil, "undecodable bytes must be refused")
        let id = Self.register(&t, [1], now: 0)
        #expect(code(t.receive(peer: [1], frames: Self.frames(.workRequest, from: "someone-else", sequence: 2), now: 0)) == .unexpected)
        guard case .message(let passed, let role) = t.receive(peer: [1], frames: Self.frames(.workRequest, from: id, sequence: 2), now: 0) else {
            Issue.record("a fresh message was not passed on"); return
        }
        #expect(passed.senderID == id && role == .trainer)
        #expect(code(t.receive(peer: [1], frames: Self.frames(.workRequest, from: id, sequence: 2), now: 0)) == .duplicate)
        #expect(code(t.receive(peer: [1], frames: Self.frames(.workRequest, from: id, sequence: 1), now: 0)) == .duplicate)
        guard case .handled(let hb) = t.receive(peer: [1], frames: Self.frames(.heartbeat(Heartbeat(unixMs: 0)), from: id, sequence: 3), now: 0) else {
            Issue.record("a heartbeat reached the state machine"); return
        }
        #expect(hb.isEmpty)
        #expect(t.rejected["\(ErrorCode.notRegistered)"] == 1 && t.rejected["\(ErrorCode.duplicate)"] == 2 && t.rejected["\(ErrorCode.unexpected)"] == 1)
    }

    @Test("liveness: a working peer dies after interval × liveness of silence; a new one gets the registration grace; one that only heartbeats is dropped after it")
    func liveness() {
        var t = Table(heartbeatInterval: 1, liveness: 5)
        let worker = Self.register(&t, [1], now: 0)
        _ = t.receive(peer: [1], frames: Self.frames(.workRequest, from: worker, sequence: 2), now: 0) as Table.Intake
        let ghost = Self.register(&t, [2], now: 0)
        #expect(t.expired(now: 4.9).isEmpty)
        #expect(t.expired(now: 5.1).map(\.peer) == [[1]], "the working peer is silent past 5 s; the new one is within its grace")
        // The ghost keeps sending heartbeats but never asks for work.
        for s in 0..<40 {
            _ = t.receive(peer: [2], frames: Self.frames(.heartbeat(Heartbeat(unixMs: 0)), from: ghost, sequence: UInt64(2 + s)), now: Double(s)) as Table.Intake
        }
        let dead = t.expired(now: PeerTable<Int, String>.registrationGrace + 1)
        #expect(dead.contains { $0.peer == [2] && $0.reason.contains("never asked for work") })
    }

    @Test("a Hello replaces the peer's own entry and the entry of the worker id it had before reconnecting")
    func replacement() {
        var t = Table(heartbeatInterval: 1, liveness: 5)
        let old = Self.register(&t, [1], now: 0)
        let hello = Hello(role: .trainer, previousWorkerID: old)
        #expect(t.replaced(by: [2], hello: hello).map(\.reason) == ["reconnected"])
        #expect(t.replaced(by: [1], hello: Hello(role: .trainer)).map(\.reason) == ["re-registered"])
        #expect(t.replaced(by: [3], hello: Hello(role: .trainer, previousWorkerID: "nobody")).isEmpty)
    }

    @Test("heartbeats go only to peers nothing was sent to for an interval; every send has a new sequence number; shutdown reaches everyone")
    func sends() {
        var t = Table(heartbeatInterval: 1, liveness: 5)
        _ = Self.register(&t, [1], now: 0)
        _ = Self.register(&t, [2], now: 0)
        _ = t.send([1], .idle(Idle(retryAfterMs: 1)))
        #expect(Self.sent(t.heartbeats(now: 0.5)).isEmpty)
        _ = t.send([1], .ack(Ack(sequence: 1)))  // recorded at the table's clock (0.5)
        let beats = Self.sent(t.heartbeats(now: 1.2))
        #expect(beats.map(\.peer) == [[2]], "peer 1 was sent an ack at 0.5")
        let all = Self.sent(t.shutdownAll(reason: "done"))
        #expect(all.map(\.peer) == [[1], [2]])
        let sequences = (beats + all).map(\.message.sequence)
        #expect(sequences == sequences.sorted() && Set(sequences).count == sequences.count)
        #expect(all.allSatisfy { $0.message.senderID == "coordinator" })
    }

    @Test("farewell: after shutdownAll, a routing id that writes in is sent the same Shutdown once; before it, or to a peer already told, nothing")
    func farewell() {
        var t = Table(heartbeatInterval: 1, liveness: 5)
        _ = Self.register(&t, [1], now: 0)
        #expect(t.farewell([9]) == nil, "the run is not over yet")
        let all = Self.sent(t.shutdownAll(reason: "run complete"))
        #expect(all.map(\.peer) == [[1]])
        #expect(t.farewell([1]) == nil, "peer 1 was told by shutdownAll")
        let late = Self.sent(t.farewell([9]).map { [$0] } ?? [])
        #expect(late.map(\.peer) == [[9]])
        guard case .shutdown(let s)? = late.first?.message.body else {
            Issue.record("no Shutdown for the reconnected socket"); return
        }
        #expect(s.reason == "run complete")
        #expect(late[0].message.sequence > all[0].message.sequence)
        #expect(t.farewell([9]) == nil, "once per routing id")
    }
}

@Suite struct LeaseTableTests {
    @Test("a lease is taken only by its holder; a dead peer's leases come back in issue order; close ignores the holder")
    func leases() {
        var l = LeaseTable<String>()
        let a = l.issue("a", to: [1], now: 0)
        let b = l.issue("b", to: [2], now: 1)
        let c = l.issue("c", to: [1], now: 2)
        #expect(a < b && b < c)
        #expect(l.take(a, from: [2]) == nil, "peer 2 does not hold lease a")
        #expect(l.lease(a, heldBy: [1])?.task == "a")
        #expect(l.holds([1]) && l.holds([2]))
        #expect(l.release(heldBy: [1]).map(\.task) == ["a", "c"])
        #expect(!l.holds([1]) && l.take(a, from: [1]) == nil)
        #expect(l.close(b)?.issuedAt == 1)
        #expect(l.open.isEmpty)
        let d = l.issue("d", to: [3], now: 3)
        l.removeAll { $0.task == "d" }
        #expect(l.lease(d, heldBy: [3]) == nil)
    }
}
