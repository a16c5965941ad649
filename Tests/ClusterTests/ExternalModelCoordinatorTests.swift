import Foundation
import Testing
import HyperOpt
import Linalg
import Models
import Wire
@testable import Cluster

/// The coordinator on an external model (docs/protocol.md §12), driven without sockets: fake
/// SDK workers answer weight tasks with the gradient of `L_pred(w) = ½‖w‖²` (so ∂L_pred/∂w = w).
@Suite struct ExternalModelCoordinatorTests {
    static let model = ExternalModel(tensors: [.init(name: "fc.weight", shape: [2, 3]), .init(name: "fc.bias", shape: [2])],
                                     scope: .global)

    final class Harness {
        let config: ExperimentConfig
        let core: CoordinatorCore
        let t0 = 1_000.0
        let w0: [Float] = [0.5, -0.25, 1, 0.75, -1, 0.125, 0.3, -0.2]

        init(scope: ExternalModel.Scope = .global, steps: Int = 3, mode: ClusterMode = .sync) {
            var c = ExperimentConfig()
            var m = ExternalModelCoordinatorTests.model
            m.scope = scope
            c.external = m
            c.steps = steps
            c.samplesPerStep = 2
            c.sigma = 0.5
            c.hypernetInput = .centred
            c.phiOptimizer = .sgd
            c.phiLearningRate = 0.1
            c.lambdaInit = -1
            c.evalEvery = 0
            precondition(c.problems().isEmpty, "\(c.problems())")
            config = c
            let lambda0 = [Float](repeating: -1, count: c.hyperparameterCount)
            let phi0 = TaskGradientExpander(config: c).initialPhi(initialWeights: w0, lambdaHat: lambda0, seed: c.seed, scale: c.initScale)
            core = CoordinatorCore(config: c, state: HyperState(config: c, phi: phi0, lambdaHat: lambda0), mode: mode,
                                   dataFingerprint: 0, heartbeatInterval: 0.2, heartbeatLiveness: 5)
        }

        func peer(_ n: UInt8) -> CoreFakePeer { CoreFakePeer(id: [0, 0x81, n], core: core) }

        func hello(_ p: inout CoreFakePeer, _ role: Role, weightTasks: Bool = true, model: ModelSpec? = ClusterSpec.modelSpec(ExternalModelCoordinatorTests.model)) -> [CoordinatorAction] {
            core.handle(peer: p.id, frames: p.frames(.hello(Hello(role: role, acceptsWeightTasks: weightTasks, model: model))), now: t0)
        }

        func register(_ n: UInt8, _ role: Role) throws -> CoreFakePeer {
            var p = peer(n)
            p.workerID = try #require(CoreHarness.welcome(in: hello(&p, role), to: p.id)).workerID
            return p
        }

        /// The SDK's answer to a training weight task: ∂(½‖w‖²)/∂w = w, the loss ½‖w‖².
        static func answer(_ t: TrainTask) -> Gradient {
            Gradient(step: t.step, taskIndex: t.taskIndex, leaseID: t.leaseID, trainLoss: Double(t.weights.reduce(0) { $0 + $1 * $1 }) / 2,
                     gradPhi: [], gradW: t.weights, lambdas: t.lambda, indices: [])
        }
    }

    @Test("the layout: w is the tensors in order; scopes global, per-tensor, per-weight and per-output-unit (a bias shares its weight rows' λ)")
    func groups() {
        var m = Self.model
        #expect(m.parameterCount == 8 && m.offsets == [0, 6])
        #expect(m.groups().count == 1)
        m.scope = .perTensor
        #expect(m.groups().groupOf == [0, 0, 0, 0, 0, 0, 1, 1] && m.groups().count == 2)
        m.scope = .perWeight
        #expect(m.groups().groupOf == (0..<8).map(Int32.init) && m.groups().count == 8)
        m.scope = .perOutputUnit
        #expect(m.groups().groupOf == [0, 0, 0, 1, 1, 1, 0, 1] && m.groups().count == 2)
        let conv = ExternalModel(tensors: [.init(name: "c.weight", shape: [2, 1, 2, 2]), .init(name: "c.bias", shape: [2]),
                                           .init(name: "scale", shape: [3])], scope: .perOutputUnit)
        #expect(conv.groups().groupOf == [0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 2, 3, 4] && conv.groups().count == 5)
        #expect(ExternalModel(tensors: [.init(name: "a", shape: [2]), .init(name: "a", shape: [0])], scope: .global).problems().count == 2)
        #expect(!ExternalModel(tensors: [.init(name: "huge", shape: [1 << 40, 1 << 40])], scope: .global).problems().isEmpty)
    }

