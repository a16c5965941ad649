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
