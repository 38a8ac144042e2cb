import Tensors

// TopK (Gao et al. 2024) and BatchTopK (Bussmann et al. 2024) SAEs, with the AuxK dead-latent term.
//
// Forward, x [B,d]:
//   x̃ = x − b_dec                        [B,d]
//   pre = x̃·W_enc + b_enc                [B,m]   the one dense product (W_enc stored as [m,d])
//   S_b = top-k of pre_b (topk) | rows' share of the batch's top k·B (batchtopk); f = ReLU(pre) on S
//   x̂_b = b_dec + Σ_{j∈S_b} f_bj·W_dec,j  [B,d]   sparse: O(B·k·d)
//   L = (1/B)·Σ_b ‖x̂_b − x_b‖² (+ AuxK, DeadLatents.swift)
// Backward (g_b = ∂L/∂x̂_b = 2(x̂_b − x_b)/B):
//   ∂L/∂W_dec,j = Σ_{b: j∈S_b} f_bj·g_b            (per latent: a contiguous row)
//   ∂L/∂pre_bj  = g_b·W_dec,j · 1[f_bj > 0]        (only j ∈ S_b)
//   ∂L/∂W_enc,j = Σ_b ∂L/∂pre_bj · x̃_b;  ∂L/∂b_enc,j = Σ_b ∂L/∂pre_bj
//   ∂L/∂b_dec   = Σ_b g_b − Σ_j (∂L/∂b_enc,j)·W_enc,j   (x̃ depends on b_dec)
// The weight gradients are dense-by-sparse: entries are bucketed by (row block, latent) with a counting
// sort, then each thread owns a range of latents and writes only their rows (no races, deterministic),
// reading the block's G and x rows from L2.

/// Active latents of a batch in compressed-row form: row b's latents are idx[start[b]..<start[b+1]]
/// with activations val (all > 0).
struct SparseActivations {
    var start: [Int]
    var idx: [Int32]
    var val: [Float]
    var count: Int { idx.count }
}

/// AuxK's picks of a batch, fixed width: row b's (at most) k_aux largest positive dead
/// pre-activations are value[b·perRow ..< (b+1)·perRow], in ascending order of their ordinals into
/// `dead` (the dead latents, ascending); unused slots hold value 0.
struct AuxSelection {
    let dead: [Int32]
    let perRow: Int
    var ordinal: [Int32]
    var value: [Float]

    /// The picks as latents in compressed-row form (entry-by-entry AuxK and the reference paths).
    func sparse(rows: Int) -> SparseActivations {
        var s = compactPositive(values: value, indices: ordinal, rows: rows, perRow: perRow)
        for t in 0..<s.count { s.idx[t] = dead[Int(s.idx[t])] }
        return s
    }
}

/// The selection of one TopK/BatchTopK forward: main latents, AuxK picks, smallest kept activation.
struct TopKSelection {
    var main: SparseActivations
    var aux: AuxSelection?
    var minKept: Float?
}

extension SAE {
    /// Rows of the encoder computed per sgemm: W_enc is packed once per row chunk, so fewer, taller
    /// chunks pack less.
    static var encoderRowChunk: Int { 512 }
    /// Latents per sgemm within a row chunk: the [512, 512] pre-activation tile (1 MB) is at most in
    /// L2 or L3 when the selection reads it, and each row chunk's x̃ is packed m/512 times.
    static var encoderLatentBlock: Int { 512 }

