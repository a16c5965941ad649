import Foundation
import Wire

/// A coordinator's registered peers and everything about talking to them that does not depend
/// on the work handed out: registration ids, liveness by heartbeat, (worker id, sequence)
/// deduplication, sequenced sends and shutdown. The hyper-training and the study coordinator
/// each keep one and add their own scheduling and result intake; `Slot` is the per-peer state
/// that scheduling needs, `Event` what the state machine reports to its loop.
///
/// A value type: the owning state machine mutates it in place, and tests build one directly.
struct PeerTable<Slot, Event: Sendable> {
    /// A registered peer.
    struct Peer {
        /// The id given in `Welcome` (e.g. `trainer-3`); the peer sends it as its sender id.
        let workerID: String
        /// The role it registered with.
        let role: Role
        /// When it registered.
        let registeredAt: Double
        /// When anything was last received from it.
        var lastHeard: Double
        /// When anything was last sent to it (heartbeats go out after an interval without).
        var lastSent: Double
        /// Highest sequence number processed from it.
        var lastSequence: UInt64 = 0
        /// It has sent something besides Hello and heartbeats (a work request, a result).
        var active = false
        /// The state machine's own per-peer state.
        var slot: Slot
    }

    /// The sender id of every message a coordinator sends.
    static var senderID: String { "coordinator" }

    /// Seconds a newly registered peer may go without asking for work (it loads its data
    /// first) before it is declared dead, whatever the heartbeat settings: a peer that
    /// registers and only sends heartbeats is not a worker.
    static var registrationGrace: Double { 30 }

    /// Heartbeat interval, seconds.
    let heartbeatInterval: Double
    /// Missed intervals before a peer is dead.
    let liveness: Int
    /// The registered peers, by routing id.
    private(set) var peers: [[UInt8]: Peer] = [:]
    /// Messages refused, by reason (an error code's name, or the state machine's own reason).
    private(set) var rejected: [String: UInt64] = [:]
    /// Registrations accepted.
    private(set) var registrations: UInt64 = 0
    /// Peers removed (dead, left, replaced).
    private(set) var removals: UInt64 = 0
    private var nextNumber = 1
    private var sequence: UInt64 = 0
    /// Set by `shutdownAll`: why the peers were told to stop, and the routing ids told.
    private var shutdownReason: String?
    private var toldToStop: Set<[UInt8]> = []
    /// The clock of the event being handled (so sends record when they happened).
    private(set) var now: Double = 0
    /// The φ and λ̂ versions stamped on messages the table sends itself (welcomes, refusals,
    /// heartbeats); the hyper-training coordinator sets them before each event.
    var versions: (phi: UInt64, lambda: UInt64) = (0, 0)

    init(heartbeatInterval: Double, liveness: Int) {
        self.heartbeatInterval = heartbeatInterval
        self.liveness = liveness
    }

    subscript(key: [UInt8]) -> Peer? {
        get { peers[key] }
        set { peers[key] = newValue }
    }

    /// Registered peers in a stable order (routing ids ascending).
    var orderedKeys: [[UInt8]] { peers.keys.sorted { $0.lexicographicallyPrecedes($1) } }

    /// Registered peers with this role.
    func count(_ role: Role) -> Int { peers.values.reduce(0) { $0 + ($1.role == role ? 1 : 0) } }

    // MARK: - Intake

    /// What the state machine must do with a message after the peer layer has looked at it.
    enum Intake {
        /// A registration: the state machine decides (roles it accepts, what it replaces) and
        /// calls `register`.
        case hello(Hello)
        /// A status request (from any socket, registered or not).
        case statusRequest(sequence: UInt64)
        /// A new message from a registered peer, its sender id checked, not a heartbeat.
        case message(Message, role: Role)
        /// Fully handled here (a refusal, or a heartbeat): only these actions remain.
        case handled([PeerAction<Event>])
        /// An undecodable message from a registered peer, refused with these actions. Which
        /// task it answered is unknown, and the peer drops a refused task (docs/protocol.md §6):
        /// the state machine hands that peer's open work out again.
        case undecodable([PeerAction<Event>])
    }

