/// Work handed out and not yet answered, by lease id: each lease names the peer it went to, so a
/// result is accepted only from that peer, and a dead peer's work is found and re-issued.
/// `Task` is what the state machine needs to know about the work (a step's task, a trial).
struct LeaseTable<Task> {
    /// A task handed to a peer.
    struct Lease {
        let id: UInt64
        let task: Task
        let peer: [UInt8]
        let issuedAt: Double
    }

    private(set) var open: [UInt64: Lease] = [:]
    private var nextID: UInt64 = 1

    /// Leases issued so far.
    var issuedCount: UInt64 { nextID - 1 }

    /// Leases `task` to `peer`; returns the lease id the task message carries.
    mutating func issue(_ task: Task, to peer: [UInt8], now: Double) -> UInt64 {
        let id = nextID
        nextID += 1
        open[id] = Lease(id: id, task: task, peer: peer, issuedAt: now)
        return id
    }

    /// The open lease `id` when it was handed to `peer`.
    func lease(_ id: UInt64, heldBy peer: [UInt8]) -> Lease? {
        guard let l = open[id], l.peer == peer else { return nil }
        return l
    }

    /// Closes lease `id` when `peer` holds it.
    mutating func take(_ id: UInt64, from peer: [UInt8]) -> Lease? {
        guard lease(id, heldBy: peer) != nil else { return nil }
        return open.removeValue(forKey: id)
    }

    /// Closes lease `id` whoever holds it.
    mutating func close(_ id: UInt64) -> Lease? { open.removeValue(forKey: id) }

    /// Closes every lease `peer` holds (it died or left), lowest id first.
    mutating func release(heldBy peer: [UInt8]) -> [Lease] {
        let held = open.values.filter { $0.peer == peer }.sorted { $0.id < $1.id }
        for l in held { open.removeValue(forKey: l.id) }
        return held
    }

    /// `true` when `peer` holds a lease.
    func holds(_ peer: [UInt8]) -> Bool { open.values.contains { $0.peer == peer } }

    /// Closes the leases that are void (e.g. of a step that is over).
    mutating func removeAll(where void: (Lease) -> Bool) {
        open = open.filter { !void($0.value) }
    }
}
