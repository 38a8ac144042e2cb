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
    /// Work is split into fixed tasks (row chunks for ê; two fixed halves of the weight gradients,
    /// summed in order), so the bits do not depend on how many threads run them.
    func gatheredAuxK(_ aux: SparseActivations, dead: [Int32], rows B: Int, x: Tensor, G: [Float],
                      grads: inout [Float]) -> Double {
        let d = config.dIn, nD = dead.count
        let D = residualVariance(G, rows: B)
        guard D > 0 else { return 0 }
        let toR = -Float(B) / 2, scale = Float(2 * Double(config.auxAlpha) / D)
        var column = [Int32](repeating: -1, count: config.dSAE)        // latent → its gathered column
        for (q, j) in dead.enumerated() { column[Int(j)] = Int32(q) }
        var Wd = [Float](repeating: 0, count: nD * d)
        params.withUnsafeBufferPointer { p in
            for (q, j) in dead.enumerated() {
                for i in 0..<d { Wd[q * d + i] = p[layout.W_dec.lowerBound + Int(j) * d + i] }
            }
        }
        let chunk = min(B, Self.encoderRowChunk), chunks = (B + chunk - 1) / chunk
        var Gaux = [Float](repeating: 0, count: B * d)
        var chunkNum = [Double](repeating: 0, count: chunks)
        // Task A: ∂W_dec[dead] (all chunks) + ∂W_enc, ∂b_enc of the first quarter; task B: the rest.
        // (∂W_dec costs one product per chunk, ∂W_enc two, so A = 1 + ½ and B = 1½.)
        let split = chunks / 4
        var dWd = [Float](repeating: 0, count: nD * d)
        var dWe0 = [Float](repeating: 0, count: nD * d), dWe1 = dWe0
        var dbe0 = [Float](repeating: 0, count: nD), dbe1 = dbe0
        let bDec = Array(params[layout.b_dec])

        Wd.withUnsafeBufferPointer { wd in Gaux.withUnsafeMutableBufferPointer { ga in G.withUnsafeBufferPointer { gb in
        x.withConstBuffer { xb in chunkNum.withUnsafeMutableBufferPointer { cn in column.withUnsafeBufferPointer { col in
        aux.start.withUnsafeBufferPointer { st in aux.idx.withUnsafeBufferPointer { ix in aux.val.withUnsafeBufferPointer { vl in
        dWd.withUnsafeMutableBufferPointer { dwd in bDec.withUnsafeBufferPointer { bd in
            let box = UncheckedSendable((wd.baseAddress!, ga.baseAddress!, gb.baseAddress!, xb.baseAddress!, cn.baseAddress!,
                                         col.baseAddress!, st.baseAddress!, ix.baseAddress!, vl.baseAddress!, dwd.baseAddress!,
                                         bd.baseAddress!))
            // F_aux of rows c0..<c0+n into fa [n, nD], which holds zeros; `clear` puts the zeros back
            // where `fill` wrote (about a third of fa: cheaper than zeroing all of it each time).
            let scatter = { (c0: Int, n: Int, fa: UnsafeMutablePointer<Float>, zero: Bool) in
                let (_, _, _, _, _, col, st, ix, vl, _, _) = box.value
                for r in 0..<n { for s in st[c0 + r] ..< st[c0 + r + 1] { fa[r * nD + Int(col[Int(ix[s])])] = zero ? 0 : vl[s] } }
            }
            let fill = { (c0: Int, n: Int, fa: UnsafeMutablePointer<Float>) in scatter(c0, n, fa, false) }
            let clear = { (c0: Int, n: Int, fa: UnsafeMutablePointer<Float>) in scatter(c0, n, fa, true) }
            // Phase 1, per chunk: ê, then Gaux = scale·(ê − r) in place, and Σ‖ê − r‖².
            parallelFor(chunks) { c in
                let (Wd, Gaux, G, _, num, _, _, _, _, _, _) = box.value
                let c0 = c * chunk, n = min(chunk, B - c0)
                let fa = UnsafeMutablePointer<Float>.allocate(capacity: n * nD)
                defer { fa.deallocate() }
                fa.initialize(repeating: 0, count: n * nD)
                fill(c0, n, fa)
                // e starts as −r, and the product adds ê to it (beta = 1): ê − r, the same bits, no
                // zeroing pass.
                let e = Gaux + c0 * d
                for t in 0 ..< n * d { e[t] = -(toR * G[c0 * d + t]) }
                sgemm(.none, .none, m: n, n: d, k: nD, a: fa, lda: nD, b: Wd, ldb: d, beta: 1, c: e, ldc: d)
                var s = 0.0
                for t in 0 ..< n * d {
                    let v = e[t]
                    s += Double(v * v); e[t] = scale * v
                }
                num[c] = s
            }
            // Phase 2: the weight gradients, in the two fixed tasks.
            dWe0.withUnsafeMutableBufferPointer { we0 in dWe1.withUnsafeMutableBufferPointer { we1 in
            dbe0.withUnsafeMutableBufferPointer { be0 in dbe1.withUnsafeMutableBufferPointer { be1 in
                let out = UncheckedSendable(((we0.baseAddress!, be0.baseAddress!), (we1.baseAddress!, be1.baseAddress!)))
                parallelFor(2) { task in
                    let (Wd, Gaux, _, x, _, _, _, _, _, dWd, b_dec) = box.value
                    let (dWe, dbe) = task == 0 ? out.value.0 : out.value.1
                    let fa = UnsafeMutablePointer<Float>.allocate(capacity: chunk * nD)
                    fa.initialize(repeating: 0, count: chunk * nD)
                    let dp = UnsafeMutablePointer<Float>.allocate(capacity: chunk * nD)
                    let xt = UnsafeMutablePointer<Float>.allocate(capacity: chunk * d)
                    defer { fa.deallocate(); dp.deallocate(); xt.deallocate() }
                    for c in 0..<chunks {
                        let c0 = c * chunk, n = min(chunk, B - c0), g = Gaux + c0 * d
                        let encoderPart = task == 0 ? c < split : c >= split
                        if task == 1 && !encoderPart { continue }
                        fill(c0, n, fa)
                        defer { clear(c0, n, fa) }
                        if task == 0 {
                            sgemm(.transposed, .none, m: nD, n: d, k: n, a: fa, lda: nD, b: g, ldb: d, beta: 1, c: dWd, ldc: d)
                        }
                        if !encoderPart { continue }
                        sgemm(.none, .transposed, m: n, n: nD, k: d, a: g, lda: d, b: Wd, ldb: d, c: dp, ldc: nD)
                        for t in 0 ..< n * nD { dp[t] = fa[t] > 0 ? dp[t] : 0 }      // a blend, not a branch
                        for r in 0..<n { for q in 0..<nD { dbe[q] += dp[r * nD + q] } }
                        for r in 0..<n { for i in 0..<d { xt[r * d + i] = x[(c0 + r) * d + i] - b_dec[i] } }
                        sgemm(.transposed, .none, m: nD, n: d, k: n, a: dp, lda: nD, b: xt, ldb: d, beta: 1, c: dWe, ldc: d)
                    }
                }
            } } } }
        } } } } } } } } } } }

        // Scatter into the full gradient, the two halves of ∂W_enc/∂b_enc added in order.
        grads.withUnsafeMutableBufferPointer { g in
            for (q, j) in dead.enumerated() {
                let j = Int(j)
                for i in 0..<d {
                    g[layout.W_dec.lowerBound + j * d + i] += dWd[q * d + i]
                    g[layout.W_enc.lowerBound + j * d + i] += dWe0[q * d + i] + dWe1[q * d + i]
                }
                g[layout.b_enc.lowerBound + j] += dbe0[q] + dbe1[q]
            }
        }
        return Double(config.auxAlpha) * chunkNum.reduce(0, +) / D
    }
}
