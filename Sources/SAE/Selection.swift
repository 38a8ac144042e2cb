import Tensors

// Row-wise selections for TopK, BatchTopK and AuxK that return the same set as `topKRows` (ties go to
// the lower index), restricted to positive values, without its heap: a threshold below the k-th
// largest first, then the values above it in index order, and among those the k-th largest by
// quickselect (`StreamingTopK`). AuxK (k_aux = d/2 is large against the dead set) finds its k-th
// largest by a radix select on the bit patterns of the positive values (`selectLargest`).

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
            let value = UnsafeMutablePointer<Float>.allocate(capacity: 2 * n), scratch = value + n
            let latent = UnsafeMutablePointer<Int32>.allocate(capacity: n), bits = UnsafeMutablePointer<UInt32>.allocate(capacity: n)
            let hist = UnsafeMutablePointer<Int>.allocate(capacity: 256)
            defer { value.deallocate(); latent.deallocate(); bits.deallocate(); hist.deallocate() }
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
                for t in 0..<members { scratch[t] = Float(bitPattern: bits[t]) }
                let threshold = kthLargest(scratch, count: members, need)
                _ = keepTop(k, of: value, latent, p, above: threshold, ties: true, lo: 0, into: value, latent)
                (outVal + o).update(from: value, count: k); (outIdx + o).update(from: latent, count: k)
            }
        }
    }
}

/// Per-row top-k over values that arrive block by block of latents, in index order (the encoder's
/// L2-sized tiles), keeping the same set as `topKRows` (ties to the lower index) restricted to the
/// positive values. Row r holds, in index order, every value above its threshold t_r. Two kinds of
/// threshold:
/// - proven: 0 at first (only positives survive the ReLU); when the list is full it shrinks to its
///   own top k and t_r becomes their smallest. Those k are in the row, so its k-th largest is ≥ t_r,
///   and a later value equal to t_r loses the tie to an earlier one: only values > t_r may join.
/// - estimated: the caller starts t_r > 0 from rows it has already selected. If at least k values
///   beat it, the row's k-th largest is > t_r and the list holds the exact top k; if not, `finish`
///   says so and the caller selects the row again from a proven start. The estimate decides only
///   how much work the row costs, never what it selects.
struct StreamingTopK {
    let k: Int, capacity: Int
    let value: UnsafeMutablePointer<Float>      // [rows, capacity]
    let index: UnsafeMutablePointer<Int32>      // [rows, capacity]
    let count: UnsafeMutablePointer<Int>        // [rows]
    let threshold: UnsafeMutablePointer<Float>  // [rows]

    /// Capacity of a row's list: room for k plus as many again before a shrink.
    static func capacity(k: Int) -> Int { 2 * k + 64 }

    /// Starts row r empty with threshold t (0: proven; > 0: an estimate).
    @inline(__always)
    func start(row r: Int, threshold t: Float) { count[r] = 0; threshold[r] = t }

    /// Scratch floats a thread needs for rows whose tiles have up to `tile` latents.
    func scratchCount(tile: Int) -> Int { max(capacity, tile) }

    /// Offers row r's values v[0..<n], latents lo..<lo+n. `scratch` holds `scratchCount` floats.
    @inline(__always)
    func offer(row r: Int, _ v: UnsafePointer<Float>, _ n: Int, lo: Int, scratch: UnsafeMutablePointer<Float>) {
        let vals = value + r * capacity, idxs = index + r * capacity
        var t = threshold[r], c = count[r]
        if c == 0 && t == 0 {
            // A proven start: about half of the row's first values are positive. One selection over
            // those gives the tile's own top k and a useful threshold at once (filling the list
            // and shrinking it, capacity − k at a time, would take several).
            var p = 0
            for j in 0..<n { let x = v[j]; scratch[p] = x; p &+= x > 0 ? 1 : 0 }
            t = p > k ? kthLargest(scratch, count: p, k) : 0
            c = keepTop(k, of: v, nil, n, above: t, ties: p > k, lo: lo, into: vals, idxs)
            threshold[r] = t; count[r] = c
            return
        }
        var tv = SIMD8<Float>(repeating: t)
        let raw = UnsafeRawPointer(v)
        var i = 0
        // Adds v[j] (latent lo + j) if it still beats t, shrinking a full list first.
        @inline(__always) func add(_ x: Float, _ j: Int) {
            if !(x > t) { return }
            if c == capacity {
                (c, t) = shrink(vals, idxs, c, scratch: scratch)
                tv = SIMD8(repeating: t)
                if !(x > t) { return }
            }
            vals[c] = x; idxs[c] = Int32(truncatingIfNeeded: lo &+ j); c &+= 1
        }
        // Eight at a time: most blocks of eight hold nothing above t (one compare, one test); in the
        // others, only the lanes that beat t are visited (bits of the compare's mask).
        let lane = SIMD8<Int32>(1, 2, 4, 8, 16, 32, 64, 128)
        @inline(__always) func lanes(_ x: SIMD8<Float>, _ i: Int) {
            var bits = (unsafeBitCast(x .> tv, to: SIMD8<Int32>.self) & lane).wrappedSum()
            while bits != 0 {
                let l = bits.trailingZeroBitCount
                bits &= bits &- 1
                add(x[l], i &+ l)
            }
        }
        while i &+ 16 <= n {          // sixteen per test
            let x0 = raw.loadUnaligned(fromByteOffset: 4 &* i, as: SIMD8<Float>.self)
            let x1 = raw.loadUnaligned(fromByteOffset: 4 &* i &+ 32, as: SIMD8<Float>.self)
            if any((x0 .> tv) .| (x1 .> tv)) { lanes(x0, i); lanes(x1, i &+ 8) }
            i &+= 16
        }
        if i &+ 8 <= n {
            let x = raw.loadUnaligned(fromByteOffset: 4 &* i, as: SIMD8<Float>.self)
            if any(x .> tv) { lanes(x, i) }
            i &+= 8
        }
        while i < n { add(v[i], i); i &+= 1 }
        threshold[r] = t; count[r] = c
    }

