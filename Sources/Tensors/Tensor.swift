/// A dense row-major Float32 tensor: a shape and one contiguous array of `shape.product` floats.
///
/// A value type (copy-on-write through the array). Kernels take raw pointers so that callers can
/// also point them into larger allocations (llm.c's one-allocation-with-views style); the
/// `Tensor` helpers are the convenient, checked entry points.
public struct Tensor: Equatable, Sendable {
    public var shape: [Int]
    public var storage: [Float]

    /// Zero-filled (or `value`-filled) tensor of the given shape.
    public init(shape: [Int], repeating value: Float = 0) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        self.shape = shape
        self.storage = [Float](repeating: value, count: shape.reduce(1, *))
    }

    /// Wraps `storage`, which must hold exactly `shape.product` elements.
    public init(shape: [Int], storage: [Float]) {
        precondition(shape.reduce(1, *) == storage.count,
                     "shape \(shape) needs \(shape.reduce(1, *)) elements, got \(storage.count)")
        self.shape = shape
        self.storage = storage
    }

    public var count: Int { storage.count }
    public var rank: Int { shape.count }

    /// Size of the last dimension (the row length of the row-major layout).
    public var columns: Int { shape.last ?? 1 }
    /// Product of all but the last dimension.
    public var rows: Int { shape.isEmpty ? 1 : shape.dropLast().reduce(1, *) }

    /// Element at a multi-index (checked; for tests and small lookups, not inner loops).
    public subscript(_ index: Int...) -> Float {
        get { storage[offset(index)] }
        set { storage[offset(index)] = newValue }
    }

    func offset(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "index \(index) for shape \(shape)")
        var o = 0
        for (i, n) in zip(index, shape) {
            precondition(i >= 0 && i < n, "index \(index) out of bounds for shape \(shape)")
            o = o * n + i
        }
        return o
    }

    /// The same elements under another shape of equal element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, storage: storage)
    }

    /// Row `i` of the tensor seen as [rows, columns].
    public func row(_ i: Int) -> ArraySlice<Float> {
        precondition(i >= 0 && i < rows, "row \(i) of \(rows)")
        return storage[i * columns ..< (i + 1) * columns]
    }

    /// Largest absolute element (0 for an empty tensor).
    public var maxAbs: Float { storage.reduce(0) { Swift.max($0, abs($1)) } }

    /// Largest |self − other| over all elements; the shapes must match.
    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(shape == other.shape, "shape \(shape) vs \(other.shape)")
        var m: Float = 0
        for i in 0..<count { m = Swift.max(m, abs(storage[i] - other.storage[i])) }
        return m
    }
}