    /// Decodes a message and checks it against the table: undecodable messages, unregistered
    /// peers, wrong sender ids and replayed sequence numbers are refused here (with a reply
    /// naming the reason) and never reach the state machine.
    mutating func receive<F: WireFrame>(peer: [UInt8], frames: [F], now: Double) -> Intake {
        self.now = now
        let message: Message
        do {
            message = try WireCodec.decode(frames)
        } catch {
            let code = error.errorCode
            reject("\(code)")
            let size = frames.reduce(0) { $0 + $1.count }
            let registered = peers[peer] != nil
            let refusal: [PeerAction<Event>] = [
                .log("rejected \(frames.count)-frame message of \(size) bytes from \(Self.hex(peer)): \(error)"),
                send(peer, .error(ErrorReply(code: code, message: "\(error)", inReplyTo: WireCodec.peekHeader(frames)?.sequence ?? 0)))]
            return registered ? .undecodable(refusal) : .handled(refusal)
        }
        peers[peer]?.lastHeard = now
        switch message.body {
        case .hello(let hello): return .hello(hello)
        case .statusRequest: return .statusRequest(sequence: message.sequence)
        default: break
        }
        guard let p = peers[peer] else {
            reject("\(ErrorCode.notRegistered)")
            return .handled([.log("message \(message.body.name) from unregistered peer \(Self.hex(peer)); asked to register"),
                             send(peer, .error(ErrorReply(code: .notRegistered, message: "send Hello first", inReplyTo: message.sequence)))])
        }
        if case .heartbeat = message.body { return .handled([]) }
        guard message.senderID == p.workerID else {
            return .handled([refuse(peer, .unexpected, "sender id \(message.senderID) is not this peer's id", inReplyTo: message.sequence)])
        }
        // (worker id, sequence) deduplication: results are not idempotent.
        guard message.sequence > p.lastSequence else {
            reject("\(ErrorCode.duplicate)")
            return .handled([.log("duplicate sequence \(message.sequence) from \(p.workerID); ignored"),
                             send(peer, .error(ErrorReply(code: .duplicate, message: "already processed", inReplyTo: message.sequence)))])
        }
        peers[peer]?.lastSequence = message.sequence
        peers[peer]?.active = true
        return .message(message, role: p.role)
    }

    // MARK: - Registration and liveness

    /// The entries a Hello from `peer` replaces: its own earlier registration, and the entry of
    /// the worker id it says it had before reconnecting (a new socket has a new routing id), so
    /// that entry's work is re-issued now instead of after the liveness timeout.
    func replaced(by peer: [UInt8], hello: Hello) -> [(peer: [UInt8], reason: String)] {
        var out: [(peer: [UInt8], reason: String)] = []
        if peers[peer] != nil { out.append((peer, "re-registered")) }
        if !hello.previousWorkerID.isEmpty,
           let old = peers.first(where: { $0.key != peer && $0.value.workerID == hello.previousWorkerID })?.key {
            out.append((old, "reconnected"))
        }
        return out
    }

    /// Registers `peer` as `\(prefix)-N` and welcomes it.
    mutating func register(_ peer: [UInt8], hello: Hello, prefix: String, slot: Slot, spec: ExperimentSpec,
                                  now: Double) -> (workerID: String, actions: [PeerAction<Event>]) {
        self.now = now
        let id = "\(prefix)-\(nextNumber)"
        nextNumber += 1
        peers[peer] = Peer(workerID: id, role: hello.role, registeredAt: now, lastHeard: now, lastSent: now, slot: slot)
        registrations += 1
        let welcome = Welcome(workerID: id, spec: spec, heartbeatIntervalMs: UInt32(heartbeatInterval * 1000),
                              heartbeatLiveness: UInt32(liveness))
        return (id, [.log("registered \(id) (host \(hello.hostname.prefix(64)), pid \(hello.pid))"), send(peer, .welcome(welcome))])
    }

