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
}
