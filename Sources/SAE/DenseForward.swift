import Tensors

// Shared plumbing of the dense architectures (relu, gated, jumprelu): rows are processed in chunks
// so the [rows, m] activation buffers stay bounded; weight gradients accumulate across chunks
// through sgemm's beta = 1.

/// Buffers and views for one chunk of rows.
struct DenseChunk {
    /// First row of the chunk in the batch, and its number of rows.
    var first: Int
    var rows: Int
    /// x_c [n,d] (the raw input rows) and x̃_c = x_c − b_dec [n,d].
    var x: UnsafePointer<Float>
    var xt: UnsafeMutablePointer<Float>
}

extension SAE {
    /// Rows per chunk of the dense architectures.
    static var denseRowChunk: Int { 256 }

    /// Calls `body` for each chunk of rows with x̃ filled in. p = params, g = grads (zeroed first).
    func forEachDenseChunk(_ batch: Tensor, _ grads: inout [Float],
                           _ body: (DenseChunk, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        let d = config.dIn, B = batch.rows
        let chunk = min(B, Self.denseRowChunk)
        var xt = [Float](repeating: 0, count: chunk * d)
        zeroInParallel(&grads)
        withPointers(params, &grads) { p, g in
            batch.withConstBuffer { xb in xt.withUnsafeMutableBufferPointer { xtb in
                var c0 = 0
                while c0 < B {
                    let n = min(chunk, B - c0)
                    let x = xb.baseAddress! + c0 * d
                    subtractRowVector(x, p + layout.b_dec.lowerBound, xtb.baseAddress!, rows: n, n: d)
                    body(DenseChunk(first: c0, rows: n, x: x, xt: xtb.baseAddress!), p, g)
                    c0 += n
                }
            } }
        }
    }

    /// out[n,m] = x̃_c·W_enc (+ bias if given).
    func encode(_ c: DenseChunk, _ p: UnsafePointer<Float>, bias: Range<Int>?, into out: UnsafeMutablePointer<Float>) {
        let d = config.dIn, m = config.dSAE
        sgemm(.none, .transposed, m: c.rows, n: m, k: d, a: c.xt, lda: d, b: p + layout.W_enc.lowerBound, ldb: d,
              c: out, ldc: m)
        if let bias { addRowVector(out, p + bias.lowerBound, rows: c.rows, n: m) }
    }

    /// G[n,d] = 2(f·W_dec + b_dec − x)/B for the chunk; returns Σ‖x̂ − x‖² over its rows.
    func decodeResidual(_ c: DenseChunk, _ p: UnsafePointer<Float>, f: UnsafePointer<Float>, batchRows B: Int,
                        into G: UnsafeMutablePointer<Float>) -> Double {
        let d = config.dIn, m = config.dSAE
        sgemm(.none, .none, m: c.rows, n: d, k: m, a: f, lda: m, b: p + layout.W_dec.lowerBound, ldb: d, c: G, ldc: d)
        var sse = 0.0
        let b_dec = p + layout.b_dec.lowerBound, scale = 2 / Float(B)
        for b in 0..<c.rows {
            for i in 0..<d {
                let e = G[b * d + i] + b_dec[i] - c.x[b * d + i]
                sse += Double(e * e); G[b * d + i] = scale * e
            }
        }
        return sse
    }

    /// ∂W_dec += fᵀ·G and ∂W_enc += dpreᵀ·x̃ for the chunk (both [m,d], accumulating).
    func accumulateWeightGradients(_ c: DenseChunk, f: UnsafePointer<Float>, G: UnsafePointer<Float>,
                                   dpre: UnsafePointer<Float>, grads g: UnsafeMutablePointer<Float>) {
        let d = config.dIn, m = config.dSAE
        sgemm(.transposed, .none, m: m, n: d, k: c.rows, a: f, lda: m, b: G, ldb: d, beta: 1,
              c: g + layout.W_dec.lowerBound, ldc: d)
        sgemm(.transposed, .none, m: m, n: d, k: c.rows, a: dpre, lda: m, b: c.xt, ldb: d, beta: 1,
              c: g + layout.W_enc.lowerBound, ldc: d)
    }
}

/// Splits the m latent columns of [rows, m] matrices into one range per core and runs
/// body(columns, worker) for each in parallel: every worker owns its latents' accumulators, so
/// per-latent sums need no locks and rows are still read in contiguous segments. Returns after all.
func parallelColumns(_ m: Int, _ body: (Range<Int>, Int) -> Void) -> Int {
    let workers = max(1, min(ProcessInfoCores.count, m / 64))
    let per = (m + workers - 1) / workers
    parallelFor(workers) { w in
        let lo = w * per, hi = min(m, lo + per)
        if lo < hi { body(lo ..< hi, w) }
    }
    return workers
}
