import HyperOpt
import Telemetry

/// The coordinator's Prometheus metrics (when `--metrics-port` is given).
final class ClusterMetrics {
    private let registry = MetricsRegistry()
    private let server: PrometheusServer?
    private let steps: Gauge
    private let applied: Gauge
    private let hyperApplied: Gauge
    private let reissued: Gauge
    private let trainers: Gauge
    private let validators: Gauge
    private let lambdaMean: Gauge
    private let trainLoss: Gauge
    private let validLoss: Gauge
    private let testLoss: Gauge
    private var rejected: [String: Gauge] = [:]

    init(port: UInt16?, host: String, log: (String) -> Void) {
        steps = registry.gauge("hypertrain_steps", help: "Steps completed")
        applied = registry.gauge("hypertrain_gradients_applied", help: "Training gradients applied")
        hyperApplied = registry.gauge("hypertrain_hypergradients_applied", help: "Hypergradients applied")
        reissued = registry.gauge("hypertrain_tasks_reissued", help: "Tasks re-issued after a peer died")
        trainers = registry.gauge("hypertrain_peers_alive", help: "Registered peers", labels: ["role": "trainer"])
        validators = registry.gauge("hypertrain_peers_alive", help: "Registered peers", labels: ["role": "validator"])
        lambdaMean = registry.gauge("hypertrain_lambda_hat_mean", help: "Mean of λ̂")
        trainLoss = registry.gauge("hypertrain_train_loss", help: "Last training loss")
        validLoss = registry.gauge("hypertrain_valid_loss", help: "Last validation loss (batch, or full at evaluations)")
        testLoss = registry.gauge("hypertrain_test_loss", help: "Test loss at the last evaluation")
        if let port {
            do {
                let s = try PrometheusServer(registry: registry, port: port, host: host)
                log("Prometheus metrics on http://\(host):\(s.boundPort)/metrics")
                server = s
            } catch {
                log("metrics server not started: \(error)")
                server = nil
            }
        } else {
            server = nil
        }
    }

    func record(report: StepReport, counters: CoordinatorCounters, peers: (trainers: Int, validators: Int)) {
        guard server != nil else { return }
        steps.set(Double(report.step))
        let l = report.lambdaHat
        lambdaMean.set(Double(l.reduce(0, +)) / Double(max(l.count, 1)))
        if let t = report.trainLoss { trainLoss.set(t) }
        if let v = report.validBatchLoss { validLoss.set(v) }
        record(counters: counters, peers: peers)
    }

    func record(evaluation e: Evaluation) {
        guard server != nil else { return }
        validLoss.set(e.validLoss)
        testLoss.set(e.testLoss)
    }

    func record(counters: CoordinatorCounters, peers: (trainers: Int, validators: Int)) {
        guard server != nil else { return }
        applied.set(Double(counters.gradientsApplied))
        hyperApplied.set(Double(counters.hypergradientsApplied))
        reissued.set(Double(counters.tasksReissued))
        trainers.set(Double(peers.trainers))
        validators.set(Double(peers.validators))
        for (reason, n) in counters.rejected {
            let g = rejected[reason] ?? registry.gauge("hypertrain_messages_rejected", help: "Messages rejected, by reason", labels: ["reason": reason])
            rejected[reason] = g
            g.set(Double(n))
        }
    }

    func stop() { server?.stop() }
}