    /// Encoder plus selection on the raw batch x [B,d] (x̃ = x − b_dec is formed per row chunk).
    /// Each row chunk is encoded tile by tile of latents, and each tile goes straight into the rows'
    /// streaming selections (`StreamingTopK`): TopK keeps each row's top k, BatchTopK each row's top
    /// 4k as candidates for its batch-wide selection (`batchTopKSelect`), AuxK copies the dead
    /// latents' pre-activations out of the tile. No [rows, m] buffer exists. With `encoderWorkers` > 1,
    /// each worker takes a contiguous slice of row chunks with its own tiles and calls sgemm itself
    /// (no hand-offs between BLAS's threads and ours); run BLAS single-threaded then.
    func topkSelect(_ x: UnsafePointer<Float>, rows B: Int, deadMask: [Bool]?) -> TopKSelection {
        let d = config.dIn, m = config.dSAE, k = config.k
        let batchTopK = config.architecture == .batchtopk
        let perRow = batchTopK ? min(m, 4 * k) : k
        let deadIdx: [Int32] = deadMask.map { mask in (0..<m).filter { mask[$0] }.map { Int32($0) } } ?? []
        let nDead = deadIdx.count
        let kAux = min(config.effectiveAuxK, nDead)
        let useAux = kAux > 0 && config.auxAlpha > 0
        let chunk = min(B, Self.encoderRowChunk), tile = min(m, Self.encoderLatentBlock)
        // Workers take whole chunks, so every chunk (and so every sgemm call) is the same for any
        // worker count: results are bitwise independent of `encoderWorkers`.
        let chunks = (B + chunk - 1) / chunk
        let workers = max(1, min(encoderWorkers, chunks))
        let rowsPerWorker = (chunks + workers - 1) / workers * chunk
        let capacity = StreamingTopK.capacity(k: perRow)
        // The dead latents of tile t are deadIdx[deadStart[t] ..< deadStart[t + 1]] (deadIdx ascends).
        let tiles = (m + tile - 1) / tile
        let deadStart = (0...tiles).map { t in deadIdx.firstIndex { Int($0) >= t * tile } ?? nDead }

        var topVal = [Float](repeating: 0, count: B * perRow)
        var topIdx = [Int32](repeating: 0, count: B * perRow)
        // Every slot is written by selectLargest.
        var auxVal = [Float](unsafeUninitializedCapacity: useAux ? B * kAux : 0) { _, n in n = useAux ? B * kAux : 0 }
        var auxIdx = [Int32](unsafeUninitializedCapacity: useAux ? B * kAux : 0) { _, n in n = useAux ? B * kAux : 0 }
        // Every worker's buffers, allocated here (not in the workers' threads, whose malloc arenas
        // would keep them) so that later temporaries of the step reuse the memory. Not zeroed: every
        // element is written before it is read.
        let perWorker = chunk * tile + chunk * d + chunk * capacity + 3 * chunk + (useAux ? chunk * nDead : 0)
        var workspace = [Float](unsafeUninitializedCapacity: workers * perWorker) { _, n in n = workers * perWorker }
        var candIdx = [Int32](unsafeUninitializedCapacity: workers * chunk * capacity) { _, n in n = workers * chunk * capacity }
        var candCount = [Int](repeating: 0, count: workers * chunk)
        let allDead = (0..<nDead).map { Int32($0) }

        topVal.withUnsafeMutableBufferPointer { tv in topIdx.withUnsafeMutableBufferPointer { ti in
        auxVal.withUnsafeMutableBufferPointer { av in auxIdx.withUnsafeMutableBufferPointer { ai in
        workspace.withUnsafeMutableBufferPointer { ws in candIdx.withUnsafeMutableBufferPointer { ci in
        candCount.withUnsafeMutableBufferPointer { cc in deadIdx.withUnsafeBufferPointer { di in
            let box = UncheckedSendable((tv.baseAddress!, ti.baseAddress!, av.baseAddress, ai.baseAddress, ws.baseAddress!,
                                         ci.baseAddress!, cc.baseAddress!, di.baseAddress))
            let encodeRows = { (w: Int) in
                let (tv, ti, av, ai, ws, ci, cc, dead) = box.value
                let pre = ws + w * perWorker, xt = pre + chunk * tile, candVal = xt + chunk * d
                let thresholds = candVal + chunk * capacity, started = thresholds + chunk, norms = started + chunk
                let deadPre = norms + chunk
                let select = StreamingTopK(k: perRow, capacity: capacity, value: candVal, index: ci + w * chunk * capacity,
                                           count: cc + w * chunk, threshold: thresholds)
                let scratchCount = select.scratchCount(tile: tile)
                // Rows r with start[r] ≥ 0 take part; each starts at its threshold.
                // Returns, per row, the k-th largest / ‖x̃_b‖ (0 where unknown) and the rows to select again.
                func selectRows(_ c0: Int, _ n: Int, start: (Int) -> Float?, out: Bool) -> (ratio: Float, failed: [Int]) {
                    forEachEncoderTile(x + c0 * d, rows: n, xt: xt, pre: pre) { lo, nb in
                        rowRanges(n, grain: 16, parallel: workers == 1) { r in
                            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchCount)
                            defer { scratch.deallocate() }
                            let t = lo / tile
                            for b in r {
                                if lo == 0 {
                                    norms[b] = dot(xt + b * d, xt + b * d, d).squareRoot()
                                    let s = start(b).map { $0 * norms[b] } ?? -1
                                    started[b] = s
                                    if s >= 0 { select.start(row: b, threshold: s) }
                                }
                                if started[b] < 0 { continue }
                                select.offer(row: b, pre + b * nb, nb, lo: lo, scratch: scratch)
                                // AuxK: the dead latents' pre-activations, gathered per row.
                                if useAux {
                                    for q in deadStart[t] ..< deadStart[t + 1] {
                                        deadPre[b * nDead + q] = pre[b * nb + Int(dead![q]) - lo]
                                    }
                                }
                            }
                        }
                    }
                    var ratios = [Float](repeating: 0, count: n), failed = [Bool](repeating: false, count: n)
                    ratios.withUnsafeMutableBufferPointer { rb in failed.withUnsafeMutableBufferPointer { fb in
                        let out2 = UncheckedSendable((rb.baseAddress!, fb.baseAddress!))
                        rowRanges(n, grain: 16, parallel: workers == 1) { r in
                            let (ratio, failed) = out2.value
                            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchCount)
                            let sinkVal = UnsafeMutablePointer<Float>.allocate(capacity: perRow)
                            let sinkIdx = UnsafeMutablePointer<Int32>.allocate(capacity: perRow)
                            defer { scratch.deallocate(); sinkVal.deallocate(); sinkIdx.deallocate() }
                            for b in r where started[b] >= 0 {
                                let kth = select.finish(row: b, started: started[b],
                                                        outVal: out ? tv + (c0 + b) * perRow : sinkVal,
                                                        outIdx: out ? ti + (c0 + b) * perRow : sinkIdx, scratch: scratch)
                                if let kth, norms[b] > 0 { ratio[b] = kth / norms[b] }
                                failed[b] = kth == nil && started[b] > 0
                            }
                        }
                    } }
                    let known = ratios.filter { $0 > 0 }
                    return (known.isEmpty ? 0 : known.reduce(0, +) / Float(known.count), (0..<n).filter { failed[$0] })
                }
                // The threshold of a row is estimated from the rows before it as margin · ratio · ‖x̃_b‖,
                // ratio = their k-th largest / ‖x̃‖. A pilot of a few rows (selected from a proven start,
                // results discarded) gives the first ratio; a chunk with rows to select again lowers the margin.
                var c0 = w * rowsPerWorker
                let end = min(B, c0 + rowsPerWorker)
                var ratio = c0 < end ? selectRows(c0, min(8, end - c0), start: { _ in 0 }, out: false).ratio : 0
                var margin = selectionMargin
                while c0 < end {
                    let n = min(chunk, end - c0), estimate = margin * ratio
                    let (chunkRatio, failed) = selectRows(c0, n, start: { _ in estimate }, out: true)
                    if !failed.isEmpty {
                        let again = Set(failed)
                        _ = selectRows(c0, n, start: { again.contains($0) ? 0 : nil }, out: true)
                        margin *= 0.9
                    }
                    if chunkRatio > 0 { ratio = chunkRatio }
                    if useAux {
                        // The k_aux largest dead pre-activations of each row (AuxK), as dead ordinals.
                        selectLargest(pre: deadPre, m: nDead, rows: n, candidates: allDead, k: kAux,
                                      outIdx: ai! + c0 * kAux, outVal: av! + c0 * kAux, parallel: workers == 1)
                    }
                    c0 += n
                }
            }
            if workers == 1 { encodeRows(0) } else { parallelFor(workers) { encodeRows($0) } }
        } } } } } } } }

        var main: SparseActivations, minKept: Float? = nil
        if batchTopK {
            (main, minKept) = batchTopKSelect(x, rows: B, candidates: topVal, topIdx, perRow: perRow, chunk: chunk)
        } else {
            main = compactPositive(values: topVal, indices: topIdx, rows: B, perRow: k)
        }
        let aux = useAux ? AuxSelection(dead: deadIdx, perRow: kAux, ordinal: auxIdx, value: auxVal) : nil
        return TopKSelection(main: main, aux: aux, minKept: minKept)
    }

    /// Encodes rows x[0..<n] tile by tile of latents: for each tile lo..<lo+nb, pre [n, nb] =
    /// (x − b_dec)·W_enc[lo..<lo+nb]ᵀ + b_enc[lo..<lo+nb], then `body(lo, nb)`. x̃ is formed once in
    /// xt [n,d]; pre starts as b_enc in every row and the product adds to it (beta = 1), so the bias
    /// costs no pass of its own. The same rows give the same calls, so the same bits.
    func forEachEncoderTile(_ x: UnsafePointer<Float>, rows n: Int, xt: UnsafeMutablePointer<Float>,
                            pre: UnsafeMutablePointer<Float>, _ body: (_ lo: Int, _ nb: Int) -> Void) {
        let d = config.dIn, m = config.dSAE, tile = min(m, Self.encoderLatentBlock)
        params.withUnsafeBufferPointer { pp in
            let p = pp.baseAddress!
            let W_encT = p + layout.W_enc.lowerBound, b_enc = p + layout.b_enc.lowerBound
            let b_dec = p + layout.b_dec.lowerBound
            for r in 0..<n { for i in 0..<d { xt[r * d + i] = x[r * d + i] - b_dec[i] } }
            for lo in stride(from: 0, to: m, by: tile) {
                let nb = min(tile, m - lo)
                for r in 0..<n { (pre + r * nb).update(from: b_enc + lo, count: nb) }
                if n == 1 {     // one row (a decoded token): gemv streams W_enc once, sgemm would pack it
                    sgemv(.none, m: nb, n: d, a: W_encT + lo * d, lda: d, x: xt, beta: 1, y: pre)
                } else {
                    sgemm(.none, .transposed, m: n, n: nb, k: d, a: xt, lda: d, b: W_encT + lo * d, ldb: d,
                          beta: 1, c: pre, ldc: nb)
                }
                body(lo, nb)
            }
        }
    }

    /// Full loss and gradients of topk/batchtopk. `dense: true` is the reference path for tests:
    /// the same selection, then dense [B,m] matrices and sgemms for decode and backward.
    func topkLossAndGradients(_ batch: Tensor, _ grads: inout [Float], deadMask: [Bool]?, dense: Bool) -> StepStatistics {
        let d = config.dIn, m = config.dSAE, B = batch.rows
        let sel = batch.withConstBuffer { topkSelect($0.baseAddress!, rows: B, deadMask: deadMask) }

        var stats = StepStatistics()
        stats.rows = B
        stats.minKeptActivation = sel.minKept
        stats.firingCounts = [Int64](repeating: 0, count: m)
        for j in sel.main.idx { stats.firingCounts[Int(j)] += 1 }
        stats.l0 = Double(sel.main.count) / Double(B)

        zeroInParallel(&grads)
        let gathered = !dense && sel.aux.map { usesGatheredAuxK(dead: $0.dead.count, kAux: $0.perRow) } ?? false
        if dense {
            var G = [Float](repeating: 0, count: B * d)        // ∂L/∂x̂  [B,d]
            stats.sumSquaredError = denseDecode(sel.main, rows: B, x: batch, G: &G)
            var Gaux = [Float](repeating: 0, count: sel.aux == nil ? 0 : B * d)
            if let aux = sel.aux { stats.auxLoss = auxKLoss(aux.sparse(rows: B), rows: B, G: G, Gaux: &Gaux, dense: true) }
            denseBackward(sel, rows: B, x: batch, G: G, Gaux: Gaux, grads: &grads)
            withPointers(params, &grads) { _, g in
                G.withUnsafeBufferPointer { addColumnSums($0.baseAddress!, rows: B, n: d, into: g + layout.b_dec.lowerBound) }
            }
        } else if let aux = sel.aux {
            // AuxK needs the residuals of the whole batch (its denominator): decode all rows first.
            // Its entries join the buckets when they go entry by entry.
            let auxEntries = gathered ? nil : aux.sparse(rows: B)
            let buckets = EntryBuckets([sel.main] + (auxEntries.map { [$0] } ?? []), rows: B, m: m, d: d)
            var G = [Float](repeating: 0, count: B * d)
            G.withUnsafeMutableBufferPointer { stats.sumSquaredError = sparseDecode(sel.main, rows: 0..<B, x: batch, into: $0.baseAddress!) }
            var Gaux = [Float](repeating: 0, count: gathered ? 0 : B * d)
            if let auxEntries { stats.auxLoss = auxKLoss(auxEntries, rows: B, G: G, Gaux: &Gaux, dense: false) }
            G.withUnsafeBufferPointer { gb in Gaux.withUnsafeBufferPointer { ab in
                sparseBackward(buckets, blocks: 0 ..< buckets.blocks, x: batch, G: gb.baseAddress!, gFirst: 0,
                               Gaux: gathered ? nil : ab.baseAddress, grads: &grads)
            } }
            if gathered { stats.auxLoss = gatheredAuxK(aux, rows: B, x: batch, G: G, grads: &grads) }
            finishEncoderGradient(&grads)
            withPointers(params, &grads) { _, g in
                G.withUnsafeBufferPointer { addColumnSums($0.baseAddress!, rows: B, n: d, into: g + layout.b_dec.lowerBound) }
            }
        } else {
            // Without AuxK, block by block of rows: decode the block (its G rows only), then its
            // entries' gradients while those rows are in cache. G never exists for the whole batch.
            let buckets = EntryBuckets([sel.main], rows: B, m: m, d: d), R = buckets.rowsPerBlock
            var Gblock = [Float](repeating: 0, count: min(B, R) * d)
            var sse = 0.0
            for blk in 0 ..< buckets.blocks {
                let rows = blk * R ..< min(B, (blk + 1) * R)
                Gblock.withUnsafeMutableBufferPointer { sse += sparseDecode(sel.main, rows: rows, x: batch, into: $0.baseAddress!) }
                Gblock.withUnsafeBufferPointer { gb in
                    sparseBackward(buckets, blocks: blk ..< blk + 1, x: batch, G: gb.baseAddress!, gFirst: rows.lowerBound,
                                   Gaux: nil, grads: &grads)
                    withPointers(params, &grads) { _, g in
                        addColumnSums(gb.baseAddress!, rows: rows.count, n: d, into: g + layout.b_dec.lowerBound)
                    }
                }
            }
            stats.sumSquaredError = sse
            finishEncoderGradient(&grads)
        }
        stats.mse = stats.sumSquaredError / Double(B)
        stats.loss = stats.mse + stats.auxLoss
        // ∂L/∂b_dec = Σ_b g_b (added above) − Σ_j (∂L/∂b_enc,j)·W_enc,j
        withPointers(params, &grads) { p, g in
            subtractEncoderPullback(g + layout.b_enc.lowerBound, W_encT: p + layout.W_enc.lowerBound, m: m, d: d,
                                    into: g + layout.b_dec.lowerBound)
        }
        return stats
    }

    /// x̂_b = b_dec + Σ f·W_dec over row b's active latents (in index order, `addWeightedRows`), for
    /// b in `rows`; writes g_b = 2(x̂_b − x_b)/B to out[b − rows.lowerBound], returns Σ‖x̂_b − x_b‖².
    func sparseDecode(_ s: SparseActivations, rows: Range<Int>, x: Tensor, into out: UnsafeMutablePointer<Float>) -> Double {
        let d = config.dIn, B = x.rows
        var rowSSE = [Double](repeating: 0, count: rows.count)
        params.withUnsafeBufferPointer { pp in x.withConstBuffer { xb in rowSSE.withUnsafeMutableBufferPointer { sb in
        s.start.withUnsafeBufferPointer { st in s.idx.withUnsafeBufferPointer { ix in s.val.withUnsafeBufferPointer { vl in
            let box = UncheckedSendable((pp.baseAddress!, xb.baseAddress!, out, sb.baseAddress!, st.baseAddress!,
                                         ix.baseAddress!, vl.baseAddress!))
            parallelRanges(rows.count, grain: 16) { r in
                let (p, x, out, sse, st, ix, vl) = box.value
                let W_dec = p + layout.W_dec.lowerBound, b_dec = p + layout.b_dec.lowerBound
                let scale = 2 / Float(B)
                var latentRows = [UnsafePointer<Float>](repeating: W_dec, count: 64)
                for i in r {
                    let b = rows.lowerBound + i, g = out + i * d, n = st[b + 1] - st[b]
                    g.update(from: b_dec, count: d)
                    if latentRows.count < n { latentRows += [UnsafePointer<Float>](repeating: W_dec, count: n) }
                    for t in 0..<n { latentRows[t] = W_dec + Int(ix[st[b] + t]) * d }
                    latentRows.withUnsafeBufferPointer { addWeightedRows(g, vl + st[b], $0.baseAddress!, nil, nil, nil, count: n, d) }
                    var e2 = 0.0
                    for k in 0..<d { let e = g[k] - x[b * d + k]; e2 += Double(e * e); g[k] = scale * e }
                    sse[i] = e2
                }
            }
        } } } } } }
        return rowSSE.reduce(0, +)
    }

    /// Reference decode through a dense f [B,m] and one sgemm (tests only).
    func denseDecode(_ s: SparseActivations, rows B: Int, x: Tensor, G: inout [Float]) -> Double {
        let d = config.dIn, m = config.dSAE
        let f = s.dense(rows: B, m: m)
        var sse = 0.0
        params.withUnsafeBufferPointer { pp in f.withUnsafeBufferPointer { fb in G.withUnsafeMutableBufferPointer { gb in
            let p = pp.baseAddress!
            sgemm(.none, .none, m: B, n: d, k: m, a: fb.baseAddress!, lda: m, b: p + layout.W_dec.lowerBound, ldb: d,
                  c: gb.baseAddress!, ldc: d)
            for b in 0..<B {
                for i in 0..<d {
                    let e = gb[b * d + i] + p[layout.b_dec.lowerBound + i] - x.storage[b * d + i]
                    sse += Double(e * e); gb[b * d + i] = 2 / Float(B) * e
                }
            }
        } } }
        return sse
    }

    /// Sparse backward over the row blocks `blocks` (entries bucketed by `EntryBuckets`): each thread
    /// owns a range of latents; per latent and block, ∂pre_bj = g_b·W_dec,j for each of its entries,
    /// then one pass adds Σ f_bj·g_b to ∂W_dec,j and Σ ∂pre_bj·x_b to ∂W_enc,j (`addWeightedRows`), and
    /// Σ ∂pre_bj to ∂b_enc,j. g_b is G's row b − gFirst (kind 0) or Gaux's row b (kind 1). Blocks in
    /// ascending order give the same sums whether they come in one call or one call each.
    func sparseBackward(_ e: EntryBuckets, blocks: Range<Int>, x: Tensor, G: UnsafePointer<Float>, gFirst: Int,
                        Gaux: UnsafePointer<Float>?, grads: inout [Float]) {
        let d = config.dIn, m = config.dSAE, most = 2 * e.rowsPerBlock
        params.withUnsafeBufferPointer { pp in grads.withUnsafeMutableBufferPointer { gr in x.withConstBuffer { xb in
        e.start.withUnsafeBufferPointer { cb in e.row.withUnsafeBufferPointer { er in e.f.withUnsafeBufferPointer { ef in
        e.kind.withUnsafeBufferPointer { ek in
            let box = UncheckedSendable((gr.baseAddress!, xb.baseAddress!, G - gFirst * d, Gaux, cb.baseAddress!, er.baseAddress!,
                                         ef.baseAddress!, ek.baseAddress!, pp.baseAddress! + layout.W_dec.lowerBound))
            parallelRanges(m, grain: 32) { r in
                let (gr, x, G, Gaux, cnt, er, ef, ek, W_dec) = box.value
                let dWdec = gr + layout.W_dec.lowerBound, dWenc = gr + layout.W_enc.lowerBound
                let db_enc = gr + layout.b_enc.lowerBound
                // One latent's entries in a block (at most one per row and kind): their g and x rows, f, ∂pre.
                let gRow = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: most)
                let xRow = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: most)
                let f = UnsafeMutablePointer<Float>.allocate(capacity: most), dpre = UnsafeMutablePointer<Float>.allocate(capacity: most)
                defer { gRow.deallocate(); xRow.deallocate(); f.deallocate(); dpre.deallocate() }
                for blk in blocks {
                    for j in r {
                        let e0 = cnt[blk * m + j], n = cnt[blk * m + j + 1] - e0
                        if n == 0 { continue }
                        for t in 0..<n {
                            let b = Int(er[e0 + t])
                            gRow[t] = (ek[e0 + t] == 0 ? G : Gaux!) + b * d
                            xRow[t] = x + b * d
                            f[t] = ef[e0 + t]
                        }
                        dotRows(W_dec + j * d, gRow, count: n, d, into: dpre)
                        var bsum: Float = 0
                        for t in 0..<n { bsum += dpre[t] }
                        addWeightedRows(dWdec + j * d, f, gRow, dWenc + j * d, dpre, xRow, count: n, d)
                        db_enc[j] += bsum
                    }
                }
            }
        } } } } } } }
    }

    /// After the last block and AuxK's products: Σ ∂pre·x̃_b = Σ ∂pre·x_b − (Σ ∂pre)·b_dec for every
    /// latent, so no [B,d] copy of x̃ is needed.
    func finishEncoderGradient(_ grads: inout [Float]) {
        let d = config.dIn
        withPointers(params, &grads) { p, g in
            let box = UncheckedSendable((p + layout.b_dec.lowerBound, g + layout.W_enc.lowerBound, g + layout.b_enc.lowerBound))
            parallelRanges(config.dSAE, grain: 256) { r in
                let (b_dec, dWenc, db_enc) = box.value
                for j in r { axpy(dWenc + j * d, -db_enc[j], b_dec, d) }
            }
        }
    }

    /// Reference backward through dense [B,m] matrices and sgemms (tests only).
    func denseBackward(_ sel: TopKSelection, rows B: Int, x: Tensor, G: [Float], Gaux: [Float], grads: inout [Float]) {
        let d = config.dIn, m = config.dSAE
        let b_dec = Array(params[layout.b_dec])
        let xt = (0 ..< B * d).map { x.storage[$0] - b_dec[$0 % d] }
        let sets = [(sel.main, G)] + (sel.aux.map { [($0.sparse(rows: B), Gaux)] } ?? [])
        withPointers(params, &grads) { p, gr in
            for (s, g) in sets {
                let f = s.dense(rows: B, m: m)
                var df = [Float](repeating: 0, count: B * m)
                f.withUnsafeBufferPointer { fb in g.withUnsafeBufferPointer { gb in df.withUnsafeMutableBufferPointer { dfb in
                    xt.withUnsafeBufferPointer { xb in
                        // ∂W_dec += fᵀ·g ; df = g·W_decᵀ masked to f > 0 ; ∂W_encᵀ += dfᵀ·x̃
                        sgemm(.transposed, .none, m: m, n: d, k: B, a: fb.baseAddress!, lda: m, b: gb.baseAddress!,
                              ldb: d, beta: 1, c: gr + layout.W_dec.lowerBound, ldc: d)
                        sgemm(.none, .transposed, m: B, n: m, k: d, a: gb.baseAddress!, lda: d,
                              b: p + layout.W_dec.lowerBound, ldb: d, c: dfb.baseAddress!, ldc: m)
                        for i in 0 ..< B * m where fb[i] <= 0 { dfb[i] = 0 }
                        sgemm(.transposed, .none, m: m, n: d, k: B, a: dfb.baseAddress!, lda: m, b: xb.baseAddress!,
                              ldb: d, beta: 1, c: gr + layout.W_enc.lowerBound, ldc: d)
                        addColumnSums(dfb.baseAddress!, rows: B, n: m, into: gr + layout.b_enc.lowerBound)
                    }
                } } }
            }
        }
    }
}

