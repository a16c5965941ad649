import Foundation
public import Logging

/// The process's logging: swift-log `Logger`s whose lines go to standard error as plain
/// `label: message` text, the form the deployment scripts and tests grep for
/// (`coordinator: registered trainer-1 …`), without swift-log's default timestamp and level
/// columns.
///
/// ``bootstrap(level:)`` installs the handler once per process; the level can still be set
/// later (``level``), because every ``writer(_:)`` line makes its `Logger` at the time of the
/// call, which costs one factory call and is negligible next to what is being logged.
public enum Log {
    private static let state = LockedLevel()

    /// The lowest level written; `info` unless `--log-level` says otherwise.
    public static var level: Logger.Level {
        get { state.level }
        set { bootstrap(); state.level = newValue }
    }

    /// Installs ``PlainLogHandler`` as swift-log's handler; later calls only set the level.
    public static func bootstrap(level: Logger.Level? = nil) {
        state.bootstrapOnce {
            LoggingSystem.bootstrap { label in PlainLogHandler(label: label, logLevel: Log.state.level) }
        }
        if let level { state.level = level }
    }

    /// A logger labelled `label` (its lines start `label: `); an empty label adds no prefix.
    public static func logger(_ label: String) -> Logger {
        bootstrap()
        return Logger(label: label)
    }

    /// A line sink for the components that take a `(String) -> Void` log: each line is an
    /// `info` message of a logger labelled `label`.
    public static func writer(_ label: String, level: Logger.Level = .info) -> @Sendable (String) -> Void {
        { line in logger(label).log(level: level, "\(line)") }
    }
}

/// The level, and whether swift-log has been bootstrapped, behind one lock.
private final class LockedLevel: @unchecked Sendable {
    // @unchecked Sendable: both fields are only touched while holding `lock`.
    private let lock = NSLock()
    private var current: Logger.Level = .info
    private var bootstrapped = false

    var level: Logger.Level {
        get { lock.withLock { current } }
        set { lock.withLock { current = newValue } }
    }

    func bootstrapOnce(_ body: () -> Void) {
        lock.lock()
        defer { lock.unlock() }
        guard !bootstrapped else { return }
        bootstrapped = true
        body()
    }
}

/// Writes each message as one line, `label: message` (or just the message for an empty
/// label), to standard error in a single `write`, so lines from different threads and
/// processes sharing a log file do not interleave. Metadata, if any, follows as `key=value`.
public struct PlainLogHandler: LogHandler {
    /// The logger's label: the line prefix.
    public let label: String
    /// The lowest level written.
    public var logLevel: Logger.Level
    /// Metadata added to every line.
    public var metadata: Logger.Metadata = [:]

    /// A handler for `label` writing messages at `logLevel` and above.
    public init(label: String, logLevel: Logger.Level) {
        self.label = label
        self.logLevel = logLevel
    }

    /// One metadata value.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// The text of one line, without the newline.
    public func format(_ message: Logger.Message, metadata extra: Logger.Metadata?) -> String {
        var line = label.isEmpty ? message.description : label + ": " + message.description
        let all = metadata.merging(extra ?? [:]) { $1 }
        if !all.isEmpty {
            line += " " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        return line
    }

    /// Writes the event's line to standard error.
    public func log(event: LogEvent) {
        FileHandle.standardError.write(Data((format(event.message, metadata: event.metadata) + "\n").utf8))
    }
}
