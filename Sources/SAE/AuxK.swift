import Tensors

// The AuxK loss (Gao et al. 2024, "Scaling and evaluating sparse autoencoders", section A.2): the dead
// latents reconstruct the main reconstruction's residual. Entry by entry (`auxKLoss`, its gradient
// then flows through TopK.swift's sparse backward) or as dense products over the gathered dead
// latents (`gatheredAuxK`).

extension SAE {
    /// AuxK: the residual r = x − x̂ (detached) is reconstructed by the k_aux largest dead
    /// pre-activations, without b_dec: ê_b = Σ_{j∈A_b} ReLU(pre_bj)·W_dec,j.
    ///   L_aux = α·Σ_b ‖ê_b − r_b‖² / Σ_b ‖r_b − r̄‖²   (denominator detached)
    ///   ∂L_aux/∂ê_b = 2α(ê_b − r_b)/D  → written to Gaux [B,d]; flows to W_dec,j and pre_bj like g_b.
    /// `G` holds 2(x̂ − x)/B, so r_b = −(B/2)·G_b.
    func auxKLoss(_ aux: SparseActivations, rows B: Int, G: [Float], Gaux: inout [Float], dense: Bool) -> Double {
        let d = config.dIn, m = config.dSAE
        let toR = -Float(B) / 2
        let D = residualVariance(G, rows: B)
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

    /// Σ_b ‖r_b − r̄‖² of the residuals r_b = x_b − x̂_b = −(B/2)·G_b: AuxK's (detached) denominator,
    /// (B/2)²·Σ_b ‖G_b − Ḡ‖².
    func residualVariance(_ G: [Float], rows B: Int) -> Double {
        let half = Double(B) / 2
        return half * half * G.withUnsafeBufferPointer { sumOfSquaredDeviations($0.baseAddress!, rows: B, columns: config.dIn) }
    }

    /// Whether the AuxK term runs as dense products over the dead latents (`gatheredAuxK`) rather than
    /// entry by entry: when each row's k_aux picks are at least 1/`auxGatheredDensity` of the dead set,
    /// the dense products (≈ 6·B·d·n_dead FLOPs at sgemm speed) beat the scattered updates
    /// (≈ 8·B·k_aux·d at memory speed, ~10× slower per FLOP here).
    func usesGatheredAuxK(dead: Int, kAux: Int) -> Bool { dead > 0 && dead <= auxGatheredDensity * kAux }

    /// AuxK (loss and gradients, added to `grads`) by dense products over the dead latents, gathered
    /// into n_dead columns: per row chunk, F_aux [n, n_dead] (the k_aux picks, 0 elsewhere),
    ///   ê = F_aux·W_dec[dead];  Gaux = 2α(ê − r)/D;  ∂W_dec[dead] += F_auxᵀ·Gaux;
    ///   ∂pre = (Gaux·W_dec[dead]ᵀ) ⊙ 1[F_aux > 0];  ∂W_enc[dead] += ∂preᵀ·x̃;  ∂b_enc[dead] += Σ_b ∂pre_b.
    /// ∂W_enc[dead] gets ∂preᵀ·x; `finishEncoderGradient`, run after, turns it into ∂preᵀ·x̃ with
    /// ∂b_enc (∂preᵀ·x̃ = ∂preᵀ·x − (Σ_b ∂pre_b)·b_dec), so x̃ is never formed.
    /// The chunks split into two fixed halves; each half's task takes its chunks end to end (one
    /// F_aux per chunk, its Gaux still in cache) into its own gradient buffers, and the halves add
    /// in order: the bits do not depend on how many threads run the tasks.
    func gatheredAuxK(_ aux: AuxSelection, rows B: Int, x: Tensor, G: [Float], grads: inout [Float]) -> Double {
        let d = config.dIn, nD = aux.dead.count, kAux = aux.perRow
        let D = residualVariance(G, rows: B)
        guard D > 0 else { return 0 }
        let toR = -Float(B) / 2, scale = Float(2 * Double(config.auxAlpha) / D)
        var Wd = [Float](unsafeUninitializedCapacity: nD * d) { _, n in n = nD * d }
        params.withUnsafeBufferPointer { p in
            for (q, j) in aux.dead.enumerated() {
                for i in 0..<d { Wd[q * d + i] = p[layout.W_dec.lowerBound + Int(j) * d + i] }
            }
        }
        let chunk = min(B, Self.encoderRowChunk), chunks = (B + chunk - 1) / chunk, half = (chunks + 1) / 2
        var chunkNum = [Double](repeating: 0, count: chunks)
        // Per half: ∂W_dec[dead], ∂W_enc[dead] [nD, d] and ∂b_enc[dead] [nD].
        let size = 2 * nD * d + nD
        var partial = [Float](repeating: 0, count: 2 * size)

        Wd.withUnsafeBufferPointer { wd in G.withUnsafeBufferPointer { gb in partial.withUnsafeMutableBufferPointer { pt in
        x.withConstBuffer { xb in chunkNum.withUnsafeMutableBufferPointer { cn in
        aux.ordinal.withUnsafeBufferPointer { ob in aux.value.withUnsafeBufferPointer { vb in
            let box = UncheckedSendable((wd.baseAddress!, gb.baseAddress!, pt.baseAddress!, xb.baseAddress!, cn.baseAddress!,
                                         ob.baseAddress!, vb.baseAddress!))
            parallelFor(2) { task in
                let (Wd, G, partial, x, num, ordinal, value) = box.value
                let dWd = partial + task * size, dWe = dWd + nD * d, dbe = dWe + nD * d
                // F_aux [n, nD] (zeros but the picks), ∂pre and Gaux of one chunk.
                let fa = UnsafeMutablePointer<Float>.allocate(capacity: chunk * nD)
                let dp = UnsafeMutablePointer<Float>.allocate(capacity: chunk * nD)
                let e = UnsafeMutablePointer<Float>.allocate(capacity: chunk * d)
                defer { fa.deallocate(); dp.deallocate(); e.deallocate() }
                fa.initialize(repeating: 0, count: chunk * nD)
                for c in task * half ..< min(chunks, (task + 1) * half) {
                    let c0 = c * chunk, n = min(chunk, B - c0)
                    // Unused slots (value 0) may share an ordinal with a pick: write the picks only.
                    for r in 0..<n {
                        let o = ordinal + (c0 + r) * kAux, v = value + (c0 + r) * kAux, f = fa + r * nD
                        for s in 0..<kAux where v[s] > 0 { f[Int(o[s])] = v[s] }
                    }
                    // e starts as −r, the product adds ê (beta = 1); then Gaux = scale·(ê − r).
                    for t in 0 ..< n * d { e[t] = -(toR * G[c0 * d + t]) }
                    sgemm(.none, .none, m: n, n: d, k: nD, a: fa, lda: nD, b: Wd, ldb: d, beta: 1, c: e, ldc: d)
                    var sum = 0.0
                    for t in 0 ..< n * d { let v = e[t]; sum += Double(v * v); e[t] = scale * v }
                    num[c] = sum
                    sgemm(.transposed, .none, m: nD, n: d, k: n, a: fa, lda: nD, b: e, ldb: d, beta: 1, c: dWd, ldc: d)
                    sgemm(.none, .transposed, m: n, n: nD, k: d, a: e, lda: d, b: Wd, ldb: d, c: dp, ldc: nD)
                    for t in 0 ..< n * nD { dp[t] = fa[t] > 0 ? dp[t] : 0 }      // a blend, not a branch
                    for r in 0..<n { for q in 0..<nD { dbe[q] += dp[r * nD + q] } }
                    sgemm(.transposed, .none, m: nD, n: d, k: n, a: dp, lda: nD, b: x + c0 * d, ldb: d, beta: 1, c: dWe, ldc: d)
                    for r in 0..<n {
                        let o = ordinal + (c0 + r) * kAux, f = fa + r * nD
                        for s in 0..<kAux { f[Int(o[s])] = 0 }
                    }
                }
            }
        } } } } } } }

        // Scatter into the full gradient, the two halves added in order.
        grads.withUnsafeMutableBufferPointer { g in partial.withUnsafeBufferPointer { h0 in
            let h1 = h0.baseAddress! + size, h0 = h0.baseAddress!
            for (q, j) in aux.dead.enumerated() {
                let j = Int(j)
                for i in 0..<d {
                    g[layout.W_dec.lowerBound + j * d + i] += h0[q * d + i] + h1[q * d + i]
                    g[layout.W_enc.lowerBound + j * d + i] += h0[nD * d + q * d + i] + h1[nD * d + q * d + i]
                }
                g[layout.b_enc.lowerBound + j] += h0[2 * nD * d + q] + h1[2 * nD * d + q]
            }
        } }
        return Double(config.auxAlpha) * chunkNum.reduce(0, +) / D
    }
}
