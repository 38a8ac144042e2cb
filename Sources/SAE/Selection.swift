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
