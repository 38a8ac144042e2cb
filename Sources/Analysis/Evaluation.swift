import Distributed
import Foundation
import Nanochat
import SAE
import Tensors

// sae-eval's metrics (DESIGN 4), defined as SAELens defines them so numbers are comparable:
//   FVU = Σ‖x − x̂‖² / Σ‖x − mean(x)‖²,  explained variance = 1 − FVU,  MSE = mean ‖x − x̂‖²,
//   L0 = mean #{f > 0},  L1 = mean Σ f,  dead = never fired,  dense = fires on > 10% of tokens,
//   CE clean / with x̂ spliced in at the hook / with the hook zero-ablated,
//   CE-loss recovered = (CE_zero − CE_sae) / (CE_zero − CE_clean),  KL(clean ‖ spliced) per token.
// SAE metrics leave BOS positions out, and the splice and ablation leave BOS alone, as in training.
// Everything is accumulated as sums (Double) so that ranks combine them with one allreduce.

/// Rows of token ids to evaluate, with the target of every position (next token).
public struct EvaluationRows: Sendable {
    public var tokens: [[Int]]
    public var targets: [[Int]]
    public init(tokens: [[Int]], targets: [[Int]]) { self.tokens = tokens; self.targets = targets }
}

/// Sums over evaluated tokens; `values` is what ranks allreduce.
public struct EvaluationSums {
    // Indices into `values`.
    enum I: Int, CaseIterable {
        case saeTokens, sse, sumSquares, l0, l1, ceTokens, ceClean, ceSAE, ceZero, kl
    }
    public var values = [Double](repeating: 0, count: I.allCases.count)
    public var sumX: [Double]            // per dimension, for the mean
    public var firing: [Double]          // per latent: tokens it fired on

    init(d: Int, m: Int) {
        sumX = [Double](repeating: 0, count: d)
        firing = [Double](repeating: 0, count: m)
    }

    subscript(_ i: I) -> Double {
        get { values[i.rawValue] }
        set { values[i.rawValue] = newValue }
    }

    /// Adds every rank's sums (all ranks call it).
    mutating func combine(_ comm: Communicator) {
        comm.allreduce(&values, .sum)
        comm.allreduce(&sumX, .sum)
        comm.allreduce(&firing, .sum)
    }

    /// The metrics, as DESIGN's `sae-eval --json` keys.
    public var metrics: [String: Double] {
        let n = self[.saeTokens], t = self[.ceTokens]
        let meanNorm2 = sumX.reduce(0) { $0 + $1 * $1 } / max(n, 1)
        let variance = self[.sumSquares] - meanNorm2           // Σ‖x − mean‖² = Σ‖x‖² − n‖mean‖²
        let fvu = variance > 0 ? self[.sse] / variance : 0
        let clean = self[.ceClean] / t, sae = self[.ceSAE] / t, zero = self[.ceZero] / t
        return [
            "fvu": fvu, "explained_variance": 1 - fvu, "mse": self[.sse] / n, "l0": self[.l0] / n, "l1": self[.l1] / n,
            "dead_fraction": Double(firing.filter { $0 == 0 }.count) / Double(firing.count),
            "dense_fraction": Double(firing.filter { $0 > 0.1 * n }.count) / Double(firing.count),
            "ce_clean": clean, "ce_sae": sae, "ce_zero": zero,
            "ce_loss_recovered": zero != clean ? (zero - sae) / (zero - clean) : 0,
            "kl": self[.kl] / t, "tokens": n,
        ]
    }
}

/// Evaluates `sae` at `hook` of `model` on this rank's `rows` (each rank passes its own share),
/// combines the sums over `comm` and returns the metrics (the same on every rank).
public func evaluateSAE(_ sae: SAE, hook: HookPoint, model: NanochatModel, rows: EvaluationRows, bos: Int,
                        comm: Communicator, rowsPerPass: Int = 8) throws -> [String: Double] {
    let d = sae.config.dIn, m = sae.config.dSAE, V = model.config.vocabSize
    var sums = EvaluationSums(d: d, m: m)
    for start in stride(from: 0, to: rows.tokens.count, by: rowsPerPass) {
        let batch = Array(rows.tokens[start ..< min(rows.tokens.count, start + rowsPerPass)])
        let targets = Array(rows.targets[start ..< min(rows.tokens.count, start + rowsPerPass)])
        let flat = batch.flatMap { $0 }
        // Clean pass: logits and the hook's activations.
        let clean = try model.forward(tokens: batch, hooks: [hook], logits: true)
        let x = clean.activations[hook]!
        let f = try sae.encode(x), xhat = try sae.decode(f)
        for p in 0..<flat.count where flat[p] != bos {
            sums[.saeTokens] += 1
            for i in 0..<d {
                let v = Double(x.storage[p * d + i]), e = v - Double(xhat.storage[p * d + i])
                sums[.sse] += e * e; sums[.sumSquares] += v * v; sums.sumX[i] += v
            }
            for j in 0..<m where f.storage[p * m + j] > 0 {
                sums[.l0] += 1; sums[.l1] += Double(f.storage[p * m + j]); sums.firing[j] += 1
            }
        }
        // Spliced and zero-ablated passes: replace the hook's activation except at BOS.
        func replaced(_ with: @escaping (Int, Int) -> Float) throws -> Tensor {
            try model.forward(tokens: batch, logits: true, callback: { act in
                guard act.point == hook else { return }
                for p in 0..<(act.batch * act.tokens) where flat[p] != bos {
                    for i in 0..<act.width { act.values[p * act.width + i] = with(p, i) }
                }
            }).logits!
        }
        let spliced = try replaced { p, i in xhat.storage[p * d + i] }
        let zero = try replaced { _, _ in 0 }
        let Vp = clean.logits!.columns
        for p in 0..<flat.count {
            let target = targets[p / batch[0].count][p % batch[0].count]
            guard target >= 0 && target < V else { continue }
            let lc = logSoftmax(clean.logits!.storage[p * Vp ..< p * Vp + V])
            let ls = logSoftmax(spliced.storage[p * Vp ..< p * Vp + V])
            let lz = logSoftmax(zero.storage[p * Vp ..< p * Vp + V])
            sums[.ceTokens] += 1
            sums[.ceClean] -= lc[target]; sums[.ceSAE] -= ls[target]; sums[.ceZero] -= lz[target]
            var kl = 0.0
            for v in 0..<V { kl += Foundation.exp(lc[v]) * (lc[v] - ls[v]) }
            sums[.kl] += kl
        }
    }
    sums.combine(comm)
    return sums.metrics
}

/// log softmax of a row, in Double.
func logSoftmax(_ row: ArraySlice<Float>) -> [Double] {
    let mx = Double(row.max() ?? 0)
    let lse = mx + Foundation.log(row.reduce(0.0) { $0 + Foundation.exp(Double($1) - mx) })
    return row.map { Double($0) - lse }
}
