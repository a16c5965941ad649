import HyperOpt
import Prometheus
import Telemetry

/// The coordinator's Prometheus metrics (when `--metrics-port` is given): a swift-prometheus
/// registry, served on `/metrics` by ``PrometheusServer``. Every metric is a gauge (the
/// coordinator sets them from its counters), so the names carry no `_total` suffix.
final class ClusterMetrics {
    let registry = PrometheusCollectorRegistry()
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

    /// Serves the metrics on `host:port` when `port` is given (0: an ephemeral port); without
    /// a port nothing is recorded. A server that cannot start is logged, not fatal.
    init(port: UInt16?, host: String, log: (String) -> Void) {
        steps = registry.makeGauge(name: "hypertrain_steps", help: "Steps completed")
        applied = registry.makeGauge(name: "hypertrain_gradients_applied", help: "Training gradients applied")
        hyperApplied = registry.makeGauge(name: "hypertrain_hypergradients_applied", help: "Hypergradients applied")
        reissued = registry.makeGauge(name: "hypertrain_tasks_reissued", help: "Tasks re-issued after a peer died")
        trainers = registry.makeGauge(name: "hypertrain_peers_alive", labels: [("role", "trainer")], help: "Registered peers")
        validators = registry.makeGauge(name: "hypertrain_peers_alive", labels: [("role", "validator")], help: "Registered peers")
        lambdaMean = registry.makeGauge(name: "hypertrain_lambda_hat_mean", help: "Mean of λ̂")
        trainLoss = registry.makeGauge(name: "hypertrain_train_loss", help: "Last training loss")
        validLoss = registry.makeGauge(name: "hypertrain_valid_loss", help: "Last validation loss (batch, or full at evaluations)")
        testLoss = registry.makeGauge(name: "hypertrain_test_loss", help: "Test loss at the last evaluation")
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
            let g = rejected[reason] ?? registry.makeGauge(name: "hypertrain_messages_rejected", labels: [("reason", reason)], help: "Messages rejected, by reason")
            rejected[reason] = g
            g.set(Double(n))
        }
    }

    /// The port being served, if any.
    var boundPort: UInt16? { server?.boundPort }

    func stop() { server?.stop() }
}
