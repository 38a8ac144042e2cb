import Foundation
import Tensors

// Gated SAE (Rajamanoharan et al. 2024, "Improving Dictionary Learning with Gated SAEs").
//
// Forward, per chunk of rows (z = x̃·W_enc, shared by both paths):
//   π_g = z + b_gate;  π_m = z ⊙ exp(r_mag) + b_mag;  f = 1[π_g > 0]·ReLU(π_m);  x̂ = f·W_dec + b_dec
//   a = ReLU(π_g);  x̂_g = a·W_dec' + b_dec'   (W_dec', b_dec' frozen copies: no gradient into them)
//   L = (1/B)·Σ‖x̂ − x‖² + (λ/B)·Σ a + (1/B)·Σ‖x̂_g − x‖²
// Backward (G = 2(x̂ − x)/B, G₂ = 2(x̂_g − x)/B):
//   ∂π_m = (G·W_decᵀ) ⊙ 1[π_g > 0] ⊙ 1[π_m > 0]          (the gate's step passes no gradient)
//   ∂π_g = (G₂·W_decᵀ + λ/B) ⊙ 1[π_g > 0]
//   ∂z = ∂π_g + ∂π_m ⊙ exp(r_mag);  ∂r_mag_j = Σ_b ∂π_m,bj·z_bj·exp(r_mag_j)
//   ∂W_dec = fᵀ·G only;  ∂W_enc = x̃ᵀ·∂z;  ∂b_gate = Σ∂π_g;  ∂b_mag = Σ∂π_m;  ∂b_dec = ΣG − W_enc·Σ_b ∂z_b

extension SAE {
    func gatedLossAndGradients(_ batch: Tensor, _ grads: inout [Float], lambda λ: Float) -> StepStatistics {
        let d = config.dIn, m = config.dSAE, B = batch.rows
        let chunk = min(B, Self.denseRowChunk)
        var stats = StepStatistics()
        stats.rows = B
        stats.firingCounts = [Int64](repeating: 0, count: m)
        let L = layout
        let expR = params[L.r_mag].map { Foundation.exp($0) }
        let bGate = Array(params[L.b_gate]), bMag = Array(params[L.b_mag])
        let w = λ / Float(B)
        var Z = [Float](repeating: 0, count: chunk * m), F = Z, A = Z
        var DF = [Float](repeating: 0, count: 2 * chunk * m)          // [G; G₂]·W_decᵀ  [2n, m]
        var GG = [Float](repeating: 0, count: 2 * chunk * d)          // [G; G₂]          [2n, d]
        var dz = [Float](repeating: 0, count: chunk * m)
        var active = 0, l1 = 0.0, auxSSE = 0.0
        var dPiG = [Double](repeating: 0, count: m), dPiM = dPiG, dR = dPiG, dzSum = [Float](repeating: 0, count: m)
        var counts = [Int64](repeating: 0, count: m)
        var l1Partial = [Double](repeating: 0, count: ProcessInfoCores.count)
        forEachDenseChunk(batch, &grads) { c, p, g in
            Z.withUnsafeMutableBufferPointer { zb in F.withUnsafeMutableBufferPointer { fb in A.withUnsafeMutableBufferPointer { ab in
            DF.withUnsafeMutableBufferPointer { dfb in GG.withUnsafeMutableBufferPointer { gb in dz.withUnsafeMutableBufferPointer { dzb in
            dPiG.withUnsafeMutableBufferPointer { pgb in dPiM.withUnsafeMutableBufferPointer { pmb in dR.withUnsafeMutableBufferPointer { rb in
            dzSum.withUnsafeMutableBufferPointer { zsb in counts.withUnsafeMutableBufferPointer { cb in l1Partial.withUnsafeMutableBufferPointer { lb in
                let z = zb.baseAddress!, f = fb.baseAddress!, a = ab.baseAddress!, df = dfb.baseAddress!
                let n = c.rows
                let G = gb.baseAddress!, G2 = G + n * d, dz = dzb.baseAddress!
                let box = UncheckedSendable((z, f, a, df, dz, pgb.baseAddress!, pmb.baseAddress!, rb.baseAddress!,
                                             zsb.baseAddress!, cb.baseAddress!, lb.baseAddress!))
                encode(c, p, bias: nil, into: z)
                _ = parallelColumns(m) { cols, worker in
                    let (z, f, a, _, _, _, _, _, _, _, l1) = box.value
                    var s = 0.0
                    for b in 0..<n {
                        for j in cols {
                            let t = b * m + j
                            let pg = z[t] + bGate[j], pm = z[t] * expR[j] + bMag[j]
                            a[t] = max(pg, 0)
                            f[t] = pg > 0 ? max(pm, 0) : 0
                            s += Double(a[t])
                        }
                    }
                    l1[worker] += s
                }
                stats.sumSquaredError += decodeResidual(c, p, f: f, batchRows: B, into: G)
                auxSSE += decodeResidual(c, p, f: a, batchRows: B, into: G2)
                // [G; G₂]·W_decᵀ in one product: [2n, m]
                sgemm(.none, .transposed, m: 2 * n, n: m, k: d, a: G, lda: d, b: p + L.W_dec.lowerBound, ldb: d,
                      c: df, ldc: m)
                _ = parallelColumns(m) { cols, _ in
                    let (z, f, _, df, dz, dPiG, dPiM, dR, dzSum, counts, _) = box.value
                    for b in 0..<n {
                        for j in cols {
                            let t = b * m + j
                            let gateOpen = z[t] + bGate[j] > 0
                            let dpm: Float = gateOpen && f[t] > 0 ? df[t] : 0
                            let dpg: Float = gateOpen ? df[n * m + t] + w : 0
                            dz[t] = dpg + dpm * expR[j]
                            dPiG[j] += Double(dpg); dPiM[j] += Double(dpm)
                            dR[j] += Double(dpm * z[t] * expR[j])
                            dzSum[j] += dz[t]
                            if f[t] > 0 { counts[j] += 1 }
                        }
                    }
                }
                accumulateWeightGradients(c, f: f, G: G, dpre: dz, grads: g)
                addColumnSums(G, rows: n, n: d, into: g + L.b_dec.lowerBound)
            } } } } } } } } } } } }
        }
        l1 = l1Partial.reduce(0, +)
        stats.firingCounts = counts
        active = Int(counts.reduce(0, +))
        withPointers(params, &grads) { p, g in
            for j in 0..<m {
                g[L.b_gate.lowerBound + j] = Float(dPiG[j])
                g[L.b_mag.lowerBound + j] = Float(dPiM[j])
                g[L.r_mag.lowerBound + j] = Float(dR[j])
            }
            dzSum.withUnsafeBufferPointer { s in
                subtractEncoderPullback(s.baseAddress!, W_encT: p + L.W_enc.lowerBound, m: m, d: d, into: g + L.b_dec.lowerBound)
            }
        }
        stats.mse = stats.sumSquaredError / Double(B)
        stats.sparsityLoss = Double(λ) * l1 / Double(B)
        stats.auxLoss = auxSSE / Double(B)
        stats.loss = stats.mse + stats.sparsityLoss + stats.auxLoss
        stats.l0 = Double(active) / Double(B)
        return stats
    }
}
