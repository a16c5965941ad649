import Testing
import Wire
import TestSupport

/// Decoding untrusted bytes must never trap: everything is either a WireError or a message
/// that re-encodes stably. (Typed throws guarantee that anything thrown is a WireError.)
@Suite struct WireFuzzTests {
    /// Decodes `frames`; returns true when it was refused. A success must be self-consistent.
    private func refused(_ frames: [[UInt8]]) -> Bool {
        do {
            let m = try WireCodec.decode(frames)
            let again = WireCodec.encode(m)
            #expect(WireCodec.encode(try WireCodec.decode(again)) == again)
            return false
        } catch {
            #expect(!error.description.isEmpty)
            return true
        }
    }

    @Test("4,000 random multi-frame inputs are refused without crashing")
    func randomBytes() {
        var rng = SplitMix64(seed: 0xF022)
        var refusals = 0
        let n = 4_000
        for _ in 0..<n {
            let frameCount = Int.random(in: 1...4, using: &rng)
            let frames = (0..<frameCount).map { _ in
                (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            }
            if refused(frames) { refusals += 1 }
        }
        // Random bytes can, very rarely, be a valid envelope; practically all are refused.
        #expect(refusals >= n * 99 / 100)
    }

    @Test("4,000 mutations of valid messages never crash the decoder")
    func mutations() {
        var rng = SplitMix64(seed: 0xB17F)
        let seeds = Samples.messages.map(WireCodec.encode)
        var refusals = 0
        for i in 0..<4_000 {
            var frames = seeds[i % seeds.count]
            let mutation = Int.random(in: 0..<9, using: &rng)
            switch mutation {
            case 0:  // flip a few bytes of the envelope
                for _ in 0..<Int.random(in: 1...4, using: &rng) where !frames[0].isEmpty {
                    frames[0][Int.random(in: 0..<frames[0].count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                }
            case 1:  // truncate the envelope
                frames[0] = Array(frames[0].prefix(Int.random(in: 0..<frames[0].count, using: &rng)))
            case 2:  // append junk to the envelope
                frames[0] += (0..<Int.random(in: 1...20, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 3:  // insert a byte in the envelope
                frames[0].insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...frames[0].count, using: &rng))
            case 4:  // a tensor frame of odd / wrong length
                if frames.count > 1 {
                    let k = Int.random(in: 1..<frames.count, using: &rng)
                    if Bool.random(using: &rng) || frames[k].isEmpty { frames[k].append(0x7F) } else { frames[k].removeLast() }
                }
            case 5:  // drop a frame
                if frames.count > 1 { frames.remove(at: Int.random(in: 1..<frames.count, using: &rng)) } else { frames.append([1, 2, 3, 4]) }
            case 6:  // duplicate a frame
                frames.append(frames[Int.random(in: 0..<frames.count, using: &rng)])
            case 7:  // replace the envelope with another message's envelope
                frames[0] = seeds[Int.random(in: 0..<seeds.count, using: &rng)][0]
            default:  // random bytes in a tensor frame: must still decode (any bits are a valid float)
                if frames.count > 1 {
                    let k = Int.random(in: 1..<frames.count, using: &rng)
                    for j in frames[k].indices { frames[k][j] = UInt8.random(in: 0...255, using: &rng) }
                }
            }
            if refused(frames) { refusals += 1 }
        }
        #expect(refusals > 0)
    }

    @Test("peekHeader on random bytes never crashes and agrees with a full decode whenever that succeeds")
    func peekRandom() {
        var rng = SplitMix64(seed: 7)
        var decoded = 0
        for _ in 0..<2_000 {
            let frame = (0..<Int.random(in: 0...100, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let header = WireCodec.peekHeader([frame])
            if let message = try? WireCodec.decode([frame]) {
                decoded += 1
                #expect(header?.senderID == message.senderID && header?.sequence == message.sequence, "\(frame)")
            }
        }
        // A valid message's header is found, and random bytes rarely make one.
        let valid = WireCodec.encode(Message(senderID: "w1", sequence: 9, body: .workRequest))
        #expect(WireCodec.peekHeader(valid)?.sequence == 9)
        #expect(decoded < 100)
    }
}
