import Tensors

// BatchTopK (Bussmann et al. 2024): the k·B largest pre-activations of the whole batch, from each
// row's top candidates (the encoder and the per-row selection are TopK.swift's).

extension SAE {
    /// BatchTopK selection: the k·B largest pre-activations over the whole batch (ties to the lower
    /// flat index), kept where positive; returns the rows' active latents and the smallest kept
    /// activation. From each row's top `perRow` (= 4k) candidates, in index order: T = the k·B-th
    /// largest candidate is ≤ the true threshold. A row whose smallest candidate is ≥ T may hold more
    /// entries ≥ T; such rows (rare) are encoded again — the same chunk and sgemm call, so the same
    /// bits — and all their entries ≥ T join. Every row then holds all its entries ≥ T, and the
    /// selection over the candidates is the selection over the batch. Memory O(B·k), not O(B·m).
    func batchTopKSelect(_ x: UnsafePointer<Float>, rows B: Int, candidates val: [Float], _ idx: [Int32], perRow: Int,
                         chunk: Int) -> (SparseActivations, Float?) {
        let d = config.dIn, m = config.dSAE, keep = config.k * B
        var values = val
        let bound = keep >= values.count ? -Float.infinity : kthLargest(&values, keep)
        // Per row, its candidates ≥ bound (flat index order throughout).
        var rowVal = [[Float]](repeating: [], count: B), rowIdx = [[Int32]](repeating: [], count: B)
        var overflowChunks = Set<Int>(), overflow = [Bool](repeating: false, count: B)
        for b in 0..<B {
            for t in (b * perRow) ..< ((b + 1) * perRow) where val[t] >= bound && val[t] > 0 {
                rowVal[b].append(val[t]); rowIdx[b].append(idx[t])
            }
            if perRow < m && rowVal[b].count == perRow { overflowChunks.insert(b / chunk); overflow[b] = true }
        }
        let tile = min(m, Self.encoderLatentBlock)
        var pre = [Float](repeating: 0, count: chunk * tile), xt = [Float](repeating: 0, count: chunk * d)
        for c in overflowChunks.sorted() {
            let c0 = c * chunk, n = min(chunk, B - c0)
            for b in c0 ..< c0 + n where rowVal[b].count == perRow { rowVal[b] = []; rowIdx[b] = [] }
            pre.withUnsafeMutableBufferPointer { pb in xt.withUnsafeMutableBufferPointer { xb in
                forEachEncoderTile(x + c0 * d, rows: n, xt: xb.baseAddress!, pre: pb.baseAddress!) { lo, nb in
                    for b in c0 ..< c0 + n where overflow[b] {
                        for j in 0..<nb where pb[(b - c0) * nb + j] >= bound && pb[(b - c0) * nb + j] > 0 {
                            rowVal[b].append(pb[(b - c0) * nb + j]); rowIdx[b].append(Int32(lo + j))
                        }
                    }
                }
            } }
        }
        // The exact keep-th largest of what is left, then everything above it and, in flat order,
        // as many of its ties as fit.
        var all = rowVal.flatMap { $0 }
        let t = keep >= all.count ? -Float.infinity : kthLargest(&all, keep)
        var ties = keep
        for r in rowVal { for v in r where v > t { ties -= 1 } }
        var s = SparseActivations(start: [0], idx: [], val: [])
        var minKept: Float? = nil
        for b in 0..<B {
            for (v, j) in zip(rowVal[b], rowIdx[b]) where v > t || (v == t && ties > 0) {
                if v == t { ties -= 1 }
                if v > 0 {
                    s.idx.append(j); s.val.append(v)
                    minKept = min(minKept ?? v, v)
                }
            }
            s.start.append(s.idx.count)
        }
        return (s, minKept)
    }
}