    @Test("φ₀ gives exactly the initial weights at λ̂₀ (linear hypernet, centred input)")
    func initialWeights() {
        let h = Harness()
        #expect(h.core.payloads.weights(h.core.state) == h.w0)
    }

    @Test("registration: a worker without weight tasks, or with another layout, is refused with a clear error and not registered")
    func registrationRefusals() throws {
        let h = Harness()
        var a = h.peer(1)
        let noWeights = try #require(CoreHarness.error(in: h.hello(&a, .trainer, weightTasks: false), to: a.id))
        #expect(noWeights.code == .unexpected && noWeights.message.contains("external model"))
        var b = h.peer(2)
        let other = ModelSpec(tensors: [.init(name: "fc.weight", shape: [2, 4]), .init(name: "fc.bias", shape: [2])])
        let mismatch = try #require(CoreHarness.error(in: h.hello(&b, .validator, model: other), to: b.id))
        #expect(mismatch.code == .badTensor)
        #expect(mismatch.message.contains("tensor 0: worker has fc.weight [2, 4], the run fc.weight [2, 3]"))
        #expect(h.core.peerCounts.trainers == 0 && h.core.peerCounts.validators == 0)
        var c = h.peer(3)
        #expect(CoreHarness.welcome(in: h.hello(&c, .trainer), to: c.id) != nil)
    }

    @Test("the coordinator adds the penalty: L_train = L_pred + exp(λ)·‖w‖², and the φ step uses ∂L_pred/∂w + 2·exp(λ)·w")
    func penalty() throws {
        let h = Harness()
        var a = try h.register(1, .trainer), b = try h.register(2, .trainer), v = try h.register(3, .validator)
        let ta = try #require(CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id))
        let tb = try #require(CoreHarness.trainTask(in: h.core.handle(peer: b.id, frames: b.frames(.workRequest), now: h.t0), to: b.id))
        let vt = try #require(CoreHarness.validTask(in: h.core.handle(peer: v.id, frames: v.frames(.workRequest), now: h.t0), to: v.id))
        #expect(ta.phi.isEmpty && ta.weights.count == 8 && ta.lambda.count == 1 && vt.weights == h.w0)
        let before = h.core.state.phi.array
        _ = h.core.handle(peer: a.id, frames: a.frames(.gradient(Harness.answer(ta))), now: h.t0)
        _ = h.core.handle(peer: b.id, frames: b.frames(.gradient(Harness.answer(tb))), now: h.t0)
        let hg = Hypergradient(step: 0, leaseID: vt.leaseID, validLoss: 0.5, gradLambda: [], gradW: vt.weights)
        let done = h.core.handle(peer: v.id, frames: v.frames(.hypergradient(hg)), now: h.t0)
        let report = try #require(done.lazy.compactMap { if case .event(let r) = $0 { r } else { nil } }.first)
        func penaltyOf(_ t: TrainTask) -> (value: Double, grad: [Double]) {
            let c = exp(Double(t.lambda[0]))
            return (c * t.weights.reduce(0) { $0 + Double($1 * $1) }, t.weights.map { 2 * c * Double($0) })
        }
        let (pa, pb) = (penaltyOf(ta), penaltyOf(tb))
        let expectedLoss = (Harness.answer(ta).trainLoss + pa.value + Harness.answer(tb).trainLoss + pb.value) / 2
        #expect(abs(try #require(report.trainLoss) - expectedLoss) < 1e-5 * expectedLoss)
        // φ's output bias b (its last D values) moves by −lr·mean_k(∂L_train/∂w_k) under SGD.
        let after = h.core.state.phi.array
        let d = 8, bias = before.count - d
        for i in 0..<d {
            let g = (Double(ta.weights[i]) + pa.grad[i] + Double(tb.weights[i]) + pb.grad[i]) / 2
            #expect(abs(Double(after[bias + i]) - (Double(before[bias + i]) - 0.1 * g)) < 1e-5)
        }
    }