/// The active (b, j) entries of a batch bucketed by (row block, latent) with a counting sort, stable
/// in (kind, b) order so that sums over them are deterministic. Entries of latent j in block blk are
/// start[blk·m + j] ..< start[blk·m + j + 1]: their row, activation f and kind (0 = main, 1 = AuxK).
/// A block's rows (R·d floats of G and of x, R = 2^17/d) stay in L2 while the decode and the backward
/// go through its latents. (Bucketing by latent alone makes every entry fetch random rows of all of G
/// and x.)
struct EntryBuckets {
    let rowsPerBlock: Int, blocks: Int
    var start: [Int]
    var row: [Int32], f: [Float], kind: [UInt8]

    init(_ sets: [SparseActivations], rows B: Int, m: Int, d: Int) {
        let R = max(16, min(B, 131_072 / d)), nBlocks = (B + R - 1) / R
        rowsPerBlock = R; blocks = nBlocks
        let total = sets.reduce(0) { $0 + $1.count }
        var start = [Int](repeating: 0, count: nBlocks * m + 1)
        var row = [Int32](repeating: 0, count: total), f = [Float](repeating: 0, count: total)
        var kind = [UInt8](repeating: 0, count: total)
        // A block's keys (blk·m ..< blk·m + m) hold only its rows' entries, and its first entry is
        // the number of entries in the rows before it: blocks sort in parallel, each into its own range.
        start.withUnsafeMutableBufferPointer { st in row.withUnsafeMutableBufferPointer { rw in
        f.withUnsafeMutableBufferPointer { fb in kind.withUnsafeMutableBufferPointer { kd in
            let box = UncheckedSendable((st.baseAddress!, rw.baseAddress!, fb.baseAddress!, kd.baseAddress!))
            parallelRanges(nBlocks, grain: 1) { r in
                let (start, row, f, kind) = box.value
                let fill = UnsafeMutablePointer<Int>.allocate(capacity: m)
                defer { fill.deallocate() }
                for blk in r {
                    let lo = blk * R, hi = min(B, lo + R), key0 = blk * m
                    // Counts at start[key + 1], then running sums from the block's first entry.
                    for s in sets { for t in s.start[lo] ..< s.start[hi] { start[key0 + Int(s.idx[t]) + 1] += 1 } }
                    var e = sets.reduce(0) { $0 + $1.start[lo] }
                    for j in 0..<m { fill[j] = e; e += start[key0 + j + 1]; start[key0 + j + 1] = e }
                    for (k, s) in sets.enumerated() {
                        for b in lo..<hi {
                            for t in s.start[b] ..< s.start[b + 1] {
                                let j = Int(s.idx[t]), o = fill[j]
                                fill[j] += 1
                                row[o] = Int32(b); f[o] = s.val[t]; kind[o] = UInt8(k)
                            }
                        }
                    }
                }
            }
        } } } }
        self.start = start; self.row = row; self.f = f; self.kind = kind
    }
}

