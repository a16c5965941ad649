import Foundation
import Testing
@testable import Transport

@Suite struct ZeroCopyTests {
    private static func floats(_ n: Int, seed: UInt32) -> [Float] {
        (0..<n).map { Float(bitPattern: UInt32(truncatingIfNeeded: $0) &* 2_654_435_761 ^ seed) }
    }

    @Test("zero-copy frames arrive intact over tcp, ipc and inproc, read in place on the receiving side",
          arguments: ["tcp://127.0.0.1:*", "ipc", "inproc://zero-copy-test"])
    func roundTrip(_ endpoint: String) throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try withRouterDealer(endpoint == "ipc" ? "ipc://\(dir.file("s"))" : endpoint) { router, dealer, _ in
            let phi = Self.floats(165_000, seed: 7)
            let small: [Int32] = [1, -2, 3]
            try dealer.send(frames: [OutgoingFrame([1, 2, 3]), OutgoingFrame(elements: phi), OutgoingFrame(elements: small),
                                     OutgoingFrame([])])
            let got = try #require(try router.receiveFrames(timeoutMs: 10_000))
            #expect(got.count == 5)   // routing id first
            #expect(got[1].bytes == [1, 2, 3])
            #expect(got[2].count == phi.count * 4)
            #expect(got[2].bytes == phi.withUnsafeBytes { Array($0) })
            #expect(got[3].bytes == small.withUnsafeBytes { Array($0) })
            #expect(got[4].count == 0 && got[4].bytes.isEmpty)

            // Back the other way, through the copying API.
            try router.send(frames: [OutgoingFrame(got[0].bytes), OutgoingFrame(elements: phi)])
            let back = try #require(try dealer.receive(timeoutMs: 10_000))
            #expect(back == [phi.withUnsafeBytes { Array($0) }])
        }
    }

    @Test("a zero-copy frame's storage stays alive until the receiver drops the message, then is released")
    func storageLivesUntilFreed() throws {
        let context = try ZMQContext()
        defer { context.close() }
        let a = try Socket(context: context, kind: .pair)
        defer { a.close() }
        let b = try Socket(context: context, kind: .pair)
        defer { b.close() }
        try a.set(.linger(milliseconds: 0))
        try b.set(.linger(milliseconds: 0))
        try a.bind("inproc://keeper-lifetime")
        try b.connect("inproc://keeper-lifetime")

        let phi = Self.floats(50_000, seed: 3)
        weak var keeper: ArrayKeeper?
        do {
            let frame = OutgoingFrame(elements: phi)
            guard case .shared(let k) = frame.storage else { Issue.record("a 200 KB frame should be zero-copy"); return }
            keeper = k
            try a.send(frames: [frame])
        }
        // inproc passes libzmq's message itself: the queued message holds the storage.
        #expect(keeper != nil)
        var received = try b.receiveFrames(timeoutMs: 10_000)
        #expect(keeper != nil)
        #expect(received?.first?.bytes == phi.withUnsafeBytes { Array($0) })
        received = nil
        #expect(keeper == nil, "libzmq's free callback released the storage")
    }

    @Test("a zero-copy send that cannot be queued releases its storage at once")
    func refusedSendReleases() throws {
        let context = try ZMQContext()
        defer { context.close() }
        let dealer = try Socket(context: context, kind: .dealer)   // connected to nothing: every send would block
        defer { dealer.close() }
        try dealer.set(.linger(milliseconds: 0))
        weak var keeper: ArrayKeeper?
        do {
            let frame = OutgoingFrame(elements: Self.floats(50_000, seed: 5))
            guard case .shared(let k) = frame.storage else { Issue.record("a 200 KB frame should be zero-copy"); return }
            keeper = k
            #expect(try dealer.trySend(frames: [frame, frame]) == false)
        }
        #expect(keeper == nil)
    }

    @Test("small frames are copied, large ones shared")
    func threshold() {
        guard case .copy = OutgoingFrame([UInt8](repeating: 1, count: OutgoingFrame.zeroCopyThreshold - 1)).storage else {
            Issue.record("small frame not copied"); return
        }
        guard case .shared = OutgoingFrame([UInt8](repeating: 1, count: OutgoingFrame.zeroCopyThreshold)).storage else {
            Issue.record("large frame not shared"); return
        }
        #expect(OutgoingFrame(elements: [Float](repeating: 0, count: 10)).count == 40)
    }
}
