/// Byte-pair encoding of one piece by lowest merge rank, as tiktoken's `byte_pair_merge`:
/// start from single bytes, repeatedly merge the adjacent pair whose concatenation has the
/// lowest rank (the leftmost on ties) until no adjacent pair is a token.
struct BytePairEncoder: Sendable {
    /// Bytes of each ordinary token, by id (empty for ids that are not ordinary tokens).
    let tokenBytes: [[UInt8]]
    /// Token id by hash of its bytes (verified against `tokenBytes`), with the rare colliding
    /// tokens in `overflow`.
    private let byHash: [UInt64: Int32]
    private let overflow: [[UInt8]: Int32]

    /// `ranks` maps each token's bytes to its id (= its merge rank).
    init(ranks: [[UInt8]: Int]) {
        let maxID = ranks.values.max() ?? -1
        var bytes = [[UInt8]](repeating: [], count: maxID + 1)
        var byHash: [UInt64: Int32] = [:], overflow: [[UInt8]: Int32] = [:]
        for (b, id) in ranks.sorted(by: { $0.value < $1.value }) {
            bytes[id] = b
            let h = b.withUnsafeBufferPointer { Self.hash($0[...]) }
            if byHash[h] == nil { byHash[h] = Int32(id) } else { overflow[b] = Int32(id) }
        }
        tokenBytes = bytes
        self.byHash = byHash
        self.overflow = overflow
    }

    /// FNV-1a, 64-bit.
    @inline(__always) static func hash(_ b: Slice<UnsafeBufferPointer<UInt8>>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for x in b { h = (h ^ UInt64(x)) &* 0x100_0000_01b3 }
        return h
    }

    /// The id of the token whose bytes are `b`, if there is one.
    @inline(__always) func rank(_ b: Slice<UnsafeBufferPointer<UInt8>>) -> Int32? {
        if let id = byHash[Self.hash(b)], tokenBytes[Int(id)].elementsEqual(b) { return id }
        return overflow.isEmpty ? nil : overflow[Array(b)]
    }

    /// Appends the tokens of `piece` to `out`.
    func encode(_ piece: Slice<UnsafeBufferPointer<UInt8>>, into out: inout [Int]) {
        if let id = rank(piece) { out.append(Int(id)); return }
        let base = piece.startIndex, n = piece.count
        let buf = piece.base
        @inline(__always) func rankOf(_ a: Int, _ b: Int) -> Int32 {
            rank(buf[(base + a) ..< (base + b)]) ?? Int32.max
        }
        // parts[i] = (start offset, rank of merging part i with part i+1); two sentinels at the end.
        var starts = Array(0...n)
        var ranks = [Int32](repeating: .max, count: n + 1)
        for i in 0..<(n - 1) { ranks[i] = rankOf(i, i + 2) }
        while true {
            var best = Int32.max, at = -1
            for i in 0..<(starts.count - 2) where ranks[i] < best { best = ranks[i]; at = i }
            if at < 0 { break }
            // Merge parts at and at+1; recompute the ranks of the pairs around the new part.
            starts.remove(at: at + 1)
            ranks.remove(at: at + 1)
            ranks[at] = at + 2 < starts.count ? rankOf(starts[at], starts[at + 2]) : .max
            if at > 0 { ranks[at - 1] = rankOf(starts[at - 1], starts[at + 1]) }
        }
        for i in 0..<(starts.count - 1) {
            out.append(Int(rank(buf[(base + starts[i]) ..< (base + starts[i + 1])])!))
        }
    }
}
