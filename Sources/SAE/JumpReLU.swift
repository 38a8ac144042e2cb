import Foundation
import Tensors

// JumpReLU SAE (Rajamanoharan et al. 2024, "Jumping Ahead"), as SAELens trains it.
//
// Forward, per chunk of rows (θ = exp(log θ)):
//   pre = x̃·W_enc + b_enc;  f = pre·H(pre − θ);  x̂ = f·W_dec + b_dec
//   L = (1/B)·Σ_b ‖x̂_b − x_b‖² + (λ/B)·Σ_b Σ_j H(pre_bj − θ_j)
// Backward (G = 2(x̂ − x)/B, df = G·W_decᵀ, K(u) = 1[|u| < 1/2] the rectangle kernel):
//   ∂L/∂pre = df ⊙ H(pre − θ)                       (H's own derivative in pre is taken as 0)
//   ∂L/∂θ_j = Σ_b [df_bj·(−θ_j/ε) + (λ/B)·(−1/ε)]·K((pre_bj − θ_j)/ε)   straight-through pseudo-gradients
//   ∂L/∂log θ_j = θ_j·∂L/∂θ_j;  W_enc, b_enc, W_dec, b_dec as in ReLU.swift (without the L1 terms).

extension SAE {
    func jumpreluLossAndGradients(_ batch: Tensor, _ grads: inout [Float], lambda λ: Float) -> StepStatistics {
        let d = config.dIn, m = config.dSAE, B = batch.rows
        let chunk = min(B, Self.denseRowChunk)
        var stats = StepStatistics()
        stats.rows = B
        stats.firingCounts = [Int64](repeating: 0, count: m)
        let θ = params[layout.log_threshold].map { Foundation.exp($0) }
        let ε = config.bandwidth, w = λ / Float(B)
        var PRE = [Float](repeating: 0, count: chunk * m), F = PRE, DF = PRE
        var G = [Float](repeating: 0, count: chunk * d)
        var active = 0
        var dθ = [Double](repeating: 0, count: m)
        var counts = [Int64](repeating: 0, count: m)
        forEachDenseChunk(batch, &grads) { c, p, g in
            PRE.withUnsafeMutableBufferPointer { pb in F.withUnsafeMutableBufferPointer { fb in
            DF.withUnsafeMutableBufferPointer { dfb in G.withUnsafeMutableBufferPointer { gb in
            dθ.withUnsafeMutableBufferPointer { tb in counts.withUnsafeMutableBufferPointer { cb in θ.withUnsafeBufferPointer { θb in
                let pre = pb.baseAddress!, f = fb.baseAddress!, df = dfb.baseAddress!, G = gb.baseAddress!, n = c.rows
                let box = UncheckedSendable((pre, f, df, tb.baseAddress!, cb.baseAddress!, θb.baseAddress!,
                                             g + layout.b_enc.lowerBound))
                encode(c, p, bias: layout.b_enc, into: pre)
                _ = parallelColumns(m) { cols, _ in
                    let (pre, f, _, _, _, θ, _) = box.value
                    for b in 0..<n { for j in cols { let t = b * m + j; f[t] = pre[t] > θ[j] ? pre[t] : 0 } }
                }
                stats.sumSquaredError += decodeResidual(c, p, f: f, batchRows: B, into: G)
                sgemm(.none, .transposed, m: n, n: m, k: d, a: G, lda: d, b: p + layout.W_dec.lowerBound, ldb: d,
                      c: df, ldc: m)
                _ = parallelColumns(m) { cols, _ in
                    let (pre, f, df, dθ, counts, θ, db_enc) = box.value
                    for b in 0..<n {
                        for j in cols {
                            let t = b * m + j
                            if abs(pre[t] - θ[j]) < ε / 2 {
                                dθ[j] += Double(df[t] * (-θ[j] / ε) + w * (-1 / ε))
                            }
                            if f[t] == 0 { df[t] = 0 } else { counts[j] += 1; db_enc[j] += df[t] }
                        }
                    }
                }
                accumulateWeightGradients(c, f: f, G: G, dpre: df, grads: g)
                addColumnSums(G, rows: n, n: d, into: g + layout.b_dec.lowerBound)
            } } } } } } }
        }
        stats.firingCounts = counts
        active = Int(counts.reduce(0, +))
        withPointers(params, &grads) { p, g in
            for j in 0..<m { g[layout.log_threshold.lowerBound + j] = θ[j] * Float(dθ[j]) }
            subtractEncoderPullback(g + layout.b_enc.lowerBound, W_encT: p + layout.W_enc.lowerBound, m: m, d: d,
                                    into: g + layout.b_dec.lowerBound)
        }
        // Counting pre > θ rows (f ≠ 0) is L0; f = pre > θ > 0 so f > 0 is the same test.
        stats.mse = stats.sumSquaredError / Double(B)
        stats.l0 = Double(active) / Double(B)
        stats.sparsityLoss = Double(λ) * stats.l0
        stats.loss = stats.mse + stats.sparsityLoss
        return stats
    }
}
