import Foundation
import HyperOpt
import Linalg
import Telemetry
import Transport
import Wire

/// A training worker or the validation worker: connects a DEALER to the coordinator,
/// registers, then computes whatever tasks it is handed with the same `HyperTrainer` the
/// single-process run uses. Re-registers when the coordinator goes silent; exits on Shutdown.
public final class WorkerNode {
    /// How the worker runs.
    public struct Options: Sendable {
        /// Coordinator endpoint.
        public var connect: String
        /// trainer or validator.
        public var role: Role
        /// CURVE client keys and the server's public key (nil: plain).
        public var curve: (keyPair: CurveKeyPair, serverPublicKey: String)?
        /// Local MNIST directory.
        public var dataDirectory: String
        /// Exit when this process stops being our parent (local mode children).
        public var parentPID: Int32?
        /// Give up after this many seconds without a coordinator (0: never).
        public var giveUpAfter: Double = 0
        /// Microseconds a receive keeps checking for the next message before sleeping
        /// (`Socket.spinBeforeBlocking`); 0: sleep at once. Local mode sets it: the next task
        /// then starts without waiting for an idle CPU to be woken.
        public var busyWaitMicroseconds = 0
        /// Log lines go here.
        public var log: @Sendable (String) -> Void = Log.writer("worker")
        /// The coordinator's ZeroMQ context, for a worker on a thread of the coordinator's
        /// process (`inproc://` endpoints); nil: the worker's own.
        public var context: ZMQContext?
        /// Splits already in memory (the coordinator's, for a worker in its process): used
        /// instead of loading `dataDirectory` when their fingerprint is the coordinator's.
        public var data: ExperimentData?

        /// - Parameters: see the properties.
        public init(connect: String, role: Role, dataDirectory: String) {
            self.connect = connect
            self.role = role
            self.dataDirectory = dataDirectory
        }
    }

    /// Why `run()` returned.
    public enum Exit: Sendable, Equatable {
        /// The coordinator said so.
        case shutdown(String)
        /// SIGINT/SIGTERM.
        case signal
        /// No coordinator for `giveUpAfter` seconds.
        case gaveUp
        /// The local-mode parent process died.
        case orphaned
    }

    private let options: Options
    private var trainer: HyperTrainer?
    private var trainerConfig: ExperimentConfig?
    /// Workspaces for the tasks, sized once per experiment (every role keeps its tensors in
    /// aligned buffers, so the bits match the single-process run).
    private var phi: AlignedBuffer<Float>?
    private var phiVersion: UInt64?
    private var lambdaHat: AlignedBuffer<Float>?
    private var grad: AlignedBuffer<Float>?
    private var gradW: AlignedBuffer<Float>?
    private var weights: AlignedBuffer<Float>?
    /// A weight task's λ sample.
    private var taskLambda: AlignedBuffer<Float>?
    /// Tasks completed.
    public private(set) var tasksDone = 0

    /// - Parameter options: how to run.
    public init(options: Options) { self.options = options }

    /// Runs until Shutdown, a signal, or giving up.
    public func run() throws -> Exit {
        Transport.tuneAllocatorForLargeMessages()
        BLASRuntime.setThreads(1)
        let link = CoordinatorLink(settings: .init(connect: options.connect, curve: options.curve, parentPID: options.parentPID,
                                                   giveUpAfter: options.giveUpAfter, busyWaitMicroseconds: options.busyWaitMicroseconds,
                                                   log: options.log, context: options.context))
        let exit = try link.run(
            hello: { previous in
                // Both roles take weight tasks: w (and a trainer's λ) in, ∂L/∂w out.
                Hello(role: options.role, hostname: ProcessInfo.processInfo.hostName, pid: UInt32(getpid()),
                      softwareVersion: "hypertrain 0.1", previousWorkerID: previous,
                      acceptsWeightTasks: options.role == .validator || options.role == .trainer)
            },
            welcome: { w in
                try prepare(spec: w.spec)
                phiVersion = nil
            },
            answer: { message in try answer(message) })
        if case .shutdown(let reason) = exit { options.log("\(link.workerID): shutdown (\(reason)) after \(tasksDone) tasks") }
        return exit
    }

    /// The reply to a task message (the results echo the task's φ and λ̂ versions).
    private func answer(_ message: Message) throws -> CoordinatorLink.Outgoing? {
        guard let trainer else { throw CoordinatorLink.Restart(reason: "a task before the experiment was set up") }
        let body: Message.Body
        switch message.body {
        case .trainTask(let t):
            body = .gradient(try train(t, version: message.phiVersion, trainer))
        case .validTask(let t):
            body = .hypergradient(try validate(t, version: message.phiVersion, trainer))
        case .trialTask(let t):
            body = .trialResult(trial(t, trainer))
        default:
            return nil
        }
        tasksDone += 1
        return .init(body: body, phiVersion: message.phiVersion, lambdaVersion: message.lambdaVersion)
    }

