import Foundation
import HyperOpt
import Telemetry
import Transport
import Wire

/// A stand-in for a trainer, validator or trial worker, for benchmarks of the coordinators
/// (`hypertrain bench cluster`, `bench study`): it registers and talks over the same peer layer
/// (`CoordinatorLink`) as `WorkerNode`, receives real tasks, and answers each with a message of
/// the right size and content that the coordinator accepts — but replays gradients computed
/// once from a real task (``Replay``) instead of computing them, so that one machine can stand
/// in for many workers. What the coordinator checks is computed the cheap way: a weight task's
/// λ is echoed, the minibatch rows are drawn from (seed, step, task) as a trainer draws them.
/// A trial "runs" by sleeping and reports a smooth synthetic loss of λ.
public final class SyntheticWorker {
    /// Gradients of one real task of each kind, replayed for every task.
    public struct Replay: Sendable, Equatable {
        /// ∂L_train/∂w of a weight task (D values).
        public var trainGradW: [Float]
        /// ∂L_train/∂φ of a φ task (P values; async mode).
        public var trainGradPhi: [Float]
        /// The λ sample of that φ task (H values; async mode echoes it).
        public var trainLambda: [Float]
        /// Its training loss.
        public var trainLoss: Double
        /// ∂L_valid/∂w of a validation weight task (D values).
        public var validGradW: [Float]
        /// ∂L_valid/∂λ̂ of a validation φ task (H values; async mode).
        public var validGradLambda: [Float]
        /// Its validation loss.
        public var validLoss: Double

        /// - Parameters: see the properties.
        public init(trainGradW: [Float], trainGradPhi: [Float], trainLambda: [Float], trainLoss: Double,
                    validGradW: [Float], validGradLambda: [Float], validLoss: Double) {
            self.trainGradW = trainGradW
            self.trainGradPhi = trainGradPhi
            self.trainLambda = trainLambda
            self.trainLoss = trainLoss
            self.validGradW = validGradW
            self.validGradLambda = validGradLambda
            self.validLoss = validLoss
        }

        /// An empty replay (trial workers need none).
        public static let none = Replay(trainGradW: [], trainGradPhi: [], trainLambda: [], trainLoss: 0,
                                        validGradW: [], validGradLambda: [], validLoss: 0)

        /// Writes the replay as a little binary file (7 counts, then the arrays, then the losses).
        public func write(to path: String) throws {
            var data = Data()
            let arrays = [trainGradW, trainGradPhi, trainLambda, validGradW, validGradLambda]
            for a in arrays { withUnsafeBytes(of: UInt64(a.count).littleEndian) { data.append(contentsOf: $0) } }
            for a in arrays { a.withUnsafeBytes { data.append(contentsOf: $0) } }
            for l in [trainLoss, validLoss] { withUnsafeBytes(of: l.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
            try data.write(to: URL(fileURLWithPath: path))
        }

        /// Reads a file `write(to:)` wrote.
        public static func read(from path: String) throws -> Replay {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            var offset = 0
            func u64() throws -> UInt64 {
                guard offset + 8 <= data.count else { throw ClusterError.badSpec("replay file \(path) is truncated") }
                defer { offset += 8 }
                return data.subdata(in: offset..<offset + 8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
            }
            let counts = try (0..<5).map { _ in Int(try u64()) }
            var arrays: [[Float]] = []
            for n in counts {
                guard n >= 0, offset + 4 * n <= data.count else { throw ClusterError.badSpec("replay file \(path) is truncated") }
                arrays.append(data.subdata(in: offset..<offset + 4 * n).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) })
                offset += 4 * n
            }
            let train = Double(bitPattern: try u64()), valid = Double(bitPattern: try u64())
            return Replay(trainGradW: arrays[0], trainGradPhi: arrays[1], trainLambda: arrays[2], trainLoss: train,
                          validGradW: arrays[3], validGradLambda: arrays[4], validLoss: valid)
        }
    }

    /// How the synthetic worker runs.
    public struct Options: Sendable {
        /// Coordinator endpoint.
        public var connect: String
        /// trainer (also a trial worker) or validator.
        public var role: Role
        /// What to answer with.
        public var replay: Replay
        /// A trial's length in seconds (trial tasks sleep this long).
        public var trialSeconds: Double = 1
        /// Exit when this process stops being our parent.
        public var parentPID: Int32?
        /// Microseconds a receive polls before sleeping (0: sleep at once).
        public var busyWaitMicroseconds = 0
        /// When set, a JSON object with the seconds spent answering tasks and waiting for the
        /// next one (from a reply to the next task; the wait before the first task and after
        /// the last is not counted) is written here on exit.
        public var statsPath: String?
        /// Log lines go here.
        public var log: @Sendable (String) -> Void = Log.writer("synthetic")

