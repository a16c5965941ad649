import Foundation
import Telemetry
import Transport
import Wire

/// A worker's session with its coordinator — the worker side of the peer layer: connect a
/// DEALER, say Hello until welcomed, send heartbeats when idle, notice a silent coordinator and
/// reconnect (naming the old worker id so its work is re-issued at once), number every message,
/// and stop on Shutdown, a signal, a dead parent or after giving up. The work is the caller's:
/// each task message goes to `answer`, whose reply is sent with a request for the next task.
final class CoordinatorLink {
    /// How the session runs (the worker's options, minus its role and data).
    struct Settings {
        var connect: String
        var curve: (keyPair: CurveKeyPair, serverPublicKey: String)?
        var parentPID: Int32?
        var giveUpAfter: Double
        var busyWaitMicroseconds: Int
        var log: @Sendable (String) -> Void
        /// The ZeroMQ context to use (the coordinator's, for a worker on a thread of the
        /// coordinator's process over inproc://); nil: one of our own.
        var context: ZMQContext? = nil
    }

    /// A message for the coordinator with the versions it refers to.
    struct Outgoing {
        var body: Message.Body
        var phiVersion: UInt64 = 0
        var lambdaVersion: UInt64 = 0
    }

    /// Thrown by `welcome`/`answer` when the session must start over (register again): a task
    /// the worker cannot use, for instance φ it does not hold.
    struct Restart: Error { let reason: String }

    /// Work requests kept outstanding: the next task is queued while this one computes.
    static let pipelineDepth = 2

    private let settings: Settings
    private var sequence: UInt64 = 0
    /// When this worker last sent anything: a Heartbeat goes out after an interval without
    /// sending. Receiving does not count — an idle validator that only hears the coordinator's
    /// heartbeats must still send its own, or it is declared dead.
    private var lastSent = 0.0
    /// The id the coordinator gave us (empty before the first Welcome); sent as our sender id and,
    /// after a reconnect, as `previousWorkerID`.
    private(set) var workerID = ""

    init(settings: Settings) { self.settings = settings }

    /// Runs sessions until one ends the worker. `hello` builds our Hello (it names the previous
    /// worker id), `welcome` prepares for the coordinator's spec, `answer` computes a task's reply
    /// (nil: nothing to send).
    func run(hello: (_ previousWorkerID: String) -> Hello,
             welcome: (Welcome) throws -> Void,
             answer: (Message) throws -> Outgoing?) throws -> WorkerNode.Exit {
        let ownContext = settings.context == nil
        let context = try settings.context ?? ZMQContext()
        defer { if ownContext { context.close() } }
        var interval = 1.0
        var liveness = 5
        // When the coordinator was last heard from (or we started waiting for it): after
        // `giveUpAfter` seconds without it, registered before or not, the worker stops.
        var lastContact = Self.now()
        let log = settings.log
        while true {
            let socket = try connectSocket(context)
            defer { socket.close() }
            // A DEALER with no live connection cannot take a message: the send times out
            // (wouldBlock) instead of blocking, and we keep waiting for the coordinator.
            try? send(socket, Outgoing(body: .hello(hello(workerID))))
            var lastHeard = Self.now()
            var registered = false
            var lastHello = lastHeard
            func givingUp(_ now: Double) -> Bool {
                settings.giveUpAfter > 0 && now - lastContact > settings.giveUpAfter
            }
            session: while true {
                do {
                    if Signals.pending != nil {
                        if registered { try? send(socket, Outgoing(body: .shutdown(Shutdown(reason: "worker stopped by a signal")))) }
                        return .signal
                    }
                    if Signals.orphaned(from: settings.parentPID) { return .orphaned }
                    guard let frames = try socket.receiveFrames(timeoutMs: Int32(min(interval, 0.5) * 1000)) else {
                        let now = Self.now()
                        if !registered && now - lastHello > interval {
                            // No Welcome yet: the coordinator may not be up (or refuses our key); say Hello again.
                            if givingUp(now) { return .gaveUp }
                            try send(socket, Outgoing(body: .hello(hello(workerID))))
                            lastHello = now
                        } else if registered && now - lastHeard > interval * Double(liveness) {
                            log("\(workerID): coordinator silent for \(String(format: "%.1f", now - lastHeard)) s; reconnecting")
                            if givingUp(now) { return .gaveUp }
                            break session
                        } else if registered && now - lastSent >= interval {
                            try send(socket, Outgoing(body: .heartbeat(Heartbeat(unixMs: UInt64(Date().timeIntervalSince1970 * 1000)))))
                        }
                        continue
                    }
                    lastHeard = Self.now()
                    lastContact = lastHeard
                    let message: Message
                    do { message = try WireCodec.decode(frames) } catch {
                        log("dropped an undecodable message (\(frames.count) frames): \(error)")
                        continue
                    }
                    switch message.body {
                    case .welcome(let w):
                        workerID = w.workerID
                        interval = max(Double(w.heartbeatIntervalMs) / 1000, 0.05)
                        liveness = max(Int(w.heartbeatLiveness), 2)
                        try welcome(w)
                        // Preparing (loading data) is our time, not the coordinator's silence.
                        lastHeard = Self.now()
                        registered = true
                        log("registered as \(workerID)")
                        for _ in 0..<Self.pipelineDepth { try send(socket, Outgoing(body: .workRequest)) }
                    case .error(let e):
                        if e.code == .notRegistered { log("coordinator does not know us; re-registering"); break session }
                        if e.code != .stale && e.code != .duplicate { log("coordinator refused a message: \(e.code): \(e.message)") }
                    case .shutdown(let s):
                        return .shutdown(s.reason)
                    case .heartbeat, .ack, .idle, .status:
                        break
                    case .trainTask, .validTask, .trialTask:
                        guard registered else { break session }
                        if let reply = try answer(message) {
                            try send(socket, reply)
                            try send(socket, Outgoing(body: .workRequest))
                        }
                    default:
                        log("ignored unexpected \(message.body.name)")
                    }
                } catch let restart as Restart {
                    log("\(restart.reason); re-registering")
                    break session
                } catch let error as TransportError where error.code == .wouldBlock {
                    // No live connection to hand the message to (coordinator gone, or our key refused).
                    if !registered {
                        let now = Self.now()
                        if givingUp(now) { return .gaveUp }
                        lastHello = now
                        continue session
                    }
                    log("\(workerID): cannot reach the coordinator; reconnecting")
                    break session
                }
            }
        }
    }

    private static func now() -> Double { ProgressLine.monotonicSeconds() }

    private func connectSocket(_ context: ZMQContext) throws -> Socket {
        let s = try Socket(context: context, kind: .dealer)
        try s.set(.linger(milliseconds: 500))
        try s.set(.reconnectInterval(milliseconds: 100))
        try s.set(.reconnectIntervalMax(milliseconds: 2000))
        try s.set(.sendTimeout(milliseconds: 1000))
        if let c = settings.curve { try s.set(.curveClient(keyPair: c.keyPair, serverPublicKey: c.serverPublicKey)) }
        s.spinBeforeBlocking = .microseconds(settings.busyWaitMicroseconds)
        try s.connect(settings.connect)
        return s
    }

    private func send(_ socket: Socket, _ out: Outgoing) throws {
        sequence += 1
        try socket.send(Message(senderID: workerID, phiVersion: out.phiVersion, lambdaVersion: out.lambdaVersion,
                                sequence: sequence, body: out.body))
        lastSent = Self.now()
    }
}
