import Foundation
import Testing
import Transport

@Suite struct PollerTests {
    @Test("receive(timeoutMs:) returns nil when nothing arrives")
    func receiveTimeout() throws {
        let context = try ZMQContext()
        defer { context.close() }
        let dealer = try Socket(context: context, kind: .dealer)
        defer { dealer.close() }
        try dealer.bind("tcp://127.0.0.1:*")
        let start = ContinuousClock.now
        #expect(try dealer.receive(timeoutMs: 100) == nil)
        #expect(ContinuousClock.now - start >= .milliseconds(90))
        #expect(try dealer.tryReceive() == nil)
        #expect(try dealer.receive(timeoutMs: 0) == nil)
    }

    @Test("a receive that busy-waits first still times out on time and still delivers what arrives, during or after the busy wait")
    func busyWaitingReceive() throws {
        let context = try ZMQContext()
        defer { context.close() }
        let a = try Socket(context: context, kind: .pair)
        let b = try Socket(context: context, kind: .pair)
        defer { a.close(); b.close() }
        try a.bind("ipc:///tmp/hypertrain-busywait-\(UInt32.random(in: 0...UInt32.max)).sock")
        try b.connect(try a.lastEndpoint)
        // Shorter timeout than busy wait: the timeout wins.
        a.spinBeforeBlocking = .milliseconds(500)
        var start = ContinuousClock.now
        #expect(try a.receiveFrames(timeoutMs: 60) == nil)
        var waited = ContinuousClock.now - start
        #expect(waited >= .milliseconds(55) && waited < .milliseconds(450), "waited \(waited)")
        // Longer timeout than busy wait: spins, then sleeps until the timeout.
        a.spinBeforeBlocking = .milliseconds(20)
        start = ContinuousClock.now
        #expect(try a.receive(timeoutMs: 120) == nil)
        waited = ContinuousClock.now - start
        #expect(waited >= .milliseconds(110), "waited \(waited)")
        // A message already there, one arriving while it spins, one arriving after it sleeps.
        try b.send([[1]])
        #expect(try a.receive(timeoutMs: 1_000) == [[1]])
        nonisolated(unsafe) let sendSide = b   // used by that thread only until joined below
        let sender = Thread {
            usleep(5_000); try? sendSide.send([[2]])
            usleep(100_000); try? sendSide.send([[3]])
        }
        sender.start()
        #expect(try a.receive(timeoutMs: 2_000) == [[2]])   // within the 20 ms busy wait
        #expect(try a.receive(timeoutMs: 2_000) == [[3]])   // after it, from zmq_poll
    }

    @Test("a Poller reports which of several sockets is readable")
    func poller() throws {
        let context = try ZMQContext()
        defer { context.close() }
        let a = try Socket(context: context, kind: .pair)
        let b = try Socket(context: context, kind: .pair)
        let c = try Socket(context: context, kind: .pair)
        let d = try Socket(context: context, kind: .pair)
        defer { for s in [a, b, c, d] { s.close() } }
        try a.bind("inproc://poll-ab")
        try b.connect("inproc://poll-ab")
        try c.bind("inproc://poll-cd")
        try d.connect("inproc://poll-cd")

        let poller = Poller()
        let ia = poller.register(a)
        let ic = poller.register(c)
        #expect(try poller.poll(timeoutMs: 50) == [[], []])

        try d.send([[42]])
        let ready = try poller.poll(timeoutMs: 5_000)
        #expect(ready[ic].contains(.readable))
        #expect(!ready[ia].contains(.readable))
        #expect(try c.receive() == [[42]])

        let writable = Poller()
        writable.register(b, for: .writable)
        #expect(try writable.poll(timeoutMs: 1_000)[0].contains(.writable))
    }

    @Test("polling a closed socket is an error, not a crash")
    func closedSocket() throws {
        let context = try ZMQContext()
        defer { context.close() }
        let s = try Socket(context: context, kind: .dealer)
        let poller = Poller()
        poller.register(s)
        s.close()
        #expect(throws: TransportError.self) { try poller.poll(timeoutMs: 0) }
    }
}
