import Tensors

// Row-wise selections for TopK and AuxK that return the same set as `topKRows` (ties go to the lower
// index) without its heap: the k-th largest value t is found first, then one scan keeps everything
// above t and the values equal to t in index order. TopK bounds t from block maxima; AuxK (k_aux = d/2
// is large against the dead set) finds it by a radix select on the bit patterns of the positive values.

/// For each of `rows` rows: of the latents `candidates[t]`, the (at most) k with the largest positive
/// values `pre[b·m + candidates[t]]`, written to `outIdx`/`outVal` [rows, k] in candidate order, unused
/// slots as value 0. Non-positive values are dropped first: after the ReLU they contribute nothing,
/// so the kept set equals "top-k, then keep the positive ones" and the selection runs on fewer values.
func selectLargest(pre: UnsafePointer<Float>, m: Int, rows: Int, candidates: [Int32], k: Int,
                   outIdx: UnsafeMutablePointer<Int32>, outVal: UnsafeMutablePointer<Float>, parallel: Bool = true) {
    let n = candidates.count
    precondition(k >= 1 && k <= n, "selectLargest: k = \(k) of \(n) candidates")
    candidates.withUnsafeBufferPointer { cb in
        let box = UncheckedSendable((pre, cb.baseAddress!, outIdx, outVal))
        rowRanges(rows, grain: 16, parallel: parallel) { r in
            let (pre, cand, outIdx, outVal) = box.value
            var value = [Float](repeating: 0, count: n), latent = [Int32](repeating: 0, count: n)
            var bits = [UInt32](repeating: 0, count: n), hist = [Int](repeating: 0, count: 256)
            var scratch: [Float] = []
            for b in r {
                let row = pre + b * m
                var p = 0
                for t in 0..<n {                       // branch-free compaction of the positive values
                    let v = row[Int(cand[t])]
                    value[p] = v; latent[p] = cand[t]
                    p += v > 0 ? 1 : 0
                }
                var o = b * k
                if p <= k {
                    for t in 0..<p { outIdx[o] = latent[t]; outVal[o] = value[t]; o += 1 }
                    for _ in p..<k { outIdx[o] = 0; outVal[o] = 0; o += 1 }
                    continue
                }
                // Positive floats order as their bit patterns: a two-level radix select (exponent byte,
                // then the top mantissa byte within the exponent that holds the k-th largest) leaves a
                // handful of values for the final quickselect. Histogram passes have no unpredictable branches.
                for t in 0..<p { bits[t] = value[t].bitPattern }
                var need = k
                var members = p
                for level in 0..<2 {
                    let shift: UInt32 = level == 0 ? 23 : 15
                    for i in 0..<256 { hist[i] = 0 }
                    for t in 0..<members { hist[Int((bits[t] >> shift) & 0xFF)] += 1 }
                    var bucket = 255
                    while hist[bucket] < need { need -= hist[bucket]; bucket -= 1 }
                    // Keep only that bucket's members (compacted in place, order kept).
                    var q = 0
                    for t in 0..<members {
                        let keep = (bits[t] >> shift) & 0xFF == UInt32(bucket)
                        bits[q] = bits[t]; q += keep ? 1 : 0
                    }
                    members = q
                }
                scratch.removeAll(keepingCapacity: true)
                for t in 0..<members { scratch.append(Float(bitPattern: bits[t])) }
                let threshold = kthLargest(&scratch, need)
                var equalBudget = k
                for t in 0..<p where value[t] > threshold { equalBudget -= 1 }
                for t in 0..<p {
                    let v = value[t]
                    if v > threshold || (v == threshold && equalBudget > 0) {
                        if v == threshold { equalBudget -= 1 }
                        outIdx[o] = latent[t]; outVal[o] = v; o += 1
                    }
                }
            }
        }
    }
}

