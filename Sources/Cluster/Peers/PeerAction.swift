import Wire

/// What a coordinator's I/O loop must do after an event: both coordinators are state machines
/// (messages and clock ticks in, actions out) that differ only in the events they report.
public enum PeerAction<Event: Sendable>: Sendable {
    /// Send `message` to the peer with this routing id.
    case send(peer: [UInt8], message: Message)
    /// Log a line (never a payload).
    case log(String)
    /// Something the loop reports on (a completed step, a finished trial).
    case event(Event)
}
