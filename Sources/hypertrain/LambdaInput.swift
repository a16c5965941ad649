import ArgumentParser
import Foundation
import HyperOpt

/// λ as a user writes it — `--lambda=V[,V…]` or a CSV row — parsed, checked and broadcast to
/// H values; shared by `trial` and `predict` so both accept and refuse the same input.
enum LambdaInput {
    /// |λ| above this makes exp(λ) overflow or vanish in Float (the same limit as --lambda-init).
    static let limit = 80.0

    /// The numbers of a comma-separated list; `label` names the input in errors.
    static func parse(_ text: String, label: String = "--lambda") throws -> [Double] {
        try text.split(separator: ",", omittingEmptySubsequences: false).map { part in
            let s = part.trimmingCharacters(in: .whitespaces)
            guard let v = Double(s) else { throw ValidationError("\(label): '\(s)' is not a number (in '\(text)')") }
            return v
        }
    }

    /// Throws unless every value is finite and within ±``limit``; `prefix` says which λ.
    static func check(_ values: [Double], prefix: String = "") throws {
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            throw ValidationError("\(prefix)λ[\(i)] is \(values[i]); every λ must be finite")
        }
        if let i = values.firstIndex(where: { abs($0) > limit }) {
            throw ValidationError("\(prefix)λ[\(i)] = \(values[i]) is outside [−\(Int(limit)), \(Int(limit))] (exp(λ) must stay finite in Float)")
        }
    }

    /// Checked `values` with H values (H of `config`): a single value is broadcast.
    static func resolve(_ values: [Double], config: ExperimentConfig, prefix: String = "") throws -> [Double] {
        try check(values, prefix: prefix)
        let h = config.hyperparameterCount
        if values.count == 1 { return Array(repeating: values[0], count: h) }
        guard values.count == h else {
            throw ValidationError("\(prefix)λ has \(values.count) values; scope '\(config.scope.rawValue)' with layers \(config.layers.map(String.init).joined(separator: "-")) has H = \(h) hyperparameters (give 1 or \(h))")
        }
        return values
    }

    /// The λ rows of a CSV file: one λ per line (1 or H comma-separated numbers), an optional
    /// header line of names, blank lines and `#` comments skipped. Rows are not yet checked
    /// against H (``resolve(_:config:prefix:)``).
    static func csvRows(_ text: String, path: String) throws -> [(line: Int, values: [Double])] {
        var rows: [(line: Int, values: [Double])] = []
        var sawContent = false
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            let numbers = fields.map { Double($0) }
            defer { sawContent = true }
            if !sawContent && numbers.allSatisfy({ $0 == nil }) { continue }     // the header
            if let bad = numbers.firstIndex(where: { $0 == nil }) {
                throw ValidationError("--csv \(path), line \(index + 1): field \(bad + 1) '\(fields[bad])' is not a number")
            }
            rows.append((index + 1, numbers.map { $0! }))
        }
        guard !rows.isEmpty else { throw ValidationError("--csv \(path): no λ rows (one λ per line: 1 or H comma-separated numbers)") }
        return rows
    }
}
