import SAE
import Tensors

/// A feature's direct effect on the logits: the tokens its decoder direction boosts and
/// suppresses most, and the histogram of its effect over the whole vocabulary.
public struct LogitEffects: Sendable, Equatable {
    /// (token id, W_dec[f]·W_U[token]) largest first.
    public var boosted: [(token: Int, value: Float)]
    /// (token id, value) most negative first.
    public var suppressed: [(token: Int, value: Float)]
    public var histogram: Histogram

    public static func == (a: LogitEffects, b: LogitEffects) -> Bool {
        a.boosted.elementsEqual(b.boosted) { $0 == $1 } && a.suppressed.elementsEqual(b.suppressed) { $0 == $1 }
            && a.histogram == b.histogram
    }
}

/// Logit effects of `features`: the rows W_dec[f] · W_Uᵀ over the first `vocabSize` rows of the
/// unembedding `W_U` [Vp, d] (nanochat's lm_head.weight; padded rows left out). nanochat's final
/// norm is x/rms(x) with no learned weight, so no scale is folded into W_U; its 1/rms, resid_lambdas
/// and backout only scale a hook's whole row, which changes no ranking.
/// Computed in chunks of features so memory stays O(chunk · V).
public func logitEffects(sae: SAE, unembedding W_U: Tensor, vocabSize V: Int, features: [Int],
                         top: Int = 10, bins: Int = 40, chunk: Int = 256) -> [Int: LogitEffects] {
    let d = sae.config.dIn
    precondition(W_U.rank == 2 && W_U.shape[1] == d && W_U.shape[0] >= V, "W_U \(W_U.shape) for d \(d), V \(V)")
    let W = W_U.shape[0] == V ? W_U : Tensor(shape: [V, d], storage: Array(W_U.storage[0 ..< V * d]))
    let k = min(top, V)
    var out: [Int: LogitEffects] = [:]
    for start in stride(from: 0, to: features.count, by: chunk) {
        let ids = Array(features[start ..< min(features.count, start + chunk)])
        // Gather the decoder rows [c, d], then [c, d] · [V, d]ᵀ = [c, V]; top-k per row by selection.
        var rows = Tensor(shape: [ids.count, d])
        for (r, f) in ids.enumerated() {
            let base = sae.layout.W_dec.lowerBound + f * d
            rows.storage.replaceSubrange(r * d ..< (r + 1) * d, with: sae.params[base ..< base + d])
        }
        let logits = matmul(rows, W, .none, .transposed)
        let high = logits.topK(k)
        var negated = logits
        for i in 0..<negated.count { negated.storage[i] = -negated.storage[i] }
        let low = negated.topK(k)
        for (r, f) in ids.enumerated() {
            out[f] = LogitEffects(boosted: (r * k ..< (r + 1) * k).map { (Int(high.indices[$0]), high.values.storage[$0]) },
                                  suppressed: (r * k ..< (r + 1) * k).map { (Int(low.indices[$0]), -low.values.storage[$0]) },
                                  histogram: Histogram(of: logits.storage[r * V ..< (r + 1) * V], bins: bins))
        }
    }
    return out
}
