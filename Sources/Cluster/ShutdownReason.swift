/// The `reason` texts of `Shutdown` that peers act on. The protocol carries only a string, so
/// the coordinator's two endings are told apart by these fixed prefixes (docs/protocol.md §4).
public enum ShutdownReason {
    /// The run is over: the worker exits 0 and is not restarted.
    public static let runComplete = "run complete"
    /// Prefix of the reason sent when the coordinator is stopped by a signal (it checkpointed
    /// and will continue with `--resume`).
    public static let coordinatorStoppedPrefix = "coordinator stopped"

    /// The reason sent when the coordinator stops on `signal`.
    public static func coordinatorStopped(signal: Int32) -> String {
        "\(coordinatorStoppedPrefix) by signal \(signal); it continues from its checkpoint when restarted with --resume"
    }

    /// Whether `reason` says the coordinator stopped (rather than the run being complete).
    public static func isCoordinatorStopped(_ reason: String) -> Bool { reason.hasPrefix(coordinatorStoppedPrefix) }
}
