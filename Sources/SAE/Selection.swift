import Tensors

// Unsorted top-k selection for AuxK, where k_aux (d/2) is large relative to the dead set: a
// quickselect finds the k-th largest value t, then one scan keeps everything above t and the
// values equal to t in index order (the same set as `topKRows`: ties go to the lower index).
// O(n) per row instead of the heap's O(n log k).

/// For each of `rows` rows: the latents `candidates[t]` (t < n) with the k largest values
/// `pre[b·m + candidates[t]]`, written to `outIdx`/`outVal` [rows, k] in candidate order.
func selectLargest(pre: UnsafePointer<Float>, m: Int, rows: Int, candidates: [Int32], k: Int,
                   outIdx: UnsafeMutablePointer<Int32>, outVal: UnsafeMutablePointer<Float>, parallel: Bool = true) {
    let n = candidates.count
    precondition(k >= 1 && k <= n, "selectLargest: k = \(k) of \(n) candidates")
    candidates.withUnsafeBufferPointer { cb in
        let box = UncheckedSendable((pre, cb.baseAddress!, outIdx, outVal))
        rowRanges(rows, grain: 16, parallel: parallel) { r in
            let (pre, cand, outIdx, outVal) = box.value
            var gathered = [Float](repeating: 0, count: n), scratch = gathered
            for b in r {
                let row = pre + b * m
                for t in 0..<n { gathered[t] = row[Int(cand[t])] }
                for t in 0..<n { scratch[t] = gathered[t] }
                let threshold = kthLargest(&scratch, k)
                var above = 0
                for t in 0..<n where gathered[t] > threshold { above += 1 }
                var equalBudget = k - above, o = b * k
                for t in 0..<n {
                    let v = gathered[t]
                    if v > threshold || (v == threshold && equalBudget > 0) {
                        if v == threshold { equalBudget -= 1 }
                        outIdx[o] = cand[t]; outVal[o] = v; o += 1
                    }
                }
            }
        }
    }
}

/// Per-row top-k of pre + bias for TopK, fused with the bias add (pre is updated in place to
/// pre + bias, which AuxK then reads). Same set and order as `topKRows` (descending, ties to the
/// lower index), but cheaper for k ≪ m: the k-th largest of the maxima of ~4k blocks is a lower bound
/// t on the row's k-th largest (k blocks each hold an element ≥ t), so only elements ≥ t (about 2k of
/// them) are ranked. One vectorisable pass over the row plus work on O(k) elements.
func topKWithBias(pre: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, rows: Int, m: Int, k: Int,
                  outIdx: UnsafeMutablePointer<Int32>, outVal: UnsafeMutablePointer<Float>, parallel: Bool = true) {
    precondition(k >= 1 && k <= m, "topKWithBias: k = \(k) of \(m)")
    let blockSize = max(1, m / (4 * k))
    let blocks = (m + blockSize - 1) / blockSize
    let box = UncheckedSendable((pre, bias, outIdx, outVal))
    rowRanges(rows, grain: 8, parallel: parallel) { r in
        let (pre, bias, outIdx, outVal) = box.value
        var maxima = [Float](repeating: 0, count: blocks)
        var cand: [(Float, Int32)] = []
        cand.reserveCapacity(4 * k)
        for b in r {
            let row = pre + b * m
            maxima.withUnsafeMutableBufferPointer { mx in
                for blk in 0..<blocks {
                    let lo = blk * blockSize, hi = min(m, lo + blockSize)
                    var j = lo
                    var acc = SIMD8<Float>(repeating: -.infinity)
                    while j + 8 <= hi {        // explicit SIMD: a float max-reduction is not auto-vectorised
                        let v = UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self)
                            + UnsafeRawPointer(bias + j).loadUnaligned(as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(row + j).storeBytes(of: v, as: SIMD8<Float>.self)
                        acc = pointwiseMax(acc, v)
                        j += 8
                    }
                    var best = acc.max()
                    while j < hi { let v = row[j] + bias[j]; row[j] = v; best = max(best, v); j += 1 }
                    mx[blk] = best
                }
            }
            let t = kthLargest(&maxima, k)
            cand.removeAll(keepingCapacity: true)
            var j = 0
            let tv = SIMD8<Float>(repeating: t)
            while j + 8 <= m {                 // skip groups of 8 with nothing ≥ t
                let v = UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self)
                if any(v .>= tv) { for i in j ..< j + 8 where row[i] >= t { cand.append((row[i], Int32(i))) } }
                j += 8
            }
            while j < m { if row[j] >= t { cand.append((row[j], Int32(j))) }; j += 1 }
            cand.sort { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
            for s in 0..<k { outVal[b * k + s] = cand[s].0; outIdx[b * k + s] = cand[s].1 }
        }
    }
}

/// `parallelRanges`, or the whole range on this thread when `parallel` is false (callers that are
/// already one of several workers).
@inline(__always)
func rowRanges(_ n: Int, grain: Int, parallel: Bool, _ body: (Range<Int>) -> Void) {
    if parallel { parallelRanges(n, grain: grain, body) } else if n > 0 { body(0 ..< n) }
}
