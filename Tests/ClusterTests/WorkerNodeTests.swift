import Foundation
import Testing
import HyperOpt
import Wire
@testable import Cluster

/// `WorkerNode` against a scripted coordinator: a real ROUTER socket in this process (the same
/// `RouterServer` the coordinators use), the worker on its own thread, real MNIST.
@Suite(.enabled(if: workerNodeTestData() != nil, "needs MNIST: set HYPERTRAIN_DATA"))
struct WorkerNodeTests {
    static var dataDirectory: String? { workerNodeTestData() }

    /// The worker's `run()` result, set from its thread.
    final class Outcome: @unchecked Sendable {  // guarded by `lock`
        private let lock = NSLock()
        private var value: Result<WorkerNode.Exit, any Error>?
        func set(_ v: Result<WorkerNode.Exit, any Error>) { lock.withLock { value = v } }
        var result: Result<WorkerNode.Exit, any Error>? { lock.withLock { value } }
    }

    /// A scripted coordinator: waits for messages of the worker and answers as told.
    final class Script {
        let server: RouterServer
        var sequence: UInt64 = 0
        /// Messages received in a batch and not yet looked at.
        var pending: [(peer: [UInt8], message: Message)] = []
        init() throws {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("wn-\(UUID().uuidString.prefix(8)).sock").path
            server = try RouterServer(bind: ["ipc://" + path], curve: nil, maxMessageBytes: 64 << 20, log: { _ in })
        }
        var endpoint: String { server.endpoints[0] }

        /// The next message from the worker that `accept` takes (others are skipped), within `seconds`.
        struct Timeout: Error, CustomStringConvertible {
            let seen: [String]
            var description: String { "no expected message; saw \(seen)" }
        }

        func next(within seconds: Double = 60, _ accept: (Message) -> Bool = { _ in true }) throws -> (peer: [UInt8], message: Message) {
            var seen: [String] = []
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if pending.isEmpty {
                    for (peer, frames) in try server.receiveFrames(timeout: 0.1) { pending.append((peer, try WireCodec.decode(frames))) }
                }
                while !pending.isEmpty {
                    let (peer, m) = pending.removeFirst()
                    if accept(m) { return (peer, m) }
                    seen.append(m.body.name)
                }
            }
            throw Timeout(seen: seen)
        }

