import Foundation
import HyperOpt
import Linalg
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
    private var sequence: UInt64 = 0
    /// When this worker last sent anything (set by `send`): a Heartbeat goes out after an
    /// interval without sending. Receiving does not count — an idle validator that only hears
    /// the coordinator's heartbeats must still send its own, or it is declared dead.
    private var lastSent = 0.0
    private var workerID = ""
    private var trainer: HyperTrainer?
    private var trainerConfig: ExperimentConfig?
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
        Signals.install()
        let context = try ZMQContext()
        defer { context.close() }
        var interval = 1.0
        var liveness = 5
        let startedWaiting = ProgressLine_now()
        var everConnected = false
        while true {
            let socket = try connectSocket(context)
            defer { socket.close() }
            // A DEALER with no live connection cannot take a message: the send times out
            // (wouldBlock) instead of blocking, and we keep waiting for the coordinator.
            try? send(socket, hello())
            var lastHeard = ProgressLine_now()
            lastSent = lastHeard
            var registered = false
            var lastHello = lastHeard
            sessionLoop: while true {
              do {
                if Signals.pending != nil {
                    if registered { try? send(socket, .shutdown(Shutdown(reason: "worker stopped by a signal"))) }
                    return .signal
                }
                if Signals.orphaned(from: options.parentPID) { return .orphaned }
                guard let frames = try socket.receiveFrames(timeoutMs: Int32(min(interval, 0.5) * 1000)) else {
                    let now = ProgressLine_now()
                    if !registered && now - lastHello > interval {
                        // No Welcome yet: the coordinator may not be up (or refuses our key); say Hello again.
                        if !everConnected && options.giveUpAfter > 0 && now - startedWaiting > options.giveUpAfter { return .gaveUp }
                        try send(socket, hello())
                        lastHello = now
                        lastSent = now
                        continue
                    }
                    if registered && now - lastHeard > interval * Double(liveness) {
                        options.log("\(workerID): coordinator silent for \(String(format: "%.1f", now - lastHeard)) s; reconnecting")
                        if options.giveUpAfter > 0 && now - lastHeard > options.giveUpAfter { return .gaveUp }
                        break sessionLoop
                    }
                    if registered && now - lastSent >= interval {
                        try send(socket, .heartbeat(Heartbeat(unixMs: UInt64(Date().timeIntervalSince1970 * 1000))))
                        lastSent = now
                    }
                    continue
                }
                lastHeard = ProgressLine_now()
                let message: Message
                do { message = try WireCodec.decode(frames) } catch {
                    options.log("dropped an undecodable message (\(frames.count) frames): \(error)")
                    continue
                }
                switch message.body {
                case .welcome(let w):
                    workerID = w.workerID
                    interval = max(Double(w.heartbeatIntervalMs) / 1000, 0.05)
                    liveness = max(Int(w.heartbeatLiveness), 2)
                    try prepare(spec: w.spec)
                    registered = true
                    everConnected = true
                    phiVersion = nil
                    options.log("registered as \(workerID)")
                    // Two requests outstanding: the next task is queued while this one computes.
                    try send(socket, .workRequest)
                    try send(socket, .workRequest)
                case .trainTask(let t) where !t.weights.isEmpty:
                    // A weight task: λ and w = φ(λ) were computed by the coordinator; answer ∂L/∂w.
                    guard registered, let trainer, let gradW, let weights, let taskLambda,
                          t.weights.count == weights.count, t.lambda.count == taskLambda.count else {
                        options.log("weight task of the wrong size; re-registering"); break sessionLoop
                    }
                    weights.load(t.weights)
                    taskLambda.load(t.lambda)
                    let loss = trainer.trainTask(weights: weights.constPointer, lambda: taskLambda.constPointer, step: t.step,
                                                 task: Int(t.taskIndex), gradW: gradW.pointer)
                    tasksDone += 1
                    try send(socket, .gradient(Gradient(step: t.step, taskIndex: t.taskIndex, leaseID: t.leaseID, trainLoss: loss,
                                                        gradPhi: [], gradW: gradW.array, lambdas: t.lambda, indices: trainer.lastRows)),
                             phiVersion: message.phiVersion, lambdaVersion: message.lambdaVersion)
                    try send(socket, .workRequest)
                case .trainTask(let t):
                    guard registered, let trainer, loadParameters(phi: t.phi, version: message.phiVersion, lambdaHat: t.lambdaHat) else {
                        options.log("task without usable φ; re-registering"); break sessionLoop
                    }
                    let gradient: Gradient
                    if t.acceptsWeightGradient {
                        // ∂L/∂w (D values) instead of ∂L/∂φ (|φ|): the coordinator expands it.
                        let loss = trainer.trainTask(phi: phi!.constPointer, lambdaHat: lambdaHat!.constPointer, step: t.step,
                                                     task: Int(t.taskIndex), gradW: gradW!.pointer)
                        gradient = Gradient(step: t.step, taskIndex: t.taskIndex, leaseID: t.leaseID, trainLoss: loss,
                                            gradPhi: [], gradW: gradW!.array, lambdas: trainer.lastLambda, indices: trainer.lastRows)
                    } else {
                        let loss = trainer.trainTask(phi: phi!.constPointer, lambdaHat: lambdaHat!.constPointer, step: t.step,
                                                     task: Int(t.taskIndex), gradPhi: grad!.pointer)
                        gradient = Gradient(step: t.step, taskIndex: t.taskIndex, leaseID: t.leaseID, trainLoss: loss,
                                            gradPhi: grad!.array, lambdas: trainer.lastLambda, indices: trainer.lastRows)
                    }
                    tasksDone += 1
                    try send(socket, .gradient(gradient), phiVersion: message.phiVersion, lambdaVersion: message.lambdaVersion)
                    try send(socket, .workRequest)
                case .validTask(let t) where !t.weights.isEmpty:
                    // A weight task: w = φ(λ̂) was computed by the coordinator; answer ∂L_valid/∂w.
                    guard registered, let trainer, let gradW, let weights, t.weights.count == weights.count else {
                        options.log("weight task of the wrong size; re-registering"); break sessionLoop
                    }
                    // Into the aligned buffer, where every role keeps its weights (same bits).
                    weights.load(t.weights)
                    let loss = trainer.validTask(weights: weights.constPointer, step: t.step, gradW: gradW.pointer)
                    tasksDone += 1
                    try send(socket, .hypergradient(Hypergradient(step: t.step, leaseID: t.leaseID, validLoss: loss,
                                                                  gradLambda: [], gradW: gradW.array)),
                             phiVersion: message.phiVersion, lambdaVersion: message.lambdaVersion)
                    try send(socket, .workRequest)
                case .validTask(let t):
                    guard registered, let trainer, loadParameters(phi: t.phi, version: message.phiVersion, lambdaHat: t.lambdaHat) else {
                        options.log("task without usable φ; re-registering"); break sessionLoop
                    }
                    let g = AlignedBuffer<Float>(count: trainer.hyperparameterCount)
                    let loss = trainer.validTask(phi: phi!.constPointer, lambdaHat: lambdaHat!.constPointer, step: t.step, gradLambda: g.pointer)
                    tasksDone += 1
                    try send(socket, .hypergradient(Hypergradient(step: t.step, leaseID: t.leaseID, validLoss: loss, gradLambda: g.array)),
                             phiVersion: message.phiVersion, lambdaVersion: message.lambdaVersion)
                    try send(socket, .workRequest)
                case .trialTask(let t):
                    guard registered, let trainerConfig, let trainer else { break sessionLoop }
                    let lambda = t.lambda
                    var result = Wire.TrialResult(trialID: t.trialID, leaseID: t.leaseID, trainLoss: .nan, validLoss: .nan, testLoss: .nan)
                    if lambda.count == trainer.hyperparameterCount {
                        do {
                            let r = try CrossValidation.trial(config: trainerConfig, data: trainer.data, lambda: lambda, steps: Int(t.steps),
                                                              learningRate: trainerConfig.phiLearningRate, trialIndex: Int(t.trialID))
                            result = Wire.TrialResult(trialID: t.trialID, leaseID: t.leaseID, trainLoss: r.evaluation.trainLoss,
                                                      validLoss: r.evaluation.validLoss, testLoss: r.evaluation.testLoss)
                        } catch {
                            options.log("trial \(t.trialID) diverged: \(error)")
                        }
                    }
                    tasksDone += 1
                    try send(socket, .trialResult(result))
                    try send(socket, .workRequest)
                case .error(let e):
                    if e.code == .notRegistered { options.log("coordinator does not know us; re-registering"); break sessionLoop }
                    if e.code != .stale && e.code != .duplicate { options.log("coordinator refused a message: \(e.code): \(e.message)") }
                case .shutdown(let s):
                    options.log("\(workerID): shutdown (\(s.reason)) after \(tasksDone) tasks")
                    return .shutdown(s.reason)
                case .heartbeat, .ack, .idle, .status:
                    break
                default:
                    options.log("ignored unexpected \(message.body.name)")
                }
              } catch let error as TransportError where error.code == .wouldBlock {
                // No live connection to hand the message to (coordinator gone, or our key refused).
                let now = ProgressLine_now()
                if !registered {
                    if !everConnected && options.giveUpAfter > 0 && now - startedWaiting > options.giveUpAfter { return .gaveUp }
                    lastHello = now
                    continue sessionLoop
                }
                options.log("\(workerID): cannot reach the coordinator; reconnecting")
                break sessionLoop
              }
            }
        }
    }

    /// Our Hello (a validator takes weight tasks: w = φ(λ̂) in, ∂L_valid/∂w out).
    private func hello() -> Message.Body {
        .hello(Hello(role: options.role, hostname: ProcessInfo.processInfo.hostName, pid: UInt32(getpid()),
                     softwareVersion: "hypertrain 0.1", previousWorkerID: workerID,
                     acceptsWeightTasks: options.role == .validator || options.role == .trainer))
    }

    private func connectSocket(_ context: ZMQContext) throws -> Socket {
        let s = try Socket(context: context, kind: .dealer)
        try s.set(.linger(milliseconds: 500))
        try s.set(.reconnectInterval(milliseconds: 100))
        try s.set(.reconnectIntervalMax(milliseconds: 2000))
        try s.set(.sendTimeout(milliseconds: 1000))
        if let c = options.curve { try s.set(.curveClient(keyPair: c.keyPair, serverPublicKey: c.serverPublicKey)) }
        s.spinBeforeBlocking = .microseconds(options.busyWaitMicroseconds)
        try s.connect(options.connect)
        return s
    }

    private func send(_ socket: Socket, _ body: Message.Body, phiVersion: UInt64 = 0, lambdaVersion: UInt64 = 0) throws {
        sequence += 1
        try socket.send(Message(senderID: workerID, phiVersion: phiVersion, lambdaVersion: lambdaVersion,
                                sequence: sequence, body: body))
        lastSent = ProgressLine_now()
    }

    /// Builds the trainer for the coordinator's experiment (once per distinct config).
    private func prepare(spec: ExperimentSpec) throws {
        let config = try ClusterSpec.config(from: spec)
        if let trainerConfig, trainerConfig == config, trainer != nil { return }
        let data = try ExperimentData.load(directory: options.dataDirectory, config: config)
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

    /// Installs a task's φ (or checks the cached one) and λ̂; false when unusable.
    private func loadParameters(phi newPhi: [Float], version: UInt64, lambdaHat newLambda: [Float]) -> Bool {
        guard let phi, let lambdaHat, newLambda.count == lambdaHat.count else { return false }
        if newPhi.isEmpty {
            guard phiVersion == version else { return false }
        } else {
            guard newPhi.count == phi.count else { return false }
            phi.load(newPhi)
            phiVersion = version
        }
        lambdaHat.load(newLambda)
        return true
    }
}

import Telemetry
@inline(__always) private func ProgressLine_now() -> Double { ProgressLine.monotonicSeconds() }
