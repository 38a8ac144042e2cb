import Tensors

// Dead-latent statistics and the AuxK loss (Gao et al. 2024, "Scaling and evaluating sparse
// autoencoders", section A.2).

/// Per-latent firing statistics over a token window, as plain arrays a trainer can combine across
/// ranks: `tokensSinceFired` with MIN, `firingCounts` with SUM (or feed every rank the already
/// summed counts of a step, which keeps both identical everywhere).
public struct LatentStatistics: Sendable, Equatable, Codable {
    /// Tokens seen since latent j last fired (saturates, never overflows).
    public var tokensSinceFired: [Int64]
    /// Rows in which latent j fired since the last `resetWindow`.
    public var firingCounts: [Int64]
    /// Tokens counted in `firingCounts`.
    public var windowTokens: Int64 = 0

    public init(latents: Int) {
        tokensSinceFired = [Int64](repeating: 0, count: latents)
        firingCounts = [Int64](repeating: 0, count: latents)
    }

    /// Adds one step: `counts` [m] rows each latent fired in, out of `tokens` rows.
    public mutating func record(counts: [Int64], tokens: Int64) {
        precondition(counts.count == firingCounts.count, "record: \(counts.count) counts for \(firingCounts.count) latents")
        for j in 0..<counts.count {
            firingCounts[j] += counts[j]
            tokensSinceFired[j] = counts[j] > 0 ? 0 : tokensSinceFired[j] &+ tokens
            if tokensSinceFired[j] < 0 { tokensSinceFired[j] = .max }
        }
        windowTokens += tokens
    }

    /// Latents that fired for none of the last `deadTokens` tokens.
    public func deadMask(deadTokens: Int64) -> [Bool] { tokensSinceFired.map { $0 >= deadTokens } }

    /// Dead latents' indices (ascending).
    public func deadLatents(deadTokens: Int64) -> [Int] {
        tokensSinceFired.indices.filter { tokensSinceFired[$0] >= deadTokens }
    }

    /// Firing fraction per latent over the window (SAELens's sparsity is log10 of this + 1e-10).
    public var firingFractions: [Double] {
        firingCounts.map { windowTokens > 0 ? Double($0) / Double(windowTokens) : 0 }
    }

    /// Starts a new counting window (`tokensSinceFired` carries on).
    public mutating func resetWindow() {
        for j in firingCounts.indices { firingCounts[j] = 0 }
        windowTokens = 0
    }
}

extension SAE {
    /// AuxK: the residual r = x − x̂ (detached) is reconstructed by the k_aux largest dead
    /// pre-activations, without b_dec: ê_b = Σ_{j∈A_b} ReLU(pre_bj)·W_dec,j.
    ///   L_aux = α·Σ_b ‖ê_b − r_b‖² / Σ_b ‖r_b − r̄‖²   (denominator detached)
    ///   ∂L_aux/∂ê_b = 2α(ê_b − r_b)/D  → written to Gaux [B,d]; flows to W_dec,j and pre_bj like g_b.
    /// `G` holds 2(x̂ − x)/B, so r_b = −(B/2)·G_b.
    func auxKLoss(_ aux: SparseActivations, rows B: Int, G: [Float], Gaux: inout [Float], dense: Bool) -> Double {
        let d = config.dIn, m = config.dSAE
        let toR = -Float(B) / 2
        var rMean = [Double](repeating: 0, count: d)
        for b in 0..<B { for i in 0..<d { rMean[i] += Double(toR * G[b * d + i]) } }
        for i in 0..<d { rMean[i] /= Double(B) }
        var D = 0.0
        for b in 0..<B { for i in 0..<d { let t = Double(toR * G[b * d + i]) - rMean[i]; D += t * t } }
        guard D > 0 else { for i in 0..<Gaux.count { Gaux[i] = 0 }; return 0 }
        // ê into Gaux.
        if dense {
            let f = aux.dense(rows: B, m: m)
            params.withUnsafeBufferPointer { p in f.withUnsafeBufferPointer { fb in Gaux.withUnsafeMutableBufferPointer { ga in
                sgemm(.none, .none, m: B, n: d, k: m, a: fb.baseAddress!, lda: m, b: p.baseAddress! + layout.W_dec.lowerBound,
                      ldb: d, c: ga.baseAddress!, ldc: d)
            } } }
        } else {
            params.withUnsafeBufferPointer { pp in Gaux.withUnsafeMutableBufferPointer { ga in
                aux.start.withUnsafeBufferPointer { st in aux.idx.withUnsafeBufferPointer { ix in aux.val.withUnsafeBufferPointer { vl in
                    let box = UncheckedSendable((pp.baseAddress! + layout.W_dec.lowerBound, ga.baseAddress!,
                                                 st.baseAddress!, ix.baseAddress!, vl.baseAddress!))
                    parallelRanges(B, grain: 16) { r in
                        let (W_dec, out, st, ix, vl) = box.value
                        for b in r {
                            for i in 0..<d { out[b * d + i] = 0 }
                            for s in st[b] ..< st[b + 1] { axpy(out + b * d, vl[s], W_dec + Int(ix[s]) * d, d) }
                        }
                    }
                } } }
            } }
        }
        var num = 0.0
        let scale = Float(2 * Double(config.auxAlpha) / D)
        for t in 0 ..< B * d {
            let e = Gaux[t] - toR * G[t]
            num += Double(e * e)
            Gaux[t] = scale * e
        }
        return Double(config.auxAlpha) * num / D
    }
}