        func send(_ body: Message.Body, to peer: [UInt8], phiVersion: UInt64 = 0, lambdaVersion: UInt64 = 0) {
            sequence += 1
            server.send(Message(senderID: "coordinator", phiVersion: phiVersion, lambdaVersion: lambdaVersion, sequence: sequence, body: body), to: peer)
        }
    }

    static func config() -> ExperimentConfig {
        var c = ExperimentConfig()
        c.nTrain = 100
        c.nValid = 100
        c.nTest = 100
        c.batchSize = 100
        c.validBatchSize = 100
        c.steps = 10
        return c
    }

    static func start(_ script: Script, role: Role) -> (WorkerNode, Outcome) {
        var o = WorkerNode.Options(connect: script.endpoint, role: role, dataDirectory: dataDirectory!)
        o.log = { _ in }
        let node = WorkerNode(options: o)
        let outcome = Outcome()
        let box = UncheckedBox(value: node)
        Thread.detachNewThread { outcome.set(Result { try box.value.run() }) }
        return (node, outcome)
    }

    struct UncheckedBox<T>: @unchecked Sendable { let value: T }  // handed to one thread, used only there

    static func isWorkRequest(_ m: Message) -> Bool { if case .workRequest = m.body { true } else { false } }

    @Test("registers, pipelines two work requests, answers weight tasks with ∂L/∂w echoing the versions, re-registers after an unusable task, exits on Shutdown")
    func sessionAndTasks() throws {
        let script = try Script()
        defer { script.server.close() }
        let config = Self.config()
        let data = try ExperimentData.load(directory: Self.dataDirectory!, config: config)
        let (_, outcome) = Self.start(script, role: .validator)

        let (peer, helloMessage) = try script.next { if case .hello = $0.body { true } else { false } }
        guard case .hello(let hello) = helloMessage.body else { return }
        #expect(hello.role == .validator && hello.acceptsWeightTasks && hello.previousWorkerID.isEmpty)
        script.send(.welcome(Welcome(workerID: "validator-1", spec: ClusterSpec.spec(config: config, dataFingerprint: data.fingerprint),
                                     heartbeatIntervalMs: 200, heartbeatLiveness: 50)), to: peer)
        let first = try script.next(Self.isWorkRequest)
        let second = try script.next(Self.isWorkRequest)
        #expect(first.message.senderID == "validator-1" && second.message.sequence > first.message.sequence)

        // A weight task: w = φ(λ̂) of D values.
        let trainer = HyperTrainer(config: config, data: data)
        let w = [Float](repeating: 0.01, count: trainer.weightCount)
        script.send(.validTask(ValidTask(step: 3, leaseID: 42, phi: [], lambdaHat: [Float](repeating: -3, count: trainer.hyperparameterCount),
                                         weights: w)), to: peer, phiVersion: 7, lambdaVersion: 5)
        let reply = try script.next { if case .hypergradient = $0.body { true } else { false } }
        guard case .hypergradient(let g) = reply.message.body else { return }
        #expect(g.step == 3 && g.leaseID == 42 && g.gradW.count == trainer.weightCount && g.gradLambda.isEmpty && g.validLoss.isFinite)
        #expect(reply.message.phiVersion == 7 && reply.message.lambdaVersion == 5)
        _ = try script.next(Self.isWorkRequest)  // the credit for the next task

        // A task it cannot use (w of the wrong length): it starts over and says who it was.
        script.send(.validTask(ValidTask(step: 4, leaseID: 43, phi: [], lambdaHat: [], weights: [1, 2, 3])), to: peer)
        let again = try script.next { if case .hello = $0.body { true } else { false } }
        guard case .hello(let rehello) = again.message.body else { return }
        #expect(rehello.previousWorkerID == "validator-1")

        script.send(.shutdown(Shutdown(reason: "test over")), to: again.peer)
        let deadline = Date().addingTimeInterval(10)
        while outcome.result == nil && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        guard case .success(.shutdown(let reason))? = outcome.result else {
            Issue.record("the worker did not exit on Shutdown: \(String(describing: outcome.result))")
            return
        }
        #expect(reason == "test over")
    }

    @Test("an idle worker sends heartbeats; a silent coordinator makes it reconnect naming its old id")
    func heartbeatsAndReconnect() throws {
        let script = try Script()
        defer { script.server.close() }
        let config = Self.config()
        let data = try ExperimentData.load(directory: Self.dataDirectory!, config: config)
        let (_, outcome) = Self.start(script, role: .trainer)
        let (peer, _) = try script.next { if case .hello = $0.body { true } else { false } }
        // Heartbeats every 0.1 s; the coordinator is dead after 3 silent intervals.
        script.send(.welcome(Welcome(workerID: "trainer-9", spec: ClusterSpec.spec(config: config, dataFingerprint: data.fingerprint),
                                     heartbeatIntervalMs: 100, heartbeatLiveness: 3)), to: peer)
        let beat = try script.next(within: 60) { if case .heartbeat = $0.body { true } else { false } }
        #expect(beat.message.senderID == "trainer-9")
        // We say nothing more: within a few intervals it gives up on this session and says Hello again.
        let back = try script.next(within: 30) { if case .hello = $0.body { true } else { false } }
        guard case .hello(let hello) = back.message.body else { return }
        #expect(hello.previousWorkerID == "trainer-9" && hello.role == .trainer)
        script.send(.shutdown(Shutdown(reason: "done")), to: back.peer)
        let deadline = Date().addingTimeInterval(10)
        while outcome.result == nil && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        #expect(outcome.result.map { if case .success(.shutdown) = $0 { true } else { false } } == true)
    }
}

/// The MNIST directory ($HYPERTRAIN_DATA or data/mnist) when it holds the files.
private func workerNodeTestData() -> String? {
    let dir = ProcessInfo.processInfo.environment["HYPERTRAIN_DATA"] ?? "data/mnist"
    let fm = FileManager.default
    return fm.fileExists(atPath: dir + "/train-images.idx3-ubyte") ? dir : nil
}
