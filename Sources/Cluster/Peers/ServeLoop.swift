import Telemetry
import Transport

/// The I/O loop both coordinators run around their state machines: receive a batch of
/// messages and hand each to the machine, tick it on the heartbeat clock, stop at the end or on
/// SIGINT/SIGTERM. What the machine returns is performed by the caller's closures.
struct ServeLoop {
    /// The bound ROUTER socket.
    let server: RouterServer
    /// Seconds between ticks (and the longest a receive waits).
    let tickInterval: Double

    /// The loop's clock (monotonic seconds).
    static func now() -> Double { ProgressLine.monotonicSeconds() }

    /// Runs until `isFinished` says so or a signal arrives; returns the signal, if one stopped it.
    func run(isFinished: () -> Bool,
             handle: (_ peer: [UInt8], _ frames: [ReceivedFrame], _ now: Double) -> Void,
             tick: (_ now: Double) -> Void) throws -> Int32? {
        Signals.install()
        var lastTick = Self.now()
        while !isFinished() {
            if let s = Signals.pending { return s }
            for (peer, frames) in try server.receiveFrames(timeout: tickInterval) {
                handle(peer, frames, Self.now())
                if isFinished() { break }
            }
            let now = Self.now()
            if now - lastTick >= tickInterval {
                tick(now)
                lastTick = now
            }
        }
        return nil
    }

    /// After the coordinator told its peers to stop: until `deadline` (this clock), hands the
    /// routing id of every message that arrives to `answer` (which replies with the Shutdown).
    /// A worker that found the coordinator silent just before the end (a stall longer than its
    /// liveness window) reconnected with a new socket, so the Shutdown sent to the old one was
    /// lost; without this it would wait `--give-up-after` for a coordinator that is gone. Messages
    /// queued while the coordinator evaluated count too. A signal ends it early, and a run a
    /// signal stopped skips it: that coordinator comes back with `--resume`, which a worker that
    /// missed its Shutdown is waiting for.
    func farewell(until deadline: Double, answer: (_ peer: [UInt8]) -> Void) throws {
        while Signals.pending == nil {
            let left = deadline - Self.now()
            guard left > 0 else { return }
            for (peer, _) in try server.receiveFrames(timeout: min(left, tickInterval)) { answer(peer) }
        }
    }
}