    /// Removes a peer; nil when it is not registered.
    mutating func remove(_ peer: [UInt8]) -> Peer? {
        guard let p = peers.removeValue(forKey: peer) else { return nil }
        removals += 1
        return p
    }

    /// Peers to declare dead at `now`: silent for `liveness` heartbeat intervals, or registered
    /// longer than the grace period without ever asking for work.
    func expired(now: Double) -> [(peer: [UInt8], reason: String)] {
        let deadline = heartbeatInterval * Double(liveness)
        var out: [(peer: [UInt8], reason: String)] = []
        for key in orderedKeys {
            let p = peers[key]!
            let silence = now - p.lastHeard
            if silence > (p.active ? deadline : max(deadline, Self.registrationGrace)) {
                out.append((key, "silent for \(String(format: "%.1f", silence)) s"))
            } else if !p.active && now - p.registeredAt > Self.registrationGrace {
                out.append((key, "registered \(Int(Self.registrationGrace)) s ago and never asked for work"))
            }
        }
        return out
    }

    /// Heartbeats to the peers nothing was sent to for an interval.
    mutating func heartbeats(now: Double) -> [PeerAction<Event>] {
        self.now = now
        return orderedKeys.filter { now - peers[$0]!.lastSent >= heartbeatInterval }
            .map { send($0, .heartbeat(Heartbeat(unixMs: UInt64(Date().timeIntervalSince1970 * 1000)))) }
    }

    /// Tells every peer to stop, and remembers why for the farewell.
    mutating func shutdownAll(reason: String) -> [PeerAction<Event>] {
        shutdownReason = reason
        toldToStop = Set(orderedKeys)
        return orderedKeys.map { send($0, .shutdown(Shutdown(reason: reason))) }
    }

    /// After `shutdownAll`: the Shutdown for a routing id that writes in (once per id; nil
    /// before `shutdownAll` or when already told). A worker that found the coordinator silent
    /// just before the end replaced its socket, and the Shutdown sent to the old one was lost;
    /// its new Hello is answered here (`ServeLoop.farewell`).
    mutating func farewell(_ peer: [UInt8]) -> PeerAction<Event>? {
        guard let reason = shutdownReason, toldToStop.insert(peer).inserted else { return nil }
        return send(peer, .shutdown(Shutdown(reason: reason)))
    }

    // MARK: - Sending and refusing

    /// The next message to `peer`, numbered in the coordinator's one sequence. A send the loop
    /// makes later (`recordSend: false`) updates the peer's `lastSent` itself.
    mutating func send(_ peer: [UInt8], _ body: Message.Body, phiVersion: UInt64? = nil, lambdaVersion: UInt64? = nil,
                              recordSend: Bool = true) -> PeerAction<Event> {
        sequence += 1
        if recordSend { peers[peer]?.lastSent = now }
        return .send(peer: peer, message: Message(senderID: Self.senderID, phiVersion: phiVersion ?? versions.phi,
                                                  lambdaVersion: lambdaVersion ?? versions.lambda, sequence: sequence, body: body))
    }

    /// Counts a refusal.
    mutating func reject(_ reason: String) { rejected[reason, default: 0] += 1 }

    /// Counts a refusal and answers it with an Error reply.
    mutating func refuse(_ peer: [UInt8], _ code: ErrorCode, _ why: String, inReplyTo: UInt64) -> PeerAction<Event> {
        reject("\(code)")
        return send(peer, .error(ErrorReply(code: code, message: why, inReplyTo: inReplyTo)))
    }

    /// A routing id for logs (its first 8 bytes in hex).
    static func hex(_ bytes: [UInt8]) -> String { bytes.prefix(8).map { String(format: "%02x", $0) }.joined() }
}