    /// A training task: ∂L/∂w for a weight task (λ and w = φ(λ) computed by the coordinator) or
    /// when the task accepts it, else ∂L/∂φ.
    private func train(_ t: TrainTask, version: UInt64, _ trainer: HyperTrainer) throws -> Gradient {
        let (step, task) = (t.step, Int(t.taskIndex))
        let loss: Double, gradPhi: [Float], gradW: [Float], lambdas: [Float]
        if !t.weights.isEmpty {
            guard let weights, let taskLambda, let out = self.gradW, t.weights.count == weights.count, t.lambda.count == taskLambda.count else {
                throw CoordinatorLink.Restart(reason: "weight task of the wrong size")
            }
            weights.load(t.weights)
            taskLambda.load(t.lambda)
            loss = trainer.trainTask(weights: weights.constPointer, lambda: taskLambda.constPointer, step: step, task: task, gradW: out.pointer)
            // `lambda` is left out of the reply: the coordinator knows the λ it sent (§5).
            (gradPhi, gradW, lambdas) = ([], out.array, [])
        } else {
            let (phi, lambdaHat) = try parameters(phi: t.phi, version: version, lambdaHat: t.lambdaHat)
            if t.acceptsWeightGradient {
                // ∂L/∂w (D values) instead of ∂L/∂φ (|φ|): the coordinator expands it.
                loss = trainer.trainTask(phi: phi, lambdaHat: lambdaHat, step: step, task: task, gradW: self.gradW!.pointer)
                (gradPhi, gradW) = ([], self.gradW!.array)
            } else {
                loss = trainer.trainTask(phi: phi, lambdaHat: lambdaHat, step: step, task: task, gradPhi: grad!.pointer)
                (gradPhi, gradW) = (grad!.array, [])
            }
            lambdas = trainer.lastLambda
        }
        return Gradient(step: step, taskIndex: t.taskIndex, leaseID: t.leaseID, trainLoss: loss,
                        gradPhi: gradPhi, gradW: gradW, lambdas: lambdas, indices: trainer.lastRows)
    }

    /// A validation task: ∂L_valid/∂w for a weight task (w = φ(λ̂) computed by the coordinator),
    /// else ∂L_valid/∂λ̂.
    private func validate(_ t: ValidTask, version: UInt64, _ trainer: HyperTrainer) throws -> Hypergradient {
        if !t.weights.isEmpty {
            guard let weights, let gradW, t.weights.count == weights.count else {
                throw CoordinatorLink.Restart(reason: "weight task of the wrong size")
            }
            weights.load(t.weights)
            let loss = trainer.validTask(weights: weights.constPointer, step: t.step, gradW: gradW.pointer)
            return Hypergradient(step: t.step, leaseID: t.leaseID, validLoss: loss, gradLambda: [], gradW: gradW.array)
        }
        let (phi, lambdaHat) = try parameters(phi: t.phi, version: version, lambdaHat: t.lambdaHat)
        let g = AlignedBuffer<Float>(count: trainer.hyperparameterCount)
        let loss = trainer.validTask(phi: phi, lambdaHat: lambdaHat, step: t.step, gradLambda: g.pointer)
        return Hypergradient(step: t.step, leaseID: t.leaseID, validLoss: loss, gradLambda: g.array)
    }

    /// A baseline trial: Algorithm 1 at the task's λ (non-finite losses when it diverged or λ has
    /// the wrong length; the study records the trial as failed).
    private func trial(_ t: TrialTask, _ trainer: HyperTrainer) -> Wire.TrialResult {
        var result = Wire.TrialResult(trialID: t.trialID, leaseID: t.leaseID, trainLoss: .nan, validLoss: .nan, testLoss: .nan)
        guard let trainerConfig, t.lambda.count == trainer.hyperparameterCount else { return result }
        do {
            let r = try CrossValidation.trial(config: trainerConfig, data: trainer.data, lambda: t.lambda, steps: Int(t.steps),
                                              learningRate: trainerConfig.phiLearningRate, trialIndex: Int(t.trialID))
            result = Wire.TrialResult(trialID: t.trialID, leaseID: t.leaseID, trainLoss: r.evaluation.trainLoss,
                                      validLoss: r.evaluation.validLoss, testLoss: r.evaluation.testLoss)
        } catch {
            options.log("trial \(t.trialID) diverged: \(error)")
        }
        return result
    }

    /// Builds the trainer for the coordinator's experiment (once per distinct config).
    private func prepare(spec: ExperimentSpec) throws {
        let config = try ClusterSpec.config(from: spec)
        if let trainerConfig, trainerConfig == config, trainer != nil { return }
        let data = try options.data.flatMap { $0.fingerprint == spec.dataFingerprint ? $0 : nil }
            ?? ExperimentData.load(directory: options.dataDirectory, config: config)
        guard data.fingerprint == spec.dataFingerprint else {
            throw ClusterError.dataMismatch(local: data.fingerprint, coordinator: spec.dataFingerprint)
        }
        let t = HyperTrainer(config: config, data: data)
        trainer = t
        trainerConfig = config
        phi = AlignedBuffer(count: t.phiCount)
        lambdaHat = AlignedBuffer(count: t.hyperparameterCount)
        grad = AlignedBuffer(count: t.phiCount)
        gradW = AlignedBuffer(count: t.weightCount)
        weights = AlignedBuffer(count: t.weightCount)
        taskLambda = AlignedBuffer(count: t.hyperparameterCount)
    }

    /// Installs a task's φ (or checks the cached one: an empty φ means "the version in the
    /// header, which you hold") and λ̂.
    private func parameters(phi newPhi: [Float], version: UInt64, lambdaHat newLambda: [Float]) throws
        -> (phi: UnsafePointer<Float>, lambdaHat: UnsafePointer<Float>) {
        guard let phi, let lambdaHat, newLambda.count == lambdaHat.count,
              newPhi.isEmpty ? phiVersion == version : newPhi.count == phi.count else {
            throw CoordinatorLink.Restart(reason: "task without usable φ")
        }
        if !newPhi.isEmpty {
            phi.load(newPhi)
            phiVersion = version
        }
        lambdaHat.load(newLambda)
        return (phi.constPointer, lambdaHat.constPointer)
    }
}
