import Foundation
import Tensors

// Standard (ReLU) SAE with the decoder-norm-weighted L1 penalty (Anthropic, "Towards
// Monosemanticity" / April 2024 update; SAELens "standard").
//
// Forward, per chunk of rows:
//   pre = x̃·W_enc + b_enc;  f = ReLU(pre);  x̂ = f·W_dec + b_dec
//   L = (1/B)·Σ_b ‖x̂_b − x_b‖² + (λ/B)·Σ_b Σ_j f_bj·‖W_dec,j‖
// Backward (G = 2(x̂ − x)/B, n_j = ‖W_dec,j‖):
//   ∂L/∂pre = (G·W_decᵀ + (λ/B)·n) ⊙ 1[pre > 0]                   d(f·n)/df = n
//   ∂L/∂W_dec,j = Σ_b f_bj·G_b + (λ/B)·(Σ_b f_bj)·W_dec,j/n_j     d‖w‖/dw = w/‖w‖
//   ∂L/∂W_enc = x̃ᵀ·∂pre;  ∂L/∂b_enc = Σ_b ∂pre_b;  ∂L/∂b_dec = Σ_b G_b − W_enc·∂b_enc
// Cost 10·B·d·m FLOPs: encode, decode, G·W_decᵀ, fᵀ·G, ∂preᵀ·x̃.

extension SAE {
    func reluLossAndGradients(_ batch: Tensor, _ grads: inout [Float], lambda λ: Float) -> StepStatistics {
        let d = config.dIn, m = config.dSAE, B = batch.rows
        let chunk = min(B, Self.denseRowChunk)
        var stats = StepStatistics()
        stats.rows = B
        stats.firingCounts = [Int64](repeating: 0, count: m)
        let norms = decoderRowNorms()
        var F = [Float](repeating: 0, count: chunk * m), DF = F
        var G = [Float](repeating: 0, count: chunk * d)
        var fSum = [Double](repeating: 0, count: m)
        var active = 0, l1 = 0.0
        let w = λ / Float(B)
        var l1Partial = [Double](repeating: 0, count: ProcessInfoCores.count)
        var counts = [Int64](repeating: 0, count: m)
        forEachDenseChunk(batch, &grads) { c, p, g in
            F.withUnsafeMutableBufferPointer { fb in DF.withUnsafeMutableBufferPointer { dfb in G.withUnsafeMutableBufferPointer { gb in
            fSum.withUnsafeMutableBufferPointer { fsb in counts.withUnsafeMutableBufferPointer { cb in
            l1Partial.withUnsafeMutableBufferPointer { lb in norms.withUnsafeBufferPointer { nb in
                let f = fb.baseAddress!, df = dfb.baseAddress!, G = gb.baseAddress!, n = c.rows
                let box = UncheckedSendable((f, df, fsb.baseAddress!, cb.baseAddress!, lb.baseAddress!, nb.baseAddress!,
                                             g + layout.b_enc.lowerBound))
                encode(c, p, bias: layout.b_enc, into: f)
                _ = parallelColumns(m) { cols, _ in
                    let f = box.value.0
                    for b in 0..<n { for j in cols { f[b * m + j] = max(f[b * m + j], 0) } }
                }
                stats.sumSquaredError += decodeResidual(c, p, f: f, batchRows: B, into: G)
                // df = G·W_decᵀ [n,m]
                sgemm(.none, .transposed, m: n, n: m, k: d, a: G, lda: d, b: p + layout.W_dec.lowerBound, ldb: d,
                      c: df, ldc: m)
                // ∂pre = (df + (λ/B)·‖W_dec,j‖)·1[f > 0]; per latent: Σf, firing count, ∂b_enc; Σ f·‖W_dec‖.
                _ = parallelColumns(m) { cols, worker in
                    let (f, df, fSum, counts, l1, norms, db_enc) = box.value
                    var l1w = 0.0
                    for b in 0..<n {
                        for j in cols {
                            let t = b * m + j, fv = f[t]
                            if fv > 0 {
                                l1w += Double(fv * norms[j]); fSum[j] += Double(fv); counts[j] += 1
                                df[t] += w * norms[j]; db_enc[j] += df[t]
                            } else { df[t] = 0 }
                        }
                    }
                    l1[worker] += l1w
                }
                accumulateWeightGradients(c, f: f, G: G, dpre: df, grads: g)
                addColumnSums(G, rows: n, n: d, into: g + layout.b_dec.lowerBound)
            } } } } } } }
        }
        l1 = l1Partial.reduce(0, +)
        stats.firingCounts = counts
        active = Int(counts.reduce(0, +))
        withPointers(params, &grads) { p, g in
            // L1 pull on the decoder norms: (λ/B)·Σ_b f_bj · W_dec,j/‖W_dec,j‖
            for j in 0..<m where fSum[j] > 0 && norms[j] > 0 {
                axpy(g + layout.W_dec.lowerBound + j * d, w * Float(fSum[j]) / norms[j], p + layout.W_dec.lowerBound + j * d, d)
            }
            subtractEncoderPullback(g + layout.b_enc.lowerBound, W_encT: p + layout.W_enc.lowerBound, m: m, d: d,
                                    into: g + layout.b_dec.lowerBound)
        }
        stats.mse = stats.sumSquaredError / Double(B)
        stats.sparsityLoss = Double(λ) * l1 / Double(B)
        stats.loss = stats.mse + stats.sparsityLoss
        stats.l0 = Double(active) / Double(B)
        return stats
    }

    /// ‖W_dec,j‖ for every latent [m].
    func decoderRowNorms() -> [Float] {
        let d = config.dIn
        return params.withUnsafeBufferPointer { p in
            let W = p.baseAddress! + layout.W_dec.lowerBound
            return (0..<config.dSAE).map { j in dot(W + j * d, W + j * d, d).squareRoot() }
        }
    }
}
