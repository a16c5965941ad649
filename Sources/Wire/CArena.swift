/// Owns the C memory a protobuf-c message points into while it is packed.
///
/// protobuf-c messages are trees of raw pointers (strings, sub-messages, arrays). Building one
/// from Swift values with nested `withUnsafe…` closures does not scale to a message with a
/// dozen strings, so every pointer is allocated here instead and freed when the
/// `CArena.with` closure returns: the same scoping rule as `withUnsafe…` (no pointer may
/// escape the closure), with one closure per message rather than one per field.
final class CArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    private init() {}

    /// Runs `body` with a fresh arena and frees everything it allocated afterwards.
    static func with<R>(_ body: (CArena) -> R) -> R {
        let arena = CArena()
        defer { arena.releaseAll() }
        return body(arena)
    }

    private func releaseAll() {
        for block in blocks { block.deallocate() }
        blocks.removeAll()
    }

    /// Zero-filled storage for `count` values of a C type.
    func allocate<T>(_: T.Type, count: Int = 1) -> UnsafeMutablePointer<T> {
        precondition(count >= 1, "CArena.allocate needs count >= 1, got \(count)")
        let bytes = MemoryLayout<T>.stride * count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: MemoryLayout<T>.alignment)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        blocks.append(raw)
        return raw.bindMemory(to: T.self, capacity: count)
    }

    /// A protobuf-c message struct, initialised by its generated `…__init` function.
    func message<T>(_ initialize: (UnsafeMutablePointer<T>) -> Void) -> UnsafeMutablePointer<T> {
        let p = allocate(T.self)
        initialize(p)
        return p
    }

    /// A NUL-terminated copy of `s` (an embedded NUL would end the C string early).
    func string(_ s: String) -> UnsafeMutablePointer<CChar> {
        let utf8 = s.utf8CString
        let p = allocate(CChar.self, count: utf8.count)
        utf8.withUnsafeBufferPointer { src in
            p.update(from: src.baseAddress!, count: src.count)
        }
        return p
    }

    /// A copy of `values` (nil when empty, as protobuf-c expects for `n_x == 0`).
    func array<T>(_ values: [T]) -> UnsafeMutablePointer<T>? {
        guard !values.isEmpty else { return nil }
        let p = allocate(T.self, count: values.count)
        values.withUnsafeBufferPointer { src in
            p.update(from: src.baseAddress!, count: src.count)
        }
        return p
    }
}