    /// Row r's top k (fewer if fewer values are positive), in index order, to out[0..<k]; unused
    /// slots get value 0. Returns the k-th largest, or nil when fewer than k values beat the start:
    /// from an estimated start the row must then be selected again (`started` is that start).
    @discardableResult
    func finish(row r: Int, started: Float, outVal: UnsafeMutablePointer<Float>, outIdx: UnsafeMutablePointer<Int32>,
                scratch: UnsafeMutablePointer<Float>) -> Float? {
        let vals = value + r * capacity, idxs = index + r * capacity
        var c = count[r], kth: Float? = nil
        if c >= k {
            if c > k { (c, _) = shrink(vals, idxs, c, scratch: scratch) }
            kth = vals[0]
            for t in 1..<c { kth = min(kth!, vals[t]) }
        } else if started > 0 {
            return nil
        }
        outVal.update(from: vals, count: c); outIdx.update(from: idxs, count: c)
        (outVal + c).update(repeating: 0, count: k - c); (outIdx + c).update(repeating: 0, count: k - c)
        return kth
    }

    /// Keeps the top k of a list of c > k (values above the k-th largest, then its ties in index
    /// order), order kept; returns k and the k-th largest.
    private func shrink(_ vals: UnsafeMutablePointer<Float>, _ idxs: UnsafeMutablePointer<Int32>, _ c: Int,
                        scratch: UnsafeMutablePointer<Float>) -> (count: Int, kth: Float) {
        scratch.update(from: vals, count: c)
        let kth = kthLargest(scratch, count: c, k)
        let o = keepTop(k, of: vals, idxs, c, above: kth, ties: true, lo: 0, into: vals, idxs)
        return (o, kth)
    }
}

/// Writes to vals/idxs, in order, the values of v[0..<n] above `kth` and, if `ties`, as many equal
/// to it as make k in all; returns how many. Indices come from vi, or are lo + j without it. v may be
/// vals itself (the writes never pass the reads). No branches: kept or not, each value is written
/// and the count moves on only if kept (comparisons as 0/1 integers).
@inline(__always)
func keepTop(_ k: Int, of v: UnsafePointer<Float>, _ vi: UnsafePointer<Int32>?, _ n: Int, above kth: Float, ties: Bool,
             lo: Int, into vals: UnsafeMutablePointer<Float>, _ idxs: UnsafeMutablePointer<Int32>) -> Int {
    @inline(__always) func bit(_ b: Bool) -> Int { Int(unsafeBitCast(b, to: UInt8.self)) }
    var budget = 0
    if ties {
        // k − #(values above kth): eight compares at a time.
        var above = SIMD8<Int32>(), j = 0
        let raw = UnsafeRawPointer(v), kv = SIMD8<Float>(repeating: kth)
        while j + 8 <= n {
            above &-= unsafeBitCast(raw.loadUnaligned(fromByteOffset: 4 * j, as: SIMD8<Float>.self) .> kv, to: SIMD8<Int32>.self)
            j += 8
        }
        budget = k - Int(above.wrappedSum())
        while j < n { budget &-= bit(v[j] > kth); j += 1 }
    }
    var o = 0
    for j in 0..<n {
        let x = v[j], tie = bit(x == kth) & bit(budget > 0)
        vals[o] = x; idxs[o] = vi?[j] ?? Int32(truncatingIfNeeded: lo &+ j)
        o &+= bit(x > kth) | tie
        budget &-= tie
    }
    return o
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
