import Testing
import Transport

@Suite struct CurveTests {
    /// A CURVE server (ROUTER) with a ZAP handler admitting `authorized`, on a fresh context.
    private func server(
        authorized: [String], _ body: (ZMQContext, Socket, String, CurveKeyPair, ZAPAuthenticator, LogCollector) throws -> Void
    ) throws {
        let context = try ZMQContext()
        defer { context.close() }
        let log = LogCollector()
        let zap = try ZAPAuthenticator(context: context, authorizedKeys: try AuthorizedKeys(authorized),
                                       log: { log.append($0) })
        defer { zap.stop() }
        let serverKeys = try CurveKeyPair.generate()
        let router = try Socket(context: context, kind: .router)
        defer { router.close() }
        try router.set(.linger(milliseconds: 0))
        try router.set(.curveServer(secretKey: serverKeys.secretKey))
        try router.bind("tcp://127.0.0.1:*")
        try body(context, router, try router.lastEndpoint, serverKeys, zap, log)
    }

    private func client(_ context: ZMQContext, _ endpoint: String, keys: CurveKeyPair?, serverKey: String) throws -> Socket {
        let dealer = try Socket(context: context, kind: .dealer)
        do {
            try dealer.set(.linger(milliseconds: 0))
            if let keys { try dealer.set(.curveClient(keyPair: keys, serverPublicKey: serverKey)) }
            try dealer.connect(endpoint)
        } catch {
            dealer.close()
            throw error
        }
        return dealer
    }

    @Test("libzmq has CURVE")
    func hasCurve() {
        #expect(ZMQContext.hasCurve)
    }

    @Test("an authorized CURVE client completes a round trip")
    func authorized() throws {
        let clientKeys = try CurveKeyPair.generate()
        try server(authorized: [clientKeys.publicKey]) { context, router, endpoint, serverKeys, zap, log in
            let dealer = try client(context, endpoint, keys: clientKeys, serverKey: serverKeys.publicKey)
            defer { dealer.close() }
            let request = largeMessage(tag: 9)
            try dealer.send(request)
            let received = try #require(try receiveSoon(router))
            #expect(Array(received.dropFirst()) == request)
            try router.send(received)
            #expect(try receiveSoon(dealer) == request)
            #expect(zap.acceptedCount >= 1)
            #expect(zap.refusedCount == 0)
            #expect(log.all.isEmpty)
        }
    }

    @Test("an unauthorized key gets no reply and the refusal is logged with its public key")
    func unauthorized() throws {
        let allowed = try CurveKeyPair.generate()
        let intruder = try CurveKeyPair.generate()
        try server(authorized: [allowed.publicKey]) { context, router, endpoint, serverKeys, zap, log in
            let dealer = try client(context, endpoint, keys: intruder, serverKey: serverKeys.publicKey)
            defer { dealer.close() }
            try dealer.send([Array("let me in".utf8)])
            #expect(try dealer.receive(timeoutMs: 1_500) == nil)
            #expect(try router.tryReceive() == nil)
            #expect(zap.refusedCount >= 1)
            let lines = log.all
            #expect(lines.contains { $0.contains(intruder.publicKey) })
            #expect(!lines.contains { $0.contains(intruder.secretKey) || $0.contains(serverKeys.secretKey) })
        }
    }

    @Test("a plain (non-CURVE) client cannot talk to a CURVE server")
    func plainClient() throws {
        try server(authorized: []) { context, router, endpoint, _, zap, _ in
            let dealer = try client(context, endpoint, keys: nil, serverKey: "")
            defer { dealer.close() }
            try dealer.send([Array("hello".utf8)])
            #expect(try router.receive(timeoutMs: 1_500) == nil)
            #expect(try dealer.tryReceive() == nil)
            #expect(zap.acceptedCount == 0)
        }
    }

    @Test("a client that expects another server key never gets through")
    func wrongServerKey() throws {
        let clientKeys = try CurveKeyPair.generate()
        let impostor = try CurveKeyPair.generate()
        try server(authorized: [clientKeys.publicKey]) { context, router, endpoint, _, _, _ in
            let dealer = try client(context, endpoint, keys: clientKeys, serverKey: impostor.publicKey)
            defer { dealer.close() }
            try dealer.send([[1]])
            #expect(try router.receive(timeoutMs: 1_500) == nil)
        }
    }

    @Test("updated authorized keys apply to new handshakes")
    func updateKeys() throws {
        let late = try CurveKeyPair.generate()
        try server(authorized: []) { context, router, endpoint, serverKeys, zap, _ in
            zap.updateAuthorizedKeys(try AuthorizedKeys([late.publicKey]))
            let dealer = try client(context, endpoint, keys: late, serverKey: serverKeys.publicKey)
            defer { dealer.close() }
            try dealer.send([[7]])
            #expect(try receiveSoon(router)?.last == [7])
        }
    }

    @Test("the ZAP handler starts and stops cleanly, and a second one on the same context is refused")
    func zapLifecycle() throws {
        let context = try ZMQContext()
        defer { context.close() }
        let zap = try ZAPAuthenticator(context: context, authorizedKeys: try AuthorizedKeys([]), log: { _ in })
        #expect(throws: TransportError.self) {
            let second = try ZAPAuthenticator(context: context, authorizedKeys: try AuthorizedKeys([]), log: { _ in })
            second.stop()
        }
        zap.stop()
        zap.stop()   // idempotent
        // The endpoint is free again.
        let again = try ZAPAuthenticator(context: context, authorizedKeys: try AuthorizedKeys([]), log: { _ in })
        again.stop()
    }

    @Test("invalid CURVE keys are refused by set(), without echoing them")
    func invalidKeyOption() throws {
        let context = try ZMQContext()
        defer { context.close() }
        let s = try Socket(context: context, kind: .router)
        defer { s.close() }
        let bad = "not a key, contains spaces & is secret!!"   // 40 characters, not Z85
        do {
            try s.set(.curveServer(secretKey: bad))
            Issue.record("invalid key accepted")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(!error.description.contains(bad))
        }
    }
}