extension SparseActivations {
    /// Dense [rows, m] copy (reference paths and tests).
    func dense(rows: Int, m: Int) -> [Float] {
        var f = [Float](repeating: 0, count: rows * m)
        for b in 0..<rows { for s in start[b] ..< start[b + 1] { f[b * m + Int(idx[s])] = val[s] } }
        return f
    }
}

/// Keeps the positive entries of per-row top-k output (values > 0 after ReLU) in CSR form: rows
/// counted, then copied, in parallel.
func compactPositive(values: [Float], indices: [Int32], rows: Int, perRow: Int) -> SparseActivations {
    var start = [Int](repeating: 0, count: rows + 1)
    values.withUnsafeBufferPointer { v in start.withUnsafeMutableBufferPointer { st in
        let box = UncheckedSendable((v.baseAddress!, st.baseAddress!))
        parallelRanges(rows, grain: 256) { r in
            let (v, st) = box.value
            for b in r {
                var c = 0
                for t in b * perRow ..< (b + 1) * perRow { c &+= v[t] > 0 ? 1 : 0 }
                st[b + 1] = c
            }
        }
    } }
    for b in 0..<rows { start[b + 1] += start[b] }
    var idx = [Int32](repeating: 0, count: start[rows]), val = [Float](repeating: 0, count: start[rows])
    values.withUnsafeBufferPointer { v in indices.withUnsafeBufferPointer { ix in start.withUnsafeBufferPointer { st in
    idx.withUnsafeMutableBufferPointer { oi in val.withUnsafeMutableBufferPointer { ov in
        let box = UncheckedSendable((v.baseAddress!, ix.baseAddress!, st.baseAddress!, oi.baseAddress, ov.baseAddress))
        parallelRanges(rows, grain: 256) { r in
            let (v, ix, st, oi, ov) = box.value
            for b in r {
                var o = st[b]
                for t in b * perRow ..< (b + 1) * perRow where v[t] > 0 { oi![o] = ix[t]; ov![o] = v[t]; o += 1 }
            }
        }
    } } } } }
    return SparseActivations(start: start, idx: idx, val: val)
}
