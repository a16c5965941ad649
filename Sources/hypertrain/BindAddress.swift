/// The host part of a ZeroMQ endpoint, for the checks and defaults that depend on where a
/// coordinator listens.
struct BindAddress {
    /// `tcp://HOST:PORT` → HOST (brackets of an IPv6 address removed); nil for ipc:// and
    /// inproc://.
    let host: String?

    init(_ endpoint: String) {
        guard endpoint.hasPrefix("tcp://") else { host = nil; return }
        var rest = Substring(endpoint.dropFirst("tcp://".count))
        if let colon = rest.lastIndex(of: ":") { rest = rest[..<colon] }
        if rest.hasPrefix("["), rest.hasSuffix("]") { rest = rest.dropFirst().dropLast() }
        host = String(rest)
    }

    /// Reachable from this machine only (127.0.0.0/8, ::1, localhost), or not TCP at all.
    var isLoopback: Bool {
        guard let host else { return true }
        return host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// The address the Prometheus endpoint binds by default next to coordinator endpoints
    /// `binds`: the host of the first TCP endpoint (all interfaces for `*` or 0.0.0.0), and
    /// loopback when the coordinator listens on ipc:// only — never wider than the coordinator.
    static func metricsHost(for binds: [String]) -> String {
        guard let host = binds.lazy.compactMap({ BindAddress($0).host }).first else { return "127.0.0.1" }
        return host == "*" ? "0.0.0.0" : host
    }
}
