// A sum over ranks whose rounding does not depend on the number of ranks (issue 6: from one
// activation cache, -np 1, 2, 4 train bitwise the same SAE).
//
// MPI_Allreduce adds the ranks' buffers in an order of its choosing that changes with N, so float
// sums, and after enough Adam steps the weights, differ between -np 1 and -np 4. Here every element
// is summed in one fixed tree: a complete binary tree over the ranks in rank order, adjacent pairs
// first, e.g. for N = 4:   (c0 + c1) + (c2 + c3).
//
//   Reduce-scatter by recursive halving: at step s = 0, 1, …, log2 N − 1 rank r and its partner
//   r ^ 2^s share the same pieces (`BufferShards`); each keeps one half of them (the lower if bit s
//   of r is 0), sends the other and adds the partner's copy of its half. IEEE addition is
//   commutative (a + b = b + a bitwise), so both partners would get the same bits, and after step s a
//   kept element holds the sum of the 2^(s+1) adjacent ranks' subtree. After log2 N steps rank r
//   holds its piece with the full tree sum: where the cut points fall does not change any bit.
//   Allgather by recursive doubling (the same pairs, steps in reverse) copies the pieces back.
//
// Each rank sends (N−1)/N of the buffer per phase, as a ring allreduce does, in 2·log2 N messages.
// `PairwiseSum` computes the lower levels of the same tree on each rank (its aligned block of 2^j
// micro-batches), so the result is one tree over all micro-batches whatever N is.
//
// Sharded optimizer state (ZeRO-1) uses the two halves apart: gradients are reduce-scattered, each
// rank updates its piece of the parameters, and the parameters are allgathered.

extension Communicator {
    /// Element-wise sum over all ranks into each rank's own piece of `buffer` (`shards.piece(of:
    /// rank)`); the rest of `buffer` is left partly summed. With tree shards: the fixed tree above,
    /// moving at most `chunkBytes` per message so the scratch space stays small. Otherwise (N not a
    /// power of two): MPI's allreduce of the whole buffer.
    public func reduceScatter(_ buffer: UnsafeMutableBufferPointer<Float>, _ shards: BufferShards,
                              chunkBytes: Int = 2 << 20) {
        precondition(shards.ranks == size && shards.bounds.last == buffer.count, "reduceScatter: shards of another buffer or job")
        guard size > 1, let base = buffer.baseAddress else { return }
        guard shards.tree else { allreduce(buffer, .sum); return }
        let chunk = max(1, chunkBytes / MemoryLayout<Float>.stride)
        var scratch = [Float](repeating: 0, count: min(chunk, buffer.count))
        scratch.withUnsafeMutableBufferPointer { tmp in
            let t = tmp.baseAddress!
            for (s, (keep, give)) in shards.halvingSegments(rank: rank).enumerated() {
                let k = shards.elements(keep), g = shards.elements(give)
                // The partner's give is this rank's keep, so both make the same number of calls.
                var o = 0
                while o < max(k.count, g.count) {
                    let ns = max(0, min(chunk, g.count - o)), nr = max(0, min(chunk, k.count - o))
                    sendRecv(UnsafeBufferPointer(start: base + g.lowerBound + o, count: ns),
                             UnsafeMutableBufferPointer(start: t, count: nr), partner: rank ^ (1 << s))
                    let kp = base + k.lowerBound + o
                    for i in 0..<nr { kp[i] += t[i] }
                    o += chunk
                }
            }
        }
    }

    /// Every rank's piece of `buffer` copied to every rank (the inverse of `reduceScatter`'s
    /// partition): recursive doubling with tree shards, MPI's allgather otherwise.
    public func allgather(_ buffer: UnsafeMutableBufferPointer<Float>, _ shards: BufferShards) {
        precondition(shards.ranks == size && shards.bounds.last == buffer.count, "allgather: shards of another buffer or job")
        guard size > 1, let base = buffer.baseAddress else { return }
        if shards.tree {
            for (s, (keep, give)) in shards.halvingSegments(rank: rank).enumerated().reversed() {
                let k = shards.elements(keep), g = shards.elements(give)
                sendRecv(UnsafeBufferPointer(start: base + k.lowerBound, count: k.count),
                         UnsafeMutableBufferPointer(start: base + g.lowerBound, count: g.count), partner: rank ^ (1 << s))
            }
        } else {
            // Rank p owns piece p, so rank order is buffer order; the send buffer must not overlap.
            let mine = Array(UnsafeBufferPointer(rebasing: buffer[shards.piece(of: rank)]))
            let counts = shards.pieceCounts
            mine.withUnsafeBufferPointer { allgather($0, counts: counts, buffer) }
        }
    }

    /// Each rank's `piece` (its part of a buffer cut by `shards`) assembled in buffer order in
    /// `root`'s `full`; other ranks pass an empty `full`. Piece by piece, straight into place.
    public func gather<T: CollectiveScalar>(_ piece: UnsafeBufferPointer<T>, _ shards: BufferShards,
                                           into full: UnsafeMutableBufferPointer<T>, root: Int = 0) {
        precondition(piece.count == shards.piece(of: rank).count, "gather: this rank's piece has the wrong size")
        precondition(rank != root || full.count == shards.bounds.last, "gather: the root's buffer has the wrong size")
        for p in 0..<shards.ranks {
            let owner = shards.owners[p], e = shards.elements(p ..< p + 1)
            if rank == root {
                let into = UnsafeMutableBufferPointer(rebasing: full[e])
                if owner == root { _ = into.initialize(from: piece) }
                else { sendRecv(UnsafeBufferPointer(start: nil, count: 0), into, partner: owner) }
            } else if rank == owner {
                sendRecv(piece, UnsafeMutableBufferPointer(start: nil, count: 0), partner: root)
            }
        }
    }

    /// Element-wise sum over all ranks, in place on every rank, with the fixed summation tree above:
    /// bitwise the same result on every rank, and for a given set of leaves the same bits for any
    /// power-of-two number of ranks. Requires a power-of-two `size`. Works through the buffer in
    /// buckets of `bucketBytes` (one reduce-scatter + allgather each), so the scratch space stays small;
    /// bucketing does not change any element's tree.
    public func treeAllreduce(_ buffer: UnsafeMutableBufferPointer<Float>, bucketBytes: Int = 4 << 20) {
        let n = size
        precondition(n > 0 && n & (n - 1) == 0, "treeAllreduce needs a power-of-two number of ranks, not \(n)")
        guard n > 1 else { return }
        let bucket = max(n, bucketBytes / MemoryLayout<Float>.stride)
        var b0 = 0
        while b0 < buffer.count {
            let b1 = min(buffer.count, b0 + bucket)
            let part = UnsafeMutableBufferPointer(rebasing: buffer[b0 ..< b1])
            let shards = BufferShards(count: part.count, ranks: n)
            reduceScatter(part, shards, chunkBytes: bucketBytes / 2)
            allgather(part, shards)
            b0 = b1
        }
    }

    /// `treeAllreduce` of a whole array.
    public func treeAllreduce(_ array: inout [Float], bucketBytes: Int = 4 << 20) {
        array.withUnsafeMutableBufferPointer { treeAllreduce($0, bucketBytes: bucketBytes) }
    }
}
