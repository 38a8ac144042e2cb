// A sum over ranks whose rounding does not depend on the number of ranks (issue 6: from one
// activation cache, -np 1, 2, 4 train bitwise the same SAE).
//
// MPI_Allreduce adds the ranks' buffers in an order of its choosing that changes with N, so float
// sums, and after enough Adam steps the weights, differ between -np 1 and -np 4. Here every element
// is summed in one fixed tree: a complete binary tree over the ranks in rank order, adjacent pairs
// first, e.g. for N = 4:   (c0 + c1) + (c2 + c3).
//
//   Reduce-scatter by recursive halving: at step s = 0, 1, …, log2 N − 1 rank r and its partner
//   r ^ 2^s own the same segment; each keeps one half (the lower if bit s of r is 0), sends the other
//   and adds the partner's copy of its half. IEEE addition is commutative (a + b = b + a bitwise), so
//   both partners would get the same bits, and after step s a kept element holds the sum of the 2^(s+1)
//   adjacent ranks' subtree. After log2 N steps rank r owns 1/N of the buffer with the full tree sum.
//   Allgather by recursive doubling (the same pairs, steps in reverse) copies the segments back.
//
// Each rank sends (N−1)/N of the buffer per phase, as a ring allreduce does, in 2·log2 N messages.
// `PairwiseSum` computes the lower levels of the same tree on each rank (its aligned block of 2^j
// micro-batches), so the result is one tree over all micro-batches whatever N is.

extension Communicator {
    /// Element-wise sum over all ranks, in place on every rank, with the fixed summation tree above:
    /// bitwise the same result on every rank, and for a given set of leaves the same bits for any
    /// power-of-two number of ranks. Requires a power-of-two `size`. Works through the buffer in
    /// buckets of `bucketBytes` (one reduce-scatter + allgather each), so the scratch space stays small;
    /// bucketing does not change any element's tree.
    public func treeAllreduce(_ buffer: UnsafeMutableBufferPointer<Float>, bucketBytes: Int = 4 << 20) {
        let n = size
        precondition(n > 0 && n & (n - 1) == 0, "treeAllreduce needs a power-of-two number of ranks, not \(n)")
        guard n > 1, let base = buffer.baseAddress else { return }
        let steps = n.trailingZeroBitCount
        let bucket = max(n, bucketBytes / MemoryLayout<Float>.stride)
        var scratch = [Float](repeating: 0, count: (bucket + 1) / 2)
        scratch.withUnsafeMutableBufferPointer { tmp in
            var b0 = 0
            while b0 < buffer.count {
                let b1 = min(buffer.count, b0 + bucket)
                // segments[s]: the range this rank and its step-s partner share before step s.
                var segments: [Range<Int>] = []
                var seg = b0 ..< b1
                for s in 0..<steps {
                    segments.append(seg)
                    let (keep, give) = halves(seg, lowerHalf: (rank >> s) & 1 == 0)
                    sendRecv(UnsafeBufferPointer(start: base + give.lowerBound, count: give.count),
                             UnsafeMutableBufferPointer(start: tmp.baseAddress!, count: keep.count), partner: rank ^ (1 << s))
                    let k = base + keep.lowerBound, t = tmp.baseAddress!
                    for i in 0..<keep.count { k[i] += t[i] }
                    seg = keep
                }
                for s in (0..<steps).reversed() {
                    let (keep, give) = halves(segments[s], lowerHalf: (rank >> s) & 1 == 0)
                    sendRecv(UnsafeBufferPointer(start: base + keep.lowerBound, count: keep.count),
                             UnsafeMutableBufferPointer(start: base + give.lowerBound, count: give.count),
                             partner: rank ^ (1 << s))
                }
                b0 = b1
            }
        }
    }

    /// `treeAllreduce` of a whole array.
    public func treeAllreduce(_ array: inout [Float], bucketBytes: Int = 4 << 20) {
        array.withUnsafeMutableBufferPointer { treeAllreduce($0, bucketBytes: bucketBytes) }
    }
}

/// The two halves of `r` (the lower one one element shorter when the count is odd): the one this
/// rank keeps and the one it hands its partner. Both partners split the same range identically.
private func halves(_ r: Range<Int>, lowerHalf: Bool) -> (keep: Range<Int>, give: Range<Int>) {
    let mid = r.lowerBound + r.count / 2
    let lower = r.lowerBound ..< mid, upper = mid ..< r.upperBound
    return lowerHalf ? (lower, upper) : (upper, lower)
}
