import Foundation
import HyperOpt

/// The JSON header of checkpoint format version 1 (see `Checkpoint+Format.swift`).
struct CheckpointHeader: Codable {
    var config: ExperimentConfig
    var step: UInt64
    var phiVersion: UInt64
    var lambdaVersion: UInt64
    var phiOptimizerSteps: Int
    var lambdaOptimizerSteps: Int
    var dataFingerprint: String
    var wallSecondsSoFar: Double
    var counters: [String: UInt64]
    var arrays: [ArrayEntry]
    /// A pipelined run's task parameters' versions (nil otherwise).
    var taskPhiVersion: UInt64?
    var taskLambdaVersion: UInt64?

    struct ArrayEntry: Codable {
        var name: String
        var count: Int
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case config, step, counters, arrays
        case phiVersion = "phi_version", lambdaVersion = "lambda_version"
        case phiOptimizerSteps = "phi_optimizer_steps", lambdaOptimizerSteps = "lambda_optimizer_steps"
        case dataFingerprint = "data_fingerprint", wallSecondsSoFar = "wall_seconds_so_far"
        case taskPhiVersion = "task_phi_version", taskLambdaVersion = "task_lambda_version"
    }

    /// Every key `ExperimentConfig` may encode — optional settings included, which a JSON
    /// encoding of a default config leaves out — so this stays right as fields are added.
    static let configKeys: Set<String> = {
        let recorder = TopLevelKeyRecorder()
        try! ExperimentConfig().encode(to: recorder)   // the recorder never throws
        return recorder.keys.keys
    }()

    /// Parses and checks the header bytes (trailing padding spaces allowed).
    static func decode(_ bytes: UnsafeRawBufferPointer, file: String) throws(CheckpointError) -> CheckpointHeader {
        let data = Data(bytes)
        guard let object = try? JSONSerialization.jsonObject(with: data) else {
            throw .corruptHeader(file: file, reason: "not valid JSON")
        }
        guard let top = object as? [String: Any] else { throw .corruptHeader(file: file, reason: "not a JSON object") }
        let unknown = Set(top.keys).subtracting(CodingKeys.allCases.map(\.rawValue))
        guard unknown.isEmpty else { throw .corruptHeader(file: file, reason: "unknown key(s) \(unknown.sorted())") }
        if let config = top["config"] as? [String: Any] {
            let unknownSettings = Set(config.keys).subtracting(configKeys)
            guard unknownSettings.isEmpty else {
                throw .corruptHeader(file: file, reason: "unknown configuration key(s) \(unknownSettings.sorted())")
            }
        }
        do {
            return try JSONDecoding.decode(CheckpointHeader.self, from: data)
        } catch {
            throw .corruptHeader(file: file, reason: describe(error))
        }
    }

    /// A short reason for a decoding failure, naming the key path.
    private static func describe(_ error: any Error) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error as? DecodingError {
        case let .keyNotFound(key, context)?:
            return "missing key \(path(context.codingPath + [key]))"
        case let .typeMismatch(type, context)?:
            return "\(path(context.codingPath)) is not a \(type)"
        case let .valueNotFound(type, context)?:
            return "\(path(context.codingPath)) is null, expected \(type)"
        case let .dataCorrupted(context)?:
            return context.codingPath.isEmpty ? context.debugDescription : "\(path(context.codingPath)): \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }
}

/// An `Encoder` that only records the top-level keys a value encodes, including those of nil
/// optionals (`encodeIfPresent` is recorded whatever the value).
private final class TopLevelKeyRecorder: Encoder {
    final class Keys { var keys: Set<String> = [] }
    let keys = Keys()
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] = [:]

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(Container<Key>(keys: keys))
    }
    func unkeyedContainer() -> any UnkeyedEncodingContainer { preconditionFailure("ExperimentConfig is a keyed value") }
    func singleValueContainer() -> any SingleValueEncodingContainer { preconditionFailure("ExperimentConfig is a keyed value") }

    struct Container<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let keys: Keys
        var codingPath: [any CodingKey] = []
        mutating func encodeNil(forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: String?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: Double?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: Int?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: Float?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: Int8?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: Int16?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: Int32?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: UInt?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: UInt8?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: UInt16?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: UInt32?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func encodeIfPresent(_ value: UInt64?, forKey key: Key) { keys.keys.insert(key.stringValue) }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            keys.keys.insert(key.stringValue)
            return KeyedEncodingContainer(Container<NestedKey>(keys: Keys()))
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            preconditionFailure("not used by ExperimentConfig's top level")
        }
        mutating func superEncoder() -> any Encoder { TopLevelKeyRecorder() }
        mutating func superEncoder(forKey key: Key) -> any Encoder { keys.keys.insert(key.stringValue); return TopLevelKeyRecorder() }
    }
}
