import Testing
import Telemetry

@Suite struct MetricsRegistryTests {
    @Test("A small registry renders exactly in text format 0.0.4, sorted and escaped")
    func exposition() {
        let registry = MetricsRegistry()
        registry.counter("hypertrain_steps_total", help: "Optimizer steps applied.").inc(by: 42)
        registry.gauge("hypertrain_worker_loss", help: "Last training loss per worker.", labels: ["worker": "b"]).set(0.25)
        registry.gauge("hypertrain_worker_loss", help: "ignored: first help wins",
                       labels: ["zone": "x\"y\\z\nw", "worker": "a"]).set(1.5)
        registry.gauge("hypertrain_workers", help: "Connected\nworkers \\ now.").set(3)
        registry.counter("a_total", help: "First by name.").inc()
        registry.gauge("hypertrain_valid_loss", help: "λ̂ validation loss.").set(.nan)
        registry.gauge("hypertrain_big", help: "Large and tiny values.", labels: ["v": "big"]).set(1e20)
        registry.gauge("hypertrain_big", help: "", labels: ["v": "inf"]).set(-.infinity)
        registry.gauge("hypertrain_big", help: "", labels: ["v": "tiny"]).set(1e-5)

        #expect(registry.render() == """
            # HELP a_total First by name.
            # TYPE a_total counter
            a_total 1
            # HELP hypertrain_big Large and tiny values.
            # TYPE hypertrain_big gauge
            hypertrain_big{v="big"} 1e+20
            hypertrain_big{v="inf"} -Inf
            hypertrain_big{v="tiny"} 1e-05
            # HELP hypertrain_steps_total Optimizer steps applied.
            # TYPE hypertrain_steps_total counter
            hypertrain_steps_total 42
            # HELP hypertrain_valid_loss λ̂ validation loss.
            # TYPE hypertrain_valid_loss gauge
            hypertrain_valid_loss NaN
            # HELP hypertrain_worker_loss Last training loss per worker.
            # TYPE hypertrain_worker_loss gauge
            hypertrain_worker_loss{worker="a",zone="x\\"y\\\\z\\nw"} 1.5
            hypertrain_worker_loss{worker="b"} 0.25
            # HELP hypertrain_workers Connected\\nworkers \\\\ now.
            # TYPE hypertrain_workers gauge
            hypertrain_workers 3

            """)
    }

    @Test("An empty registry renders nothing")
    func empty() {
        #expect(MetricsRegistry().render() == "")
    }

    @Test("Asking again for the same name and labels returns the same series")
    func sameSeries() {
        let registry = MetricsRegistry()
        let first = registry.counter("requests_total", help: "h", labels: ["code": "200"])
        registry.counter("requests_total", help: "h", labels: ["code": "200"]).inc(by: 2)
        first.inc()
        #expect(first.value == 3)
        #expect(registry.counter("requests_total", help: "h", labels: ["code": "500"]).value == 0)

        let gauge = registry.gauge("workers", help: "h")
        gauge.set(5)
        gauge.inc(by: 2)
        gauge.dec()
        #expect(registry.gauge("workers", help: "h").value == 6)
    }

    @Test("Increments from many threads are all counted")
    func concurrentIncrements() async {
        let registry = MetricsRegistry()
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    let counter = registry.counter("ops_total", help: "h", labels: ["task": String(task % 2)])
                    for _ in 0..<1000 { counter.inc() }
                    _ = registry.render()
                }
            }
        }
        #expect(registry.counter("ops_total", help: "h", labels: ["task": "0"]).value == 4000)
        #expect(registry.counter("ops_total", help: "h", labels: ["task": "1"]).value == 4000)
    }
}
