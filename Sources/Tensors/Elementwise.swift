import Foundation

// Element-wise kernels. Each has a pointer form (for views into larger allocations and for inner
// loops) and a Tensor form. The loops are plain so the optimiser vectorises them.

public typealias FloatBuffer = UnsafeMutableBufferPointer<Float>
public typealias ConstFloatBuffer = UnsafeBufferPointer<Float>

// ----------------------------------------------------------------------------------------------
// Pointer forms

/// x += y
@inlinable public func add(_ x: FloatBuffer, _ y: ConstFloatBuffer) {
    precondition(x.count == y.count, "add: \(x.count) vs \(y.count) elements")
    for i in 0..<x.count { x[i] += y[i] }
}

/// x += alpha · y
@inlinable public func addScaled(_ x: FloatBuffer, _ y: ConstFloatBuffer, _ alpha: Float) {
    precondition(x.count == y.count, "addScaled: \(x.count) vs \(y.count) elements")
    for i in 0..<x.count { x[i] += alpha * y[i] }
}

/// x *= alpha
@inlinable public func scale(_ x: FloatBuffer, _ alpha: Float) {
    for i in 0..<x.count { x[i] *= alpha }
}

/// x *= y (element-wise)
@inlinable public func multiply(_ x: FloatBuffer, _ y: ConstFloatBuffer) {
    precondition(x.count == y.count, "multiply: \(x.count) vs \(y.count) elements")
    for i in 0..<x.count { x[i] *= y[i] }
}

/// The index of the first NaN or ±inf in x, or nil when every value is finite. x − x is 0 for a
/// finite x and NaN otherwise, so one vectorised pass decides, and only a failing buffer is searched.
public func firstNonFinite(_ x: ConstFloatBuffer) -> Int? {
    guard let base = x.baseAddress else { return nil }
    var acc = SIMD8<Float>(), i = 0
    let raw = UnsafeRawPointer(base)
    while i + 8 <= x.count {
        let v = raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
        acc += v - v; i += 8
    }
    var tail: Float = 0
    while i < x.count { tail += x[i] - x[i]; i += 1 }
    if acc.sum() + tail == 0 { return nil }
    return x.firstIndex { !$0.isFinite }
}

/// x = tanh(x)
@inlinable public func tanhInPlace(_ x: FloatBuffer) {
    for i in 0..<x.count { x[i] = Foundation.tanh(x[i]) }
}

/// x = σ(x) = 1 / (1 + e^(−x))
@inlinable public func sigmoidInPlace(_ x: FloatBuffer) {
    for i in 0..<x.count { x[i] = sigmoid(x[i]) }
}

/// x = max(x, 0)
@inlinable public func reluInPlace(_ x: FloatBuffer) {
    for i in 0..<x.count { x[i] = Swift.max(x[i], 0) }
}

/// x = max(x, 0)²   (nanochat's MLP activation)
@inlinable public func reluSquaredInPlace(_ x: FloatBuffer) {
    for i in 0..<x.count { let r = Swift.max(x[i], 0); x[i] = r * r }
}

/// σ(x), written to stay finite for large |x|.
@inlinable public func sigmoid(_ x: Float) -> Float {
    x >= 0 ? 1 / (1 + Foundation.exp(-x)) : { let e = Foundation.exp(x); return e / (1 + e) }()
}

// ----------------------------------------------------------------------------------------------
// Tensor forms

extension Tensor {
    /// Calls `body` with a mutable buffer over all elements.
    @inlinable public mutating func withBuffer<R>(_ body: (FloatBuffer) throws -> R) rethrows -> R {
        try storage.withUnsafeMutableBufferPointer { try body($0) }
    }

    /// Calls `body` with a read-only buffer over all elements.
    @inlinable public func withConstBuffer<R>(_ body: (ConstFloatBuffer) throws -> R) rethrows -> R {
        try storage.withUnsafeBufferPointer { try body($0) }
    }

    public static func += (x: inout Tensor, y: Tensor) {
        precondition(x.shape == y.shape, "+=: shape \(x.shape) vs \(y.shape)")
        y.withConstBuffer { yb in x.withBuffer { add($0, yb) } }
    }

    public static func *= (x: inout Tensor, alpha: Float) {
        x.withBuffer { scale($0, alpha) }
    }

    /// self += alpha · y
    public mutating func addScaled(_ y: Tensor, _ alpha: Float) {
        precondition(shape == y.shape, "addScaled: shape \(shape) vs \(y.shape)")
        y.withConstBuffer { yb in withBuffer { Tensors.addScaled($0, yb, alpha) } }
    }

    /// self *= y element-wise
    public mutating func multiply(_ y: Tensor) {
        precondition(shape == y.shape, "multiply: shape \(shape) vs \(y.shape)")
        y.withConstBuffer { yb in withBuffer { Tensors.multiply($0, yb) } }
    }

    public func tanh() -> Tensor { var t = self; t.withBuffer(tanhInPlace); return t }
    public func sigmoid() -> Tensor { var t = self; t.withBuffer(sigmoidInPlace); return t }
    public func relu() -> Tensor { var t = self; t.withBuffer(reluInPlace); return t }
    public func reluSquared() -> Tensor { var t = self; t.withBuffer(reluSquaredInPlace); return t }
}
