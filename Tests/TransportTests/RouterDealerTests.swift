import Foundation
import Testing
import Transport

@Suite struct RouterDealerTests {
    private static func endpoints() -> [String] {
        ["tcp://127.0.0.1:*", "ipc:///tmp/hypertrain-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"]
    }

    @Test("a 660 KB multipart message goes DEALER → ROUTER → DEALER intact", arguments: endpoints())
    func roundTrip(_ endpoint: String) throws {
        try withRouterDealer(endpoint, routingID: "worker-1") { router, dealer, resolved in
            if endpoint.hasPrefix("tcp") {
                #expect(resolved.hasPrefix("tcp://127.0.0.1:") && !resolved.hasSuffix(":*"))
            }
            let request = largeMessage(tag: 3)
            try dealer.send(request)
            let received = try #require(try receiveSoon(router))
            #expect(received.count == 3)
            #expect(received[0] == Array("worker-1".utf8))   // ROUTER adds the routing id
            #expect(Array(received.dropFirst()) == request)

            try router.send(received)                        // echo, addressed by the id frame
            let echoed = try #require(try receiveSoon(dealer))
            #expect(echoed == request)                       // DEALER sees no id frame

            // Timing, printed for docs/protocol.md (no assertion: shared machine).
            let clock = ContinuousClock()
            var times: [Double] = []
            for _ in 0..<100 {
                let d = try clock.measure {
                    try dealer.send(request)
                    let m = try #require(try receiveSoon(router))
                    try router.send(m)
                    _ = try #require(try receiveSoon(dealer))
                }
                times.append(seconds(d))
            }
            print("660 KB round trip over \(endpoint.prefix(3)): median \((median(times) * 1e6).rounded()) µs over 100")
        }
    }

    @Test("empty frames survive", arguments: ["tcp://127.0.0.1:*"])
    func emptyFrames(_ endpoint: String) throws {
        try withRouterDealer(endpoint, routingID: "worker-1") { router, dealer, _ in
            try dealer.send([[], [1], []])
            let m = try #require(try receiveSoon(router))
            #expect(Array(m.dropFirst()) == [[], [1], []])
        }
    }

    @Test("a ROUTER with routerMandatory reports an unknown peer as hostUnreachable")
    func routerMandatory() throws {
        let context = try ZMQContext()
        defer { context.close() }
        let router = try Socket(context: context, kind: .router)
        defer { router.close() }
        try router.set(.routerMandatory(true))
        try router.bind("tcp://127.0.0.1:*")
        #expect(throws: TransportError.self) { try router.send([Array("nobody".utf8), [1]]) }
        do {
            try router.send([Array("nobody".utf8), [1]])
        } catch {
            #expect(error.code == .hostUnreachable)
            #expect(!error.message.isEmpty)
        }
    }

    @Test("every option is accepted by libzmq and the ones a peer can observe take effect")
    func options() throws {
        let context = try ZMQContext()
        defer { context.close() }
        let s = try Socket(context: context, kind: .dealer)
        defer { s.close() }
        let options: [SocketOption] = [
            .linger(milliseconds: 100), .routingID([1, 2, 3]), .sendHighWaterMark(100), .receiveHighWaterMark(100),
            .heartbeatInterval(milliseconds: 1_000), .heartbeatTTL(milliseconds: 3_000),
            .heartbeatTimeout(milliseconds: 3_000), .maxMessageSize(1 << 30), .reconnectInterval(milliseconds: 100),
            .reconnectIntervalMax(milliseconds: 2_000), .sendTimeout(milliseconds: 500),
            .receiveTimeout(milliseconds: 500), .handshakeInterval(milliseconds: 5_000), .immediate(false),
            .zapDomain("hypertrain"),
        ]
        for option in options { try s.set(option) }
        let router = try Socket(context: context, kind: .router)
        defer { router.close() }
        try router.set(.routerMandatory(true))

        // The routing ID set above is what the router sees; the receive timeout bounds an
        // empty receive.
        let endpoint = "inproc://options-\(UInt64.random(in: 0...UInt64.max))"
        try router.bind(endpoint)
        try s.connect(endpoint)
        try s.send([[42]])
        let frames = try #require(try router.receive(timeoutMs: 5_000))
        #expect(frames == [[1, 2, 3], [42]])
        let clock = ContinuousClock()
        var empty: [[UInt8]]?? = .none
        let waited = try clock.measure { empty = .some(try s.receive(timeoutMs: 200)) }
        #expect(empty == .some(nil))
        #expect(waited >= .milliseconds(150) && waited < .seconds(5))
    }

    @Test("errors carry the operation and libzmq's text; a closed socket refuses calls")
    func errors() throws {
        let context = try ZMQContext()
        defer { context.close() }
        let s = try Socket(context: context, kind: .dealer)
        do {
            try s.bind("nonsense://x")
            Issue.record("bind to a bad endpoint succeeded")
        } catch {
            #expect(error.operation.contains("zmq_bind"))
            #expect(error.code == .notSupported || error.code == .invalidArgument)
        }
        s.close()
        #expect(s.isClosed)
        #expect(throws: TransportError.self) { try s.connect("tcp://127.0.0.1:1") }
        s.close()   // idempotent
    }

    @Test("a send timeout turns into wouldBlock; trySend returns false when nothing can be queued")
    func sendTimeout() throws {
        let context = try ZMQContext()
        defer { context.close() }
        let dealer = try Socket(context: context, kind: .dealer)
        defer { dealer.close() }
        try dealer.set(.linger(milliseconds: 0))
        try dealer.set(.sendTimeout(milliseconds: 50))
        // No connection at all: a DEALER has nowhere to queue.
        #expect(try dealer.trySend([[1]]) == false)
        do {
            try dealer.send([[1]])
            Issue.record("send without a peer succeeded")
        } catch {
            #expect(error.code == .wouldBlock)
        }
    }

    @Test("context shutdown makes blocking calls fail with terminated")
    func shutdown() throws {
        let context = try ZMQContext()
        let dealer = try Socket(context: context, kind: .dealer)
        context.shutdown()
        do {
            _ = try dealer.receive()
            Issue.record("receive after shutdown returned")
        } catch {
            #expect(error.code == .terminated)
        }
        dealer.close()
        context.close()
    }

    @Test("the allocator tuning is accepted by glibc")
    func allocator() {
        #expect(tuneAllocatorForLargeMessages())
    }
}
