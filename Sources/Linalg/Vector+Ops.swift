/// Small allocation-free vector kernels on caller-owned memory. Kept here so every module
/// uses the same loops (and the same rounding order).
public enum Vec {
    /// `y ← y + a·x`
    @inlinable
    public static func axpy<T: BLASScalar>(_ n: Int, _ a: T, _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>) {
        for i in 0..<n { y[i] += a * x[i] }
    }

    /// `Σ xᵢ·yᵢ`, accumulated in the element type, left to right.
    @inlinable
    public static func dot<T: BLASScalar>(_ n: Int, _ x: UnsafePointer<T>, _ y: UnsafePointer<T>) -> T {
        var s: T = 0
        for i in 0..<n { s += x[i] * y[i] }
        return s
    }

    /// `true` when every element is finite.
    @inlinable
    public static func allFinite<T: BLASScalar>(_ n: Int, _ x: UnsafePointer<T>) -> Bool {
        var ok = true
        for i in 0..<n where !x[i].isFinite { ok = false }
        return ok
    }
}

extension Array where Element: BLASScalar {
    /// `true` when every element is finite.
    public var allFinite: Bool {
        withUnsafeBufferPointer { b in b.baseAddress.map { Vec.allFinite(b.count, $0) } ?? true }
    }
}
