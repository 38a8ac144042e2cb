import Tensors

// Small internal kernels shared by the architectures. Plain loops so the optimiser vectorises them.

/// Runs body over [lo, hi) ranges that split 0..<n into about 4 chunks per core (one if n < grain).
@inline(__always)
func parallelRanges(_ n: Int, grain: Int = 64, _ body: (Range<Int>) -> Void) {
    if n <= 0 { return }
    let chunks = n < 2 * grain ? 1 : min((n + grain - 1) / grain, 4 * ProcessInfoCores.count)
    let per = (n + chunks - 1) / chunks
    parallelFor(chunks) { c in
        let lo = c * per, hi = min(n, lo + per)
        if lo < hi { body(lo ..< hi) }
    }
}

/// Σ_i a[i]·b[i], with explicit SIMD accumulators (LLVM will not reorder a float reduction itself).
@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    var i = 0
    while i + 16 <= n {
        acc0 += ra.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            * rb.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
        acc1 += ra.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD8<Float>.self)
            * rb.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD8<Float>.self)
        i += 16
    }
    var s = (acc0 + acc1).sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
}

/// y += alpha·x
@inline(__always)
func axpy(_ y: UnsafeMutablePointer<Float>, _ alpha: Float, _ x: UnsafePointer<Float>, _ n: Int) {
    for i in 0..<n { y[i] += alpha * x[i] }
}

/// Returns g·w and adds scale·g to y, in one pass over g.
@inline(__always)
func dotAndAxpy(_ g: UnsafePointer<Float>, _ w: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                scale: Float, _ n: Int) -> Float {
    var acc = SIMD8<Float>()
    let rg = UnsafeRawPointer(g), rw = UnsafeRawPointer(w), ry = UnsafeMutableRawPointer(y)
    var i = 0
    while i + 8 <= n {
        let gv = rg.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
        acc += gv * rw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
        let yv = ry.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
        ry.storeBytes(of: yv + scale * gv, toByteOffset: 4 * i, as: SIMD8<Float>.self)
        i += 8
    }
    var s = acc.sum()
    while i < n { s += g[i] * w[i]; y[i] += scale * g[i]; i += 1 }
    return s
}

/// out[b, :] = x[b, :] − v  for B rows of n (x̃ = x − b_dec).
func subtractRowVector(_ x: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                       rows: Int, n: Int) {
    let box = UncheckedSendable((x, v, out))
    parallelRanges(rows) { r in
        let (x, v, out) = box.value
        for b in r { for i in 0..<n { out[b * n + i] = x[b * n + i] - v[i] } }
    }
}

/// out[b, :] += v for B rows of n.
func addRowVector(_ x: UnsafeMutablePointer<Float>, _ v: UnsafePointer<Float>, rows: Int, n: Int) {
    let box = UncheckedSendable((x, v))
    parallelRanges(rows, grain: 16) { r in
        let (x, v) = box.value
        for b in r { for i in 0..<n { x[b * n + i] += v[i] } }
    }
}

/// out[j] += Σ_b x[b, j] (column sums of a [rows, n] matrix), serial in row order (deterministic).
func addColumnSums(_ x: UnsafePointer<Float>, rows: Int, n: Int, into out: UnsafeMutablePointer<Float>) {
    for b in 0..<rows { for j in 0..<n { out[j] += x[b * n + j] } }
}

/// b_dec gradient through x̃ = x − b_dec: −Σ_b dx̃_b = −Σ_b dpre_b·W_encᵀ... = −Σ_j (Σ_b dpre_bj)·W_enc,j.
/// So only the column sums of dpre (= db_enc or its analogue) are needed: O(m·d), not O(B·m·d).
func subtractEncoderPullback(_ dpreSum: UnsafePointer<Float>, W_encT: UnsafePointer<Float>, m: Int, d: Int,
                             into db_dec: UnsafeMutablePointer<Float>) {
    sgemm(.none, .none, m: 1, n: d, k: m, alpha: -1, a: dpreSum, lda: m, b: W_encT, ldb: d,
          beta: 1, c: db_dec, ldc: d)
}

/// Raw pointers to the parameter and gradient buffers for the duration of `body`.
func withPointers<R>(_ params: [Float], _ grads: inout [Float],
                     _ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> R) -> R {
    params.withUnsafeBufferPointer { p in
        grads.withUnsafeMutableBufferPointer { g in body(p.baseAddress!, g.baseAddress!) }
    }
}

/// x ← 0, the cores each taking a range.
func zeroInParallel(_ x: inout [Float]) {
    x.withUnsafeMutableBufferPointer { xb in
        let base = UncheckedSendable(xb.baseAddress!)
        parallelRanges(xb.count, grain: 1 << 16) { r in (base.value + r.lowerBound).update(repeating: 0, count: r.count) }
    }
}