    @Test("bad results change nothing: grad_w of the wrong size and grad_phi (BAD_TENSOR), NaN (NON_FINITE); the task goes out again")
    func badResults() throws {
        let h = Harness()
        var a = try h.register(1, .trainer)
        _ = try h.register(2, .validator)
        let snapshot = h.core.state.snapshot()
        var t = try #require(CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id))
        var short = Harness.answer(t)
        short.gradW.removeLast()
        var r = h.core.handle(peer: a.id, frames: a.frames(.gradient(short)), now: h.t0)
        var e = try #require(CoreHarness.error(in: r, to: a.id))
        #expect(e.code == .badTensor && e.message.contains("grad_w has 7 values, expected 8"))

        t = try #require(CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id))
        var phiForm = Harness.answer(t)
        phiForm.gradW = []
        phiForm.gradPhi = [Float](repeating: 0, count: h.config.phiCount)
        r = h.core.handle(peer: a.id, frames: a.frames(.gradient(phiForm)), now: h.t0)
        e = try #require(CoreHarness.error(in: r, to: a.id))
        #expect(e.code == .badTensor && e.message.contains("must answer with grad_w"))

        t = try #require(CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id))
        var nan = Harness.answer(t)
        nan.gradW[3] = .nan
        r = h.core.handle(peer: a.id, frames: a.frames(.gradient(nan)), now: h.t0)
        e = try #require(CoreHarness.error(in: r, to: a.id))
        #expect(e.code == .nonFinite)

        #expect(h.core.state.snapshot() == snapshot)
        #expect(h.core.counters.gradientsApplied == 0)
        let again = try #require(CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id))
        #expect(again.step == 0)
    }

    @Test("after the last step, one more validation task at the final φ(λ̂): its loss is the run's, λ̂ does not move")
    func finalValidation() throws {
        let h = Harness(steps: 1)
        var a = try h.register(1, .trainer), b = try h.register(2, .trainer), v = try h.register(3, .validator)
        let ta = try #require(CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id))
        let tb = try #require(CoreHarness.trainTask(in: h.core.handle(peer: b.id, frames: b.frames(.workRequest), now: h.t0), to: b.id))
        let vt = try #require(CoreHarness.validTask(in: h.core.handle(peer: v.id, frames: v.frames(.workRequest), now: h.t0), to: v.id))
        _ = h.core.handle(peer: a.id, frames: a.frames(.gradient(Harness.answer(ta))), now: h.t0)
        _ = h.core.handle(peer: b.id, frames: b.frames(.gradient(Harness.answer(tb))), now: h.t0)
        _ = h.core.handle(peer: v.id, frames: v.frames(.hypergradient(Hypergradient(step: 0, leaseID: vt.leaseID, validLoss: 0.5, gradLambda: [], gradW: vt.weights))), now: h.t0)
        #expect(h.core.state.step == 1 && !h.core.isFinished)
        #expect(CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id) == nil)
        let last = try #require(CoreHarness.validTask(in: h.core.handle(peer: v.id, frames: v.frames(.workRequest), now: h.t0), to: v.id))
        #expect(last.step == 1 && last.weights == h.core.payloads.weights(h.core.state))
        let lambda = h.core.state.lambdaHat.array
        _ = h.core.handle(peer: v.id, frames: v.frames(.hypergradient(Hypergradient(step: 1, leaseID: last.leaseID, validLoss: 0.25, gradLambda: [], gradW: last.weights))), now: h.t0)
        #expect(h.core.isFinished && h.core.finalValidLoss == 0.25)
        #expect(h.core.state.lambdaHat.array == lambda && h.core.state.step == 1)
    }

    @Test("async mode: weight tasks too; a reply computed from an older φ is expanded with that φ (kept), with its penalty")
    func asyncWeightTasks() throws {
        let h = Harness(steps: 10, mode: .async)
        var a = try h.register(1, .trainer), b = try h.register(2, .trainer)
        let ta = try #require(CoreHarness.trainTask(in: h.core.handle(peer: a.id, frames: a.frames(.workRequest), now: h.t0), to: a.id))
        let tb = try #require(CoreHarness.trainTask(in: h.core.handle(peer: b.id, frames: b.frames(.workRequest), now: h.t0), to: b.id))
        #expect(ta.phi.isEmpty && tb.phi.isEmpty)
        #expect(ta.weights.count == 8 && tb.weights.count == 8 && ta.step != tb.step)
        _ = h.core.handle(peer: a.id, frames: a.frames(.gradient(Harness.answer(ta))), now: h.t0)
        #expect(h.core.state.phiVersion == 1)
        let before = h.core.state.phi.array
        let r = h.core.handle(peer: b.id, frames: b.frames(.gradient(Harness.answer(tb))), now: h.t0)
        #expect(CoreHarness.acked(r, to: b.id))
        #expect(h.core.state.phiVersion == 2 && h.core.counters.gradientsApplied == 2)
        // b moves by −lr·(w_B + 2·exp(λ_B)·w_B): the reply's w, not φ₁'s.
        let after = h.core.state.phi.array
        let c = exp(Double(tb.lambda[0])), bias = before.count - 8
        for i in 0..<8 {
            let g = Double(tb.weights[i]) * (1 + 2 * c)
            #expect(abs(Double(after[bias + i]) - (Double(before[bias + i]) - 0.1 * g)) < 1e-5)
        }
    }
}