/// Per-row top-k for TopK: the same set as `topKRows` (ties to the lower index), written in index order,
/// but cheaper for k ≪ m. The k-th largest of the maxima of ~4k blocks is a lower bound t on the
/// row's k-th largest (k blocks each hold an element ≥ t), so only the blocks whose maximum reaches t
/// are scanned again, and only their elements ≥ t (about 2k) are ranked: one vectorisable read of
/// the row plus O(k) work. With `bias`, pre ← pre + bias first, in the same pass (AuxK reads it).
func topKWithBias(pre: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, rows: Int, m: Int, k: Int,
                  outIdx: UnsafeMutablePointer<Int32>, outVal: UnsafeMutablePointer<Float>, parallel: Bool = true) {
    precondition(k >= 1 && k <= m, "topKWithBias: k = \(k) of \(m)")
    let blockSize = max(1, m / (4 * k))
    let blocks = (m + blockSize - 1) / blockSize
    let box = UncheckedSendable((pre, bias, outIdx, outVal))
    rowRanges(rows, grain: 8, parallel: parallel) { r in
        let (pre, bias, outIdx, outVal) = box.value
        var maxima = [Float](repeating: 0, count: blocks), sorted = maxima
        var cand: [(Float, Int32)] = [], scratch: [Float] = []
        cand.reserveCapacity(4 * k); scratch.reserveCapacity(4 * k)
        for b in r {
            let row = pre + b * m
            if let bias { for j in 0..<m { row[j] += bias[j] } }
            maxima.withUnsafeMutableBufferPointer { mx in
                for blk in 0..<blocks {
                    let lo = blk * blockSize, hi = min(m, lo + blockSize)
                    // Eight independent running maxima so the loop vectorises (a single float
                    // max-reduction would not be reordered by the compiler).
                    var j = lo
                    var a0 = -Float.infinity, a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0
                    while j + 8 <= hi {
                        a0 = row[j] > a0 ? row[j] : a0; a1 = row[j + 1] > a1 ? row[j + 1] : a1
                        a2 = row[j + 2] > a2 ? row[j + 2] : a2; a3 = row[j + 3] > a3 ? row[j + 3] : a3
                        a4 = row[j + 4] > a4 ? row[j + 4] : a4; a5 = row[j + 5] > a5 ? row[j + 5] : a5
                        a6 = row[j + 6] > a6 ? row[j + 6] : a6; a7 = row[j + 7] > a7 ? row[j + 7] : a7
                        j += 8
                    }
                    var best = max(max(max(a0, a1), max(a2, a3)), max(max(a4, a5), max(a6, a7)))
                    while j < hi { best = max(best, row[j]); j += 1 }
                    mx[blk] = best
                }
            }
            for i in 0..<blocks { sorted[i] = maxima[i] }
            let t = kthLargest(&sorted, k)
            cand.removeAll(keepingCapacity: true)
            for blk in 0..<blocks where maxima[blk] >= t {
                for j in (blk * blockSize) ..< min(m, (blk + 1) * blockSize) where row[j] >= t {
                    cand.append((row[j], Int32(j)))
                }
            }
            // The exact k-th largest among the candidates, then the set in index order (no sort).
            scratch.removeAll(keepingCapacity: true)
            for c in cand { scratch.append(c.0) }
            let kth = kthLargest(&scratch, k)
            var equalBudget = k
            for c in cand where c.0 > kth { equalBudget -= 1 }
            var o = b * k
            for c in cand where c.0 > kth || (c.0 == kth && equalBudget > 0) {
                if c.0 == kth { equalBudget -= 1 }
                outVal[o] = c.0; outIdx[o] = c.1; o += 1
            }
        }
    }
}

/// `parallelRanges`, or the whole range on this thread when `parallel` is false (callers that are
/// already one of several workers).
@inline(__always)
func rowRanges(_ n: Int, grain: Int, parallel: Bool, _ body: (Range<Int>) -> Void) {
    if parallel { parallelRanges(n, grain: grain, body) } else if n > 0 { body(0 ..< n) }
}
