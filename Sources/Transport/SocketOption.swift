/// A socket option `Socket.set(_:)` understands. Times are milliseconds; -1 means "forever"
/// where libzmq allows it.
public enum SocketOption: Sendable {
    /// ZMQ_LINGER: how long `close()` keeps unsent messages (0 drops them, -1 waits forever).
    /// Choose deliberately: 0 loses a Shutdown sent just before closing.
    case linger(milliseconds: Int32)
    /// ZMQ_ROUTING_ID: the id a ROUTER peer sees for this socket (1…255 bytes, not starting with 0).
    case routingID([UInt8])
    /// ZMQ_SNDHWM: queued outgoing messages per peer before send blocks / drops.
    case sendHighWaterMark(Int32)
    /// ZMQ_RCVHWM: queued incoming messages per peer.
    case receiveHighWaterMark(Int32)
    /// ZMQ_ROUTER_MANDATORY: a ROUTER fails with `.hostUnreachable` instead of silently
    /// dropping a message for an unknown routing id.
    case routerMandatory(Bool)
    /// ZMQ_HEARTBEAT_IVL: send a ZMTP PING every interval (0 = off).
    case heartbeatInterval(milliseconds: Int32)
    /// ZMQ_HEARTBEAT_TTL: ask the peer to time us out after this long without traffic.
    case heartbeatTTL(milliseconds: Int32)
    /// ZMQ_HEARTBEAT_TIMEOUT: drop the connection when no PONG/traffic arrives within this.
    case heartbeatTimeout(milliseconds: Int32)
    /// ZMQ_MAXMSGSIZE: drop peers that send a frame larger than this many bytes (-1 = no limit).
    case maxMessageSize(Int64)
    /// ZMQ_RECONNECT_IVL: initial reconnect delay.
    case reconnectInterval(milliseconds: Int32)
    /// ZMQ_RECONNECT_IVL_MAX: reconnect back-off ceiling (0 = no back-off).
    case reconnectIntervalMax(milliseconds: Int32)
    /// ZMQ_SNDTIMEO: a blocking send fails with `.wouldBlock` after this long.
    case sendTimeout(milliseconds: Int32)
    /// ZMQ_RCVTIMEO: a blocking receive fails with `.wouldBlock` after this long.
    case receiveTimeout(milliseconds: Int32)
    /// ZMQ_HANDSHAKE_IVL: give up a connection whose ZMTP/CURVE handshake takes longer.
    case handshakeInterval(milliseconds: Int32)
    /// ZMQ_IMMEDIATE: queue messages only on completed connections.
    case immediate(Bool)
    /// ZMQ_CURVE_SERVER + ZMQ_CURVE_SECRETKEY: this (binding) socket is a CURVE server.
    /// Clients are then authenticated by the ZAPAuthenticator on the same context, which
    /// must be running before `bind`.
    case curveServer(secretKey: String)
    /// ZMQ_CURVE_SERVERKEY + PUBLICKEY + SECRETKEY: this (connecting) socket is a CURVE client
    /// of the server with `serverPublicKey`, identified by `keyPair`.
    case curveClient(keyPair: CurveKeyPair, serverPublicKey: String)
    /// ZMQ_ZAP_DOMAIN: the domain passed to the ZAP handler.
    case zapDomain(String)
}
