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

/// out[e] = y·x_e for `count` rows x_e of n: four rows at a time, so y is loaded once per four and
/// eight accumulator chains run side by side. Each row's sum is formed as in `dot` (same bits).
@inline(__always)
func dotRows(_ y: UnsafePointer<Float>, _ x: UnsafePointer<UnsafePointer<Float>>, count: Int, _ n: Int,
             into out: UnsafeMutablePointer<Float>) {
    typealias V = SIMD8<Float>
    let ry = UnsafeRawPointer(y)
    var e = 0
    while e + 4 <= count && n % 16 == 0 {
        let r0 = UnsafeRawPointer(x[e]), r1 = UnsafeRawPointer(x[e + 1])
        let r2 = UnsafeRawPointer(x[e + 2]), r3 = UnsafeRawPointer(x[e + 3])
        var a0 = V(), b0 = V(), a1 = V(), b1 = V(), a2 = V(), b2 = V(), a3 = V(), b3 = V()
        var i = 0
        while i < 4 * n {
            let y0 = ry.loadUnaligned(fromByteOffset: i, as: V.self), y1 = ry.loadUnaligned(fromByteOffset: i + 32, as: V.self)
            a0 += y0 * r0.loadUnaligned(fromByteOffset: i, as: V.self); b0 += y1 * r0.loadUnaligned(fromByteOffset: i + 32, as: V.self)
            a1 += y0 * r1.loadUnaligned(fromByteOffset: i, as: V.self); b1 += y1 * r1.loadUnaligned(fromByteOffset: i + 32, as: V.self)
            a2 += y0 * r2.loadUnaligned(fromByteOffset: i, as: V.self); b2 += y1 * r2.loadUnaligned(fromByteOffset: i + 32, as: V.self)
            a3 += y0 * r3.loadUnaligned(fromByteOffset: i, as: V.self); b3 += y1 * r3.loadUnaligned(fromByteOffset: i + 32, as: V.self)
            i += 64
        }
        out[e] = (a0 + b0).sum(); out[e + 1] = (a1 + b1).sum(); out[e + 2] = (a2 + b2).sum(); out[e + 3] = (a3 + b3).sum()
        e += 4
    }
    while e < count { out[e] = dot(y, x[e], n); e += 1 }
}

/// y += alpha·x
@inline(__always)
func axpy(_ y: UnsafeMutablePointer<Float>, _ alpha: Float, _ x: UnsafePointer<Float>, _ n: Int) {
    for i in 0..<n { y[i] += alpha * x[i] }
}

/// y += Σ_e a[e]·x_e and, given z, z += Σ_e c[e]·u_e, over `count` entries, each sum in entry order
/// (the same bits as one axpy per entry), 32 columns at a time: y and z are loaded and stored once
/// per segment, not once per entry.
@inline(__always)
func addWeightedRows(_ y: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ x: UnsafePointer<UnsafePointer<Float>>,
                     _ z: UnsafeMutablePointer<Float>?, _ c: UnsafePointer<Float>?, _ u: UnsafePointer<UnsafePointer<Float>>?,
                     count: Int, _ n: Int) {
    typealias V = SIMD8<Float>
    @inline(__always) func load(_ p: UnsafeRawPointer) -> (V, V, V, V) {
        (p.loadUnaligned(as: V.self), p.loadUnaligned(fromByteOffset: 32, as: V.self),
         p.loadUnaligned(fromByteOffset: 64, as: V.self), p.loadUnaligned(fromByteOffset: 96, as: V.self))
    }
    @inline(__always) func store(_ v: (V, V, V, V), _ p: UnsafeMutableRawPointer) {
        p.storeBytes(of: v.0, as: V.self); p.storeBytes(of: v.1, toByteOffset: 32, as: V.self)
        p.storeBytes(of: v.2, toByteOffset: 64, as: V.self); p.storeBytes(of: v.3, toByteOffset: 96, as: V.self)
    }
    var i = 0
    while i + 32 <= n {
        var ys = load(UnsafeRawPointer(y + i))
        var zs = z.map { load(UnsafeRawPointer($0 + i)) } ?? (V(), V(), V(), V())
        for e in 0..<count {
            let xs = load(UnsafeRawPointer(x[e] + i)), ae = a[e]
            ys.0 += ae * xs.0; ys.1 += ae * xs.1; ys.2 += ae * xs.2; ys.3 += ae * xs.3
            if let c, let u {
                let us = load(UnsafeRawPointer(u[e] + i)), ce = c[e]
                zs.0 += ce * us.0; zs.1 += ce * us.1; zs.2 += ce * us.2; zs.3 += ce * us.3
            }
        }
        store(ys, UnsafeMutableRawPointer(y + i))
        if let z { store(zs, UnsafeMutableRawPointer(z + i)) }
        i += 32
    }
    while i < n {
        var yi = y[i]
        for e in 0..<count { yi += a[e] * x[e][i] }
        y[i] = yi
        if let z, let c, let u {
            var zi = z[i]
            for e in 0..<count { zi += c[e] * u[e][i] }
            z[i] = zi
        }
        i += 1
    }
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
func withPointers<R>(_ params: ParameterBuffer, _ grads: inout [Float],
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
