import Tensors

// Unsorted top-k selection for AuxK, where k_aux (d/2) is large relative to the dead set: a
// quickselect finds the k-th largest value t, then one scan keeps everything above t and the
// values equal to t in index order (the same set as `topKRows`: ties go to the lower index).
// O(n) per row instead of the heap's O(n log k).

/// For each of `rows` rows: the latents `candidates[t]` (t < n) with the k largest values
/// `pre[b·m + candidates[t]]`, written to `outIdx`/`outVal` [rows, k] in candidate order.
func selectLargest(pre: UnsafePointer<Float>, m: Int, rows: Int, candidates: [Int32], k: Int,
                   outIdx: UnsafeMutablePointer<Int32>, outVal: UnsafeMutablePointer<Float>) {
    let n = candidates.count
    precondition(k >= 1 && k <= n, "selectLargest: k = \(k) of \(n) candidates")
    candidates.withUnsafeBufferPointer { cb in
        let box = UncheckedSendable((pre, cb.baseAddress!, outIdx, outVal))
        parallelRanges(rows, grain: 16) { r in
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
                  outIdx: UnsafeMutablePointer<Int32>, outVal: UnsafeMutablePointer<Float>) {
    precondition(k >= 1 && k <= m, "topKWithBias: k = \(k) of \(m)")
    let blockSize = max(1, m / (4 * k))
    let blocks = (m + blockSize - 1) / blockSize
    let box = UncheckedSendable((pre, bias, outIdx, outVal))
    parallelRanges(rows, grain: 8) { r in
        let (pre, bias, outIdx, outVal) = box.value
        var maxima = [Float](repeating: 0, count: blocks)
        var cand: [(Float, Int32)] = []
        cand.reserveCapacity(4 * k)
        for b in r {
            let row = pre + b * m
            maxima.withUnsafeMutableBufferPointer { mx in
                for blk in 0..<blocks {
                    let lo = blk * blockSize, hi = min(m, lo + blockSize)
                    var best = -Float.infinity
                    for j in lo..<hi { let v = row[j] + bias[j]; row[j] = v; best = max(best, v) }
                    mx[blk] = best
                }
            }
            let t = kthLargest(&maxima, k)
            cand.removeAll(keepingCapacity: true)
            for j in 0..<m where row[j] >= t { cand.append((row[j], Int32(j))) }
            cand.sort { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
            for s in 0..<k { outVal[b * k + s] = cand[s].0; outIdx[b * k + s] = cand[s].1 }
        }
    }
}
