import Foundation

/// Counters and gauges for cluster operators, rendered in the Prometheus text exposition
/// format 0.0.4 and served by ``PrometheusServer``.
///
/// ```swift
/// let metrics = MetricsRegistry()
/// let applied = metrics.counter("hypertrain_gradients_applied_total",
///                               help: "Gradient updates applied to phi.", labels: ["role": "coordinator"])
/// applied.inc()
/// metrics.gauge("hypertrain_workers_connected", help: "Workers currently registered.").set(8)
/// ```
///
/// Asking again for the same name and labels returns the same series, so call sites need not
/// keep the handle. Names must match `[a-zA-Z_:][a-zA-Z0-9_:]*` and label names
/// `[a-zA-Z_][a-zA-Z0-9_]*` (not starting with `__`); a name used as both a counter and a
/// gauge is a programmer error. The first help text given for a name is the one rendered.
public final class MetricsRegistry: @unchecked Sendable {
    // @unchecked Sendable: `families` and every series value (the cells share this lock) are
    // only touched while holding `lock`, so handles may be used from any thread.

    private let lock = NSLock()
    private var families: [String: Family] = [:]

    /// Creates an empty registry.
    public init() {}

    /// The counter `name` with `labels`, created at zero on first use.
    ///
    /// - Parameters:
    ///   - name: The metric name; by convention counters end in `_total`.
    ///   - help: One line describing the metric, shown in the `# HELP` line.
    ///   - labels: Label names and values distinguishing this series, e.g. `["worker": "3"]`.
    public func counter(_ name: String, help: String, labels: [String: String] = [:]) -> Counter {
        Counter(cell: cell(name, help: help, type: .counter, labels: labels))
    }

    /// The gauge `name` with `labels`, created at zero on first use.
    ///
    /// - Parameters:
    ///   - name: The metric name.
    ///   - help: One line describing the metric, shown in the `# HELP` line.
    ///   - labels: Label names and values distinguishing this series.
    public func gauge(_ name: String, help: String, labels: [String: String] = [:]) -> Gauge {
        Gauge(cell: cell(name, help: help, type: .gauge, labels: labels))
    }

    /// Every metric in Prometheus text format 0.0.4.
    ///
    /// Metric families are sorted by name and their series by label set, so the output is
    /// stable between scrapes. Each family has `# HELP` and `# TYPE` lines; label values are
    /// escaped (`\\`, `\"`, `\n`) and labels within a series are sorted by name. Values use the
    /// shortest exact decimal form, with `NaN`, `+Inf` and `-Inf` for non-finite values.
    public func render() -> String {
        lock.lock()
        defer { lock.unlock() }
        var output = ""
        for name in families.keys.sorted() {
            let family = families[name]!
            output += "# HELP \(name) \(Self.escapeHelp(family.help))\n"
            output += "# TYPE \(name) \(family.type.rawValue)\n"
            for labelText in family.series.keys.sorted() {
                output += "\(name)\(labelText) \(Self.sampleText(family.series[labelText]!.valueWhileLocked))\n"
            }
        }
        return output
    }

    private func cell(_ name: String, help: String, type: MetricType, labels: [String: String]) -> MetricCell {
        precondition(Self.isValidMetricName(name), "invalid Prometheus metric name \(String(reflecting: name))")
        for labelName in labels.keys {
            precondition(Self.isValidLabelName(labelName),
                         "invalid Prometheus label name \(String(reflecting: labelName)) on \(name)")
        }
        let labelText = Self.labelText(labels)
        lock.lock()
        defer { lock.unlock() }
        let family: Family
        if let existing = families[name] {
            precondition(existing.type == type,
                         "metric \(name) registered as a \(existing.type.rawValue), requested as a \(type.rawValue)")
            family = existing
        } else {
            family = Family(help: help, type: type)
            families[name] = family
        }
        if let existing = family.series[labelText] { return existing }
        let created = MetricCell(lock: lock)
        family.series[labelText] = created
        return created
    }

    // MARK: Text format

    /// `{a="x",b="y"}` with labels sorted by name, or the empty string without labels.
    static func labelText(_ labels: [String: String]) -> String {
        guard !labels.isEmpty else { return "" }
        let pairs = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\(escapeLabelValue($0.value))\"" }
        return "{" + pairs.joined(separator: ",") + "}"
    }

    static func escapeLabelValue(_ value: String) -> String {
        var output = ""
        for character in value.unicodeScalars {
            switch character {
            case "\\": output += "\\\\"
            case "\"": output += "\\\""
            case "\n": output += "\\n"
            default: output.unicodeScalars.append(character)
            }
        }
        return output
    }

    static func escapeHelp(_ help: String) -> String {
        var output = ""
        for character in help.unicodeScalars {
            switch character {
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            default: output.unicodeScalars.append(character)
            }
        }
        return output
    }

    /// A sample value as Prometheus expects it: `42`, `0.25`, `1e-05`, `NaN`, `+Inf`, `-Inf`.
    static func sampleText(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return value.description
    }

    static func isValidMetricName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first else { return false }
        return (first.isASCIILetter || first == "_" || first == ":")
            && name.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" || $0 == ":" }
    }

    static func isValidLabelName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, !name.hasPrefix("__") else { return false }
        return (first.isASCIILetter || first == "_")
            && name.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" }
    }
}

/// The kind of a metric family, as written on its `# TYPE` line.
enum MetricType: String {
    case counter
    case gauge
}

/// All series of one metric name. Guarded by the registry's lock.
private final class Family {
    let help: String
    let type: MetricType
    /// Series keyed by their rendered label text (`""` or `{a="x"}`).
    var series: [String: MetricCell] = [:]

    init(help: String, type: MetricType) {
        self.help = help
        self.type = type
    }
}

extension Unicode.Scalar {
    fileprivate var isASCIILetter: Bool {
        ("a"..."z").contains(self) || ("A"..."Z").contains(self)
    }

    fileprivate var isASCIIDigit: Bool {
        ("0"..."9").contains(self)
    }
}
