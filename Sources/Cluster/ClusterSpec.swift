import Foundation
import HyperOpt
import Models
import Wire

/// How the coordinator schedules gradients.
public enum ClusterMode: String, Sendable, Codable, CaseIterable {
    /// Rounds: K training tasks and one validation task from the same φ/λ̂ versions, summed in
    /// task order — bit-identical to the single-process run.
    case sync
    /// Workers pull the newest φ and push whenever done; stale gradients are rejected.
    case async
}

extension ClusterMode {
    /// Why `config` cannot run in this mode (nil: it can). The coordinator refuses such a run;
    /// `run` says so before it starts anything.
    public func conflict(with config: ExperimentConfig) -> String? {
        self == .async && config.pipelined == true ? "--pipelined on is a sync schedule (async mode hands out the newest φ already): drop one of --pipelined on and --mode async" : nil
    }
}

/// Converts between the run configuration and the wire's `ExperimentSpec`.
public enum ClusterSpec {
    /// The spec a coordinator sends in `Welcome`.
    public static func spec(config: ExperimentConfig, dataFingerprint: UInt64) -> ExperimentSpec {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = (try? encoder.encode(config)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        return ExperimentSpec(
            layerSizes: config.layers.map { UInt32($0) }, scope: config.scope.rawValue, norm: config.norm.rawValue,
            loss: config.loss.rawValue, hypernet: config.hypernet.description,
            nTrain: UInt32(config.nTrain), nValid: UInt32(config.nValid), nTest: UInt32(config.nTest),
            batchSize: UInt32(config.batchSize), validBatchSize: UInt32(config.validBatchSize),
            samplesPerStep: UInt32(config.samplesPerStep), sigma: config.effectiveSigma, seed: config.seed,
            algorithm: config.algorithm.rawValue, steps: UInt64(config.steps), dataFingerprint: dataFingerprint,
            numHyperparameters: UInt32(config.hyperparameterCount), numPhiParams: UInt64(config.phiCount),
            configJSON: json, model: config.external.map(modelSpec))
    }

    /// An external model's layout as the wire carries it.
    public static func modelSpec(_ model: ExternalModel) -> ModelSpec {
        ModelSpec(tensors: model.tensors.map { .init(name: $0.name, shape: $0.shape.map { UInt64($0) }) },
                  scope: model.scope.rawValue)
    }

    /// Why a worker's model layout cannot join a run on `model`; nil when names and shapes agree.
    public static func layoutMismatch(_ worker: ModelSpec, _ model: ExternalModel) -> String? {
        let ours = modelSpec(model).tensors
        if worker.tensors == ours { return nil }
        func describe(_ t: [ModelSpec.Tensor]) -> String {
            let shown = t.prefix(4).map { "\($0.name) \($0.shape)" }.joined(separator: ", ")
            return "\(t.count) tensors (\(shown)\(t.count > 4 ? ", …" : ""))"
        }
        if let i = zip(worker.tensors, ours).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            let (w, o) = (worker.tensors[i], ours[i])
            return "model layout differs from the run's at tensor \(i): worker has \(w.name) \(w.shape), the run \(o.name) \(o.shape)"
        }
        return "model layout differs from the run's: worker has \(describe(worker.tensors)), the run \(describe(ours))"
    }

    /// The configuration carried by a spec (Swift peers read `config_json`).
    public static func config(from spec: ExperimentSpec) throws -> ExperimentConfig {
        let config = try JSONDecoding.decode(ExperimentConfig.self, from: Data(spec.configJSON.utf8))
        let problems = config.problems()
        if !problems.isEmpty { throw ClusterError.badSpec(problems.joined(separator: "; ")) }
        guard config.phiCount == Int(spec.numPhiParams), config.hyperparameterCount == Int(spec.numHyperparameters) else {
            throw ClusterError.badSpec("spec sizes disagree with its config")
        }
        return config
    }
}

/// Errors of the cluster roles.
public enum ClusterError: Error, Sendable, CustomStringConvertible {
    /// The coordinator's experiment spec cannot be used.
    case badSpec(String)
    /// Local data differs from the coordinator's.
    case dataMismatch(local: UInt64, coordinator: UInt64)
    /// The coordinator refused us.
    case refused(String)
    /// The run's settings do not go together (said before anything starts).
    case conflictingSettings(String)
    /// The run cannot continue.
    case aborted(String)
    /// A checkpoint cannot be resumed under this configuration.
    case cannotResume(String)
    /// The run's last checkpoint could not be written (the file named, and why).
    case finalCheckpointFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .badSpec(let m): "unusable experiment spec from the coordinator: \(m)"
        case .conflictingSettings(let m): m
        case .dataMismatch(let l, let c):
            "local MNIST splits differ from the coordinator's (fingerprint \(String(l, radix: 16)) vs \(String(c, radix: 16))): run `hypertrain data fetch` on this host"
        case .refused(let m): "the coordinator refused this worker: \(m)"
        case .aborted(let m): "run aborted: \(m)"
        case .cannotResume(let m): "cannot resume: \(m)"
        case .finalCheckpointFailed(let path, let reason):
            "the final checkpoint \(path) could not be written (\(reason)); the last good checkpoint there (or its .prev) is older than the run's end"
        }
    }
}
