/// A fixed-size, 64-byte-aligned, zero-initialised array of scalars that owns its memory.
///
/// All numerical workspaces live in these buffers. The alignment is part of the determinism
/// contract: OpenBLAS picks its peeling and blocking from the address, so two processes
/// computing the same product must hand it equally aligned operands to get equal bits.
public final class AlignedBuffer<T: BLASScalar>: @unchecked Sendable {
    // @unchecked Sendable: the buffer is handed between threads only with ownership
    // (one thread uses it at a time); it has no internal synchronisation.

    /// Number of elements.
    public let count: Int
    /// Start of the storage. Valid for the lifetime of the buffer.
    public let pointer: UnsafeMutablePointer<T>

    /// Allocates `count` zeroed elements.
    public init(count: Int) {
        precondition(count >= 0, "AlignedBuffer: negative count \(count)")
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<T>.stride, alignment: 64)
        pointer = raw.bindMemory(to: T.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    /// Allocates a copy of `values`.
    public convenience init(_ values: [T]) {
        self.init(count: values.count)
        load(values)
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    /// Read-only view of the storage.
    public var constPointer: UnsafePointer<T> { UnsafePointer(pointer) }

    /// Element access (bounds-checked; not for hot loops).
    public subscript(i: Int) -> T {
        get { precondition(i >= 0 && i < count, "index \(i) out of 0..<\(count)"); return pointer[i] }
        set { precondition(i >= 0 && i < count, "index \(i) out of 0..<\(count)"); pointer[i] = newValue }
    }

    /// Copies `values` in; the sizes must match.
    public func load(_ values: [T]) {
        precondition(values.count == count, "AlignedBuffer.load: \(values.count) values into \(count)")
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: count) }
        }
    }

    /// Copies another buffer of the same size in.
    public func load(_ other: AlignedBuffer<T>) {
        precondition(other.count == count, "AlignedBuffer.load: \(other.count) values into \(count)")
        pointer.update(from: other.pointer, count: count)
    }

    /// Sets every element to zero.
    public func zero() { pointer.update(repeating: 0, count: count) }

    /// The contents as an array.
    public var array: [T] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    /// `true` when every element is finite.
    public var allFinite: Bool { Vec.allFinite(count, pointer) }
}
