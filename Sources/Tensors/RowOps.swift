import Foundation

// Row-wise kernels over a [rows, n] row-major buffer.

/// x[r, :] += v for every row r (broadcast a bias of n elements).
@inlinable public func addRowVector(_ x: FloatBuffer, _ v: ConstFloatBuffer) {
    let n = v.count
    precondition(n > 0 && x.count % n == 0, "addRowVector: \(x.count) elements in rows of \(n)")
    for r in 0..<(x.count / n) {
        let row = x.baseAddress! + r * n
        for j in 0..<n { row[j] += v[j] }
    }
}

/// Root-mean-square norm without weights, as nanochat's `norm`:
///   y = x / sqrt(mean(x²) + eps)          per row of n elements.
/// `y` may alias `x`. eps defaults to Float32 machine epsilon (torch's F.rms_norm default).
@inlinable public func rmsnormRows(_ x: ConstFloatBuffer, _ y: FloatBuffer, n: Int,
                                   eps: Float = Float.ulpOfOne) {
    precondition(n > 0 && x.count % n == 0 && y.count == x.count,
                 "rmsnormRows: \(x.count) → \(y.count) elements in rows of \(n)")
    for r in 0..<(x.count / n) {
        let xr = x.baseAddress! + r * n, yr = y.baseAddress! + r * n
        var ss: Float = 0
        for j in 0..<n { ss += xr[j] * xr[j] }
        let inv = 1 / (ss / Float(n) + eps).squareRoot()
        for j in 0..<n { yr[j] = xr[j] * inv }
    }
}

/// Numerically stable softmax of each row of n elements, in place:
///   y_j = exp(x_j − max x) / Σ_i exp(x_i − max x)
@inlinable public func softmaxRows(_ x: FloatBuffer, n: Int) {
    precondition(n > 0 && x.count % n == 0, "softmaxRows: \(x.count) elements in rows of \(n)")
    for r in 0..<(x.count / n) {
        let row = x.baseAddress! + r * n
        var m = -Float.infinity
        for j in 0..<n { m = Swift.max(m, row[j]) }
        var s: Float = 0
        for j in 0..<n { let e = Foundation.exp(row[j] - m); row[j] = e; s += e }
        let inv = 1 / s
        for j in 0..<n { row[j] *= inv }
    }
}

extension Tensor {
    /// nanochat's `norm` over the last dimension.
    public func rmsnorm(eps: Float = Float.ulpOfOne) -> Tensor {
        var y = Tensor(shape: shape)
        let n = columns
        withConstBuffer { xb in y.withBuffer { rmsnormRows(xb, $0, n: n, eps: eps) } }
        return y
    }

    /// Softmax over the last dimension.
    public func softmax() -> Tensor {
        var y = self
        let n = columns
        y.withBuffer { softmaxRows($0, n: n) }
        return y
    }

    /// Adds a vector of `columns` elements to every row.
    public mutating func addRowVector(_ v: Tensor) {
        precondition(v.count == columns, "addRowVector: \(v.count) elements for rows of \(columns)")
        v.withConstBuffer { vb in withBuffer { Tensors.addRowVector($0, vb) } }
    }
}
