import Foundation
import Tensors

/// Causal (optionally windowed) multi-head attention over a KV cache, one (batch row, head) pair
/// per task. Scores and the weighted sum are sgemms over blocks of queries and only the keys
/// those queries can see.
///
///   q: [B, Tq, H·D]   queries at positions start ..< start+Tq (rotated, normed, scaled)
///   k, v: [B, capacity, Hkv·D]   keys/values for positions 0 ..< start+Tq
///   y: [B, Tq, H·D]   y_t = Σ_j softmax_j(q_t·k_j / √D) v_j over j ≤ t with t − j ≤ window
/// Query head h reads kv head h / (H / Hkv).
func attention(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
               y: UnsafeMutablePointer<Float>, batch: Int, queries tq: Int, start: Int, capacity: Int,
               heads: Int, kvHeads: Int, headDim d: Int, window: Int) {
    let qWidth = heads * d, kvWidth = kvHeads * d, group = heads / kvHeads
    let scale = 1 / Float(d).squareRoot()
    let block = 64
    let tasks = batch * heads
    let task = { (i: Int) in
        let b = i / heads, h = i % heads, kvh = h / group
        let qBase = q + b * tq * qWidth + h * d
        let kBase = k + b * capacity * kvWidth + kvh * d
        let vBase = v + b * capacity * kvWidth + kvh * d
        let yBase = y + b * tq * qWidth + h * d
        let maxKeys = min(start + tq, block + window)
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: min(block, tq) * maxKeys)
        defer { scores.deallocate() }
        var t0 = 0
        while t0 < tq {
            let t1 = min(tq, t0 + block), rows = t1 - t0
            // Absolute positions of this block's queries: p0 ..< p1; visible keys lo ..< p1.
            let p0 = start + t0, p1 = start + t1
            let lo = max(0, p0 - window), n = p1 - lo
            // scores[r, j] = (q_r · k_(lo+j)) / √D
            if rows == 1 {
                scores.update(repeating: 0, count: n)   // gemv's beta = 0 must not meet NaN garbage
                sgemv(.none, m: n, n: d, alpha: scale, a: kBase + lo * kvWidth, lda: kvWidth, x: qBase + t0 * qWidth, y: scores)
            } else {
                sgemm(.none, .transposed, m: rows, n: n, k: d, alpha: scale, a: qBase + t0 * qWidth, lda: qWidth,
                      b: kBase + lo * kvWidth, ldb: kvWidth, c: scores, ldc: n)
            }
            for r in 0..<rows {
                let p = p0 + r, row = scores + r * n
                let first = max(lo, p - window) - lo, last = p - lo   // visible: first...last
                var m = -Float.infinity
                for j in first...last { m = max(m, row[j]) }
                var s: Float = 0
                for j in first...last { let e = Foundation.exp(row[j] - m); row[j] = e; s += e }
                let inv = 1 / s
                for j in 0..<first { row[j] = 0 }
                for j in first...last { row[j] *= inv }
                for j in (last + 1)..<n { row[j] = 0 }
            }
            // y[r] = Σ_j P[r, j] v_(lo+j)
            if rows == 1 {
                (yBase + t0 * qWidth).update(repeating: 0, count: d)
                sgemv(.transposed, m: n, n: d, a: vBase + lo * kvWidth, lda: kvWidth, x: scores, y: yBase + t0 * qWidth)
            } else {
                sgemm(.none, .none, m: rows, n: d, k: n, a: scores, lda: n, b: vBase + lo * kvWidth, ldb: kvWidth,
                      c: yBase + t0 * qWidth, ldc: qWidth)
            }
            t0 = t1
        }
    }
    // Decoding steps are too small to pay for threads: run them here.
    let work = tasks * tq * min(start + tq, window + 1) * d
    if tasks > 1 && work >= 1 << 17 {
        // Tasks run side by side on the cores; each sgemm stays on its own thread.
        BLAS.withThreads(1) { parallelFor(tasks, task) }
    } else {
        for i in 0..<tasks { task(i) }
    }
}