        /// - Parameters: see the properties.
        public init(connect: String, role: Role, replay: Replay) {
            self.connect = connect
            self.role = role
            self.replay = replay
        }
    }

    private let options: Options
    private var sampler: TaskSampler?
    private var nTrain = 0
    private var rows: [Int32] = []
    /// Tasks answered.
    public private(set) var tasksDone = 0
    /// Seconds spent answering tasks (a trial's sleep included).
    public private(set) var busySeconds = 0.0
    /// Seconds between sending a reply and receiving the next task.
    public private(set) var waitSeconds = 0.0
    private var lastReplyAt: Double?

    /// - Parameter options: how to run.
    public init(options: Options) { self.options = options }

    /// The synthetic loss of a trial at λ: a smooth bowl with its minimum at λ = −2 in every
    /// coordinate, so a Bayesian optimizer has something to find.
    public static func trialLoss(_ lambda: [Float]) -> Double {
        0.04 + 0.002 * lambda.reduce(0) { $0 + Double(($1 + 2) * ($1 + 2)) } / Double(max(lambda.count, 1))
    }

    /// Runs until Shutdown, a signal, or the parent's death.
    public func run() throws -> WorkerNode.Exit {
        Transport.tuneAllocatorForLargeMessages()
        let link = CoordinatorLink(settings: .init(connect: options.connect, curve: nil, parentPID: options.parentPID,
                                                   giveUpAfter: 120, busyWaitMicroseconds: options.busyWaitMicroseconds,
                                                   log: options.log))
        defer { writeStats() }
        return try link.run(
            hello: { previous in
                Hello(role: options.role, hostname: ProcessInfo.processInfo.hostName, pid: UInt32(getpid()),
                      softwareVersion: "hypertrain 0.1 (synthetic)", previousWorkerID: previous, acceptsWeightTasks: true)
            },
            welcome: { w in
                let config = try ClusterSpec.config(from: w.spec)
                sampler = TaskSampler(config: config)
                nTrain = config.nTrain
            },
            answer: { message in try answer(message) })
    }

    private func writeStats() {
        guard let path = options.statsPath else { return }
        let line = "{\"tasks\":\(tasksDone),\"busy_seconds\":\(busySeconds),\"wait_seconds\":\(waitSeconds)}\n"
        try? line.write(toFile: path, atomically: true, encoding: .utf8)
    }

    private func answer(_ message: Message) throws -> CoordinatorLink.Outgoing? {
        let started = ProgressLine.monotonicSeconds()
        if let last = lastReplyAt { waitSeconds += started - last }
        defer {
            let end = ProgressLine.monotonicSeconds()
            busySeconds += end - started
            lastReplyAt = end
        }
        guard let sampler else { throw CoordinatorLink.Restart(reason: "a task before the experiment was set up") }
        let r = options.replay
        let body: Message.Body
        switch message.body {
        case .trainTask(let t):
            // The rows the coordinator checks, drawn as a trainer draws them.
            sampler.trainRows(step: t.step, task: Int(t.taskIndex), count: nTrain, into: &rows)
            if !t.weights.isEmpty {
                guard t.weights.count == r.trainGradW.count else { throw CoordinatorLink.Restart(reason: "weight task of the wrong size for the replay") }
                body = .gradient(Gradient(step: t.step, taskIndex: t.taskIndex, leaseID: t.leaseID, trainLoss: r.trainLoss,
                                          gradPhi: [], gradW: r.trainGradW, lambdas: t.lambda, indices: rows))
            } else {
                body = .gradient(Gradient(step: t.step, taskIndex: t.taskIndex, leaseID: t.leaseID, trainLoss: r.trainLoss,
                                          gradPhi: r.trainGradPhi, gradW: [], lambdas: r.trainLambda, indices: rows))
            }
        case .validTask(let t):
            if !t.weights.isEmpty {
                body = .hypergradient(Hypergradient(step: t.step, leaseID: t.leaseID, validLoss: r.validLoss, gradLambda: [], gradW: r.validGradW))
            } else {
                body = .hypergradient(Hypergradient(step: t.step, leaseID: t.leaseID, validLoss: r.validLoss, gradLambda: r.validGradLambda))
            }
        case .trialTask(let t):
            if options.trialSeconds > 0 { usleep(UInt32(min(options.trialSeconds, 3600) * 1_000_000)) }
            let loss = Self.trialLoss(t.lambda)
            body = .trialResult(Wire.TrialResult(trialID: t.trialID, leaseID: t.leaseID, trainLoss: loss, validLoss: loss, testLoss: loss))
        default:
            return nil
        }
        tasksDone += 1
        return .init(body: body, phiVersion: message.phiVersion, lambdaVersion: message.lambdaVersion)
    }
}
