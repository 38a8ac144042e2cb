/// A buffer cut into one contiguous piece per rank: the optimizer state each rank keeps when it is
/// sharded (ZeRO stage 1, Rajbhandari et al. 2020), and the segments of `treeAllreduce`.
///
/// With a power-of-two number of ranks the pieces follow the fixed summation tree
/// (`Communicator.reduceScatter`): recursive halving leaves piece p with the rank whose log2 N bits are
/// p's reversed, e.g. for N = 4 pieces 0, 1, 2, 3 belong to ranks 0, 2, 1, 3. Otherwise rank p owns
/// piece p. Cut points are `align`ed so that a piece never splits what one rank must update whole
/// (a unit-norm decoder row).
public struct BufferShards: Sendable, Equatable {
    /// Piece p is `bounds[p] ..< bounds[p + 1]`; bounds[0] = 0, bounds[N] = the buffer's count.
    public let bounds: [Int]
    /// `owners[p]`: the rank that holds piece p.
    public let owners: [Int]
    /// Whether the pieces follow the summation tree (N a power of two).
    public let tree: Bool

    /// Pieces of about count / ranks elements; `align` moves each interior cut point (it must be
    /// non-decreasing and stay within 0...count).
    public init(count: Int, ranks n: Int, align: (Int) -> Int = { $0 }) {
        precondition(n > 0 && count >= 0, "BufferShards of \(count) elements over \(n) ranks")
        var b = [0]
        for p in 1..<max(1, n) { b.append(min(count, max(b[p - 1], align(count / n * p + count % n * p / n)))) }
        b.append(count)
        bounds = b
        let tree = n & (n - 1) == 0, bits = n.trailingZeroBitCount
        self.tree = tree
        owners = (0..<n).map { p in tree ? bitReversed(p, bits: bits) : p }
    }

    public var ranks: Int { owners.count }

    /// Elements of pieces `pieces` (a range of piece indices).
    public func elements(_ pieces: Range<Int>) -> Range<Int> { bounds[pieces.lowerBound] ..< bounds[pieces.upperBound] }

    /// The elements `rank` holds.
    public func piece(of rank: Int) -> Range<Int> {
        let p = owners.firstIndex(of: rank)!
        return bounds[p] ..< bounds[p + 1]
    }

    /// How many elements each rank holds, in rank order.
    public var pieceCounts: [Int] { (0..<ranks).map { piece(of: $0).count } }

    /// The pieces that rank and its step-s partner share before step s of recursive halving, for
    /// s = 0 ..< log2 N: all of them at step 0, then the half this rank kept. (`tree` only.)
    func halvingSegments(rank: Int) -> [(keep: Range<Int>, give: Range<Int>)] {
        var lo = 0, hi = ranks, out: [(Range<Int>, Range<Int>)] = []
        for s in 0..<ranks.trailingZeroBitCount {
            let mid = (lo + hi) / 2
            let (keep, give) = (rank >> s) & 1 == 0 ? (lo ..< mid, mid ..< hi) : (mid ..< hi, lo ..< mid)
            out.append((keep, give))
            (lo, hi) = (keep.lowerBound, keep.upperBound)
        }
        return out
    }
}

/// `p`'s lowest `bits` bits in reverse order.
private func bitReversed(_ p: Int, bits: Int) -> Int {
    var r = 0
    for i in 0..<bits where (p >> i) & 1 == 1 { r |= 1 << (bits - 1 - i) }
    return r
}
