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
/// are scanned again, and only their elements ≥ t (about 2k) are ranked: one vectorised read of
/// the row plus O(k) work, all in per-thread scratch (no allocation per row). With `bias`,
/// pre ← pre + bias first (AuxK then reads the biased values).
func topKWithBias(pre: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, rows: Int, m: Int, k: Int,
                  outIdx: UnsafeMutablePointer<Int32>, outVal: UnsafeMutablePointer<Float>, parallel: Bool = true) {
    precondition(k >= 1 && k <= m, "topKWithBias: k = \(k) of \(m)")
    let blockSize = max(1, m / (4 * k))
    let blocks = (m + blockSize - 1) / blockSize       // ≥ k whatever m and k are
    let box = UncheckedSendable((pre, bias, outIdx, outVal))
    rowRanges(rows, grain: 8, parallel: parallel) { r in
        let (pre, bias, outIdx, outVal) = box.value
        let maxima = UnsafeMutablePointer<Float>.allocate(capacity: blocks)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: m)
        let candVal = UnsafeMutablePointer<Float>.allocate(capacity: m)
        let candIdx = UnsafeMutablePointer<Int32>.allocate(capacity: m)
        defer { maxima.deallocate(); scratch.deallocate(); candVal.deallocate(); candIdx.deallocate() }
        var ratio = Float.nan       // the previous row's k-th largest / Σ of its block maxima
        for b in r {
            let row = pre + b * m
            if let bias { for j in 0..<m { row[j] += bias[j] } }
            var sumMax: Float = 0
            for blk in 0..<blocks {
                let lo = blk * blockSize
                maxima[blk] = maximum(row + lo, min(blockSize, m - lo))
                sumMax += maxima[blk]
            }
            // Elements ≥ t of the blocks whose maximum reaches t, in index order (branch-free
            // compaction). If there are at least k of them, t ≤ the k-th largest, so they include the
            // top k. Rows of a batch look alike: the previous row's k-th largest, rescaled by the
            // rows' Σ of block maxima and lowered by 3%, usually is such a t and needs no selection;
            // otherwise t = the k-th largest block maximum, which always is (k blocks reach it).
            func gather(_ t: Float) -> Int {
                var p = 0
                for blk in 0..<blocks where maxima[blk] >= t {
                    let lo = blk * blockSize
                    for j in lo ..< min(m, lo + blockSize) {
                        let v = row[j]
                        candVal[p] = v; candIdx[p] = Int32(truncatingIfNeeded: j)
                        p += v >= t ? 1 : 0
                    }
                }
                return p
            }
            var p = ratio.isFinite && sumMax > 0 ? gather(0.97 * ratio * sumMax) : 0
            if p < k {
                scratch.update(from: maxima, count: blocks)
                p = gather(kthLargest(scratch, count: blocks, k))
            }
            // The exact k-th largest among the candidates; keep everything above it and, in index
            // order, as many of its ties as fit.
            scratch.update(from: candVal, count: p)
            let kth = kthLargest(scratch, count: p, k)
            ratio = sumMax > 0 ? kth / sumMax : .nan
            var equalBudget = k
            for c in 0..<p where candVal[c] > kth { equalBudget -= 1 }
            var o = b * k
            for c in 0..<p {
                let v = candVal[c]
                if v > kth || (v == kth && equalBudget > 0) {
                    if v == kth { equalBudget -= 1 }
                    outVal[o] = v; outIdx[o] = candIdx[c]; o += 1
                }
            }
        }
    }
}

/// max of x[0..<n] (n ≥ 1), eight lanes at a time.
@inline(__always)
func maximum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var j = 0
    var best = -Float.infinity
    if n >= 8 {
        let raw = UnsafeRawPointer(x)
        var acc = raw.loadUnaligned(as: SIMD8<Float>.self)
        j = 8
        while j + 8 <= n {
            let v = raw.loadUnaligned(fromByteOffset: 4 * j, as: SIMD8<Float>.self)
            acc.replace(with: v, where: v .> acc)      // a compare and a blend (pointwiseMax goes lane by lane)
            j += 8
        }
        // Halving the lanes (SIMD's own .max() is a branchy lane loop).
        var a4 = acc.lowHalf
        a4.replace(with: acc.highHalf, where: acc.highHalf .> a4)
        best = max(max(a4[0], a4[1]), max(a4[2], a4[3]))
    }
    while j < n { best = max(best, x[j]); j += 1 }
    return best
}

/// `parallelRanges`, or the whole range on this thread when `parallel` is false (callers that are
/// already one of several workers).
@inline(__always)
func rowRanges(_ n: Int, grain: Int, parallel: Bool, _ body: (Range<Int>) -> Void) {
    if parallel { parallelRanges(n, grain: grain, body) } else if n > 0 { body(0 ..< n) }
}

/// The n-th largest (1-based) of `a` by quickselect; reorders `a`.
func kthLargest(_ a: inout [Float], _ n: Int) -> Float {
    let count = a.count
    return a.withUnsafeMutableBufferPointer { kthLargest($0.baseAddress!, count: count, n) }
}

/// The n-th largest (1-based) of a[0..<count] by quickselect (Hoare partition); reorders a.
func kthLargest(_ a: UnsafeMutablePointer<Float>, count: Int, _ n: Int) -> Float {
    precondition(n >= 1 && n <= count, "kthLargest: \(n) of \(count)")
    var lo = 0, hi = count - 1
    let target = n - 1
    while lo < hi {
        let pivot = a[(lo + hi) / 2]
        var i = lo, j = hi
        while i <= j {
            while a[i] > pivot { i += 1 }
            while a[j] < pivot { j -= 1 }
            if i <= j { let t = a[i]; a[i] = a[j]; a[j] = t; i += 1; j -= 1 }
        }
        if target <= j { hi = j } else if target >= i { lo = i } else { return a[target] }
    }
    return a[target]
}
