import Foundation
import Testing
@testable import Cluster

/// The names, labels and types operators scrape (deploy/README.md, dashboards) must not change
/// with the library underneath.
@Suite struct ClusterMetricsTests {
    @Test("the exposition names every coordinator metric with its type and labels")
    func names() async throws {
        // On a thread of its own: the blocking server API must not run on the concurrency pool.
        let text: String = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                let metrics = ClusterMetrics(port: 0, host: "127.0.0.1", log: { _ in })
                defer { metrics.stop() }
                var counters = CoordinatorCounters()
                counters.gradientsApplied = 12
                counters.hypergradientsApplied = 3
                counters.tasksReissued = 1
                counters.rejected = ["stale": 2]
                metrics.record(counters: counters, peers: (trainers: 4, validators: 1))
                var bytes: [UInt8] = []
                metrics.registry.emit(into: &bytes)
                continuation.resume(returning: String(decoding: bytes, as: UTF8.self))
            }
        }
        for name in ["hypertrain_steps", "hypertrain_gradients_applied", "hypertrain_hypergradients_applied",
                     "hypertrain_tasks_reissued", "hypertrain_peers_alive", "hypertrain_lambda_hat_mean",
                     "hypertrain_train_loss", "hypertrain_valid_loss", "hypertrain_test_loss", "hypertrain_messages_rejected"] {
            #expect(text.contains("# TYPE \(name) gauge\n"), "\(name) missing or not a gauge")
        }
        #expect(text.contains("hypertrain_gradients_applied 12.0\n") || text.contains("hypertrain_gradients_applied 12\n"))
        #expect(text.contains("hypertrain_peers_alive{role=\"trainer\"} 4"))
        #expect(text.contains("hypertrain_peers_alive{role=\"validator\"} 1"))
        #expect(text.contains("hypertrain_messages_rejected{reason=\"stale\"} 2"))
    }
}
