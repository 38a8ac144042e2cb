/// Byte-pair encoding of one piece by lowest merge rank, as tiktoken's `byte_pair_merge`:
/// start from single bytes, repeatedly merge the adjacent pair whose concatenation has the
/// lowest rank (the leftmost on ties) until no adjacent pair is a token.
struct BytePairEncoder: Sendable {
    /// Bytes of each ordinary token, by id (empty for ids that are not ordinary tokens).
    let tokenBytes: [[UInt8]]
    /// All token bytes back to back; token `id` is flat[start[id] ..< start[id + 1]].
    private let flat: [UInt8]
    private let start: [Int32]
    /// Open-addressing table from the FNV-1a hash of a token's bytes to its id (−1 = empty slot);
    /// a hit is confirmed by comparing the bytes, so hash collisions only cost a probe.
    private let slotHash: [UInt64]
    private let slotID: [Int32]
    private let mask: Int

    /// `ranks` maps each token's bytes to its id (= its merge rank).
    init(ranks: [[UInt8]: Int]) {
        let maxID = ranks.values.max() ?? -1
        var bytes = [[UInt8]](repeating: [], count: maxID + 1)
        for (b, id) in ranks { bytes[id] = b }
        tokenBytes = bytes
        var flat: [UInt8] = [], start: [Int32] = [0]
        for b in bytes { flat += b; start.append(Int32(flat.count)) }
        self.flat = flat
        self.start = start
        var size = 16
        while size < 2 * ranks.count { size *= 2 }
        mask = size - 1
        var hashes = [UInt64](repeating: 0, count: size), ids = [Int32](repeating: -1, count: size)
        for (b, id) in ranks {
            let h = b.withUnsafeBufferPointer { Self.hash($0[...]) }
            var i = Int(truncatingIfNeeded: h) & (size - 1)
            while ids[i] >= 0 { i = (i + 1) & (size - 1) }
            hashes[i] = h; ids[i] = Int32(id)
        }
        slotHash = hashes
        slotID = ids
    }

    /// FNV-1a, 64-bit, finished with a multiply so the low bits (the slot) mix well.
    @inline(__always) static func hash(_ b: Slice<UnsafeBufferPointer<UInt8>>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for x in b { h = (h ^ UInt64(x)) &* 0x100_0000_01b3 }
        return (h ^ (h >> 29)) &* 0xbf58_476d_1ce4_e5b9
    }

    /// The id of the token whose bytes are `b`, if there is one.
    @inline(__always) func rank(_ b: Slice<UnsafeBufferPointer<UInt8>>) -> Int32? {
        let h = Self.hash(b)
        return slotHash.withUnsafeBufferPointer { hs in slotID.withUnsafeBufferPointer { ids in
            flat.withUnsafeBufferPointer { f in start.withUnsafeBufferPointer { st in
                var i = Int(truncatingIfNeeded: h) & mask
                while true {
                    let id = ids[i]
                    if id < 0 { return nil }
                    if hs[i] == h {
                        let s = Int(st[Int(id)]), e = Int(st[Int(id) + 1])
                        if e - s == b.count && memEqual(f.baseAddress! + s, b.base.baseAddress! + b.startIndex, e - s) {
                            return id
                        }
                    }
                    i = (i + 1) & mask
                }
            } }
        } }
    }

    /// Appends the tokens of `piece` to `out`.
    func encode(_ piece: Slice<UnsafeBufferPointer<UInt8>>, into out: inout [Int]) {
        if let id = rank(piece) { out.append(Int(id)); return }
        let base = piece.startIndex, n = piece.count
        let buf = piece.base
        @inline(__always) func rankOf(_ a: Int, _ b: Int) -> Int32 {
            rank(buf[(base + a) ..< (base + b)]) ?? Int32.max
        }
        // Part i starts at starts[i] (plus a sentinel n); ranks[i] is the rank of merging parts
        // i and i+1. Scratch on the stack; removing a part shifts the tails down.
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: 2 * n + 1) { scratch in
            let starts = scratch.baseAddress!, ranks = scratch.baseAddress! + n + 1
            for i in 0...n { starts[i] = Int32(i) }
            for i in 0..<(n - 1) { ranks[i] = rankOf(i, i + 2) }
            ranks[n - 1] = .max
            var parts = n
            while true {
                var best = Int32.max, at = -1
                for i in 0..<(parts - 1) where ranks[i] < best { best = ranks[i]; at = i }
                if at < 0 { break }
                // Merge parts at and at+1; recompute the ranks of the pairs around the new part.
                (starts + at + 1).update(from: starts + at + 2, count: parts - at - 1)
                (ranks + at + 1).update(from: ranks + at + 2, count: parts - at - 2)
                parts -= 1
                ranks[at] = at + 2 <= parts ? rankOf(Int(starts[at]), Int(starts[at + 2])) : .max
                if at > 0 { ranks[at - 1] = rankOf(Int(starts[at - 1]), Int(starts[at + 1])) }
            }
            for i in 0..<parts {
                out.append(Int(rank(buf[(base + Int(starts[i])) ..< (base + Int(starts[i + 1]))])!))
            }
        }
    }
}

@inline(__always)
private func memEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
    for i in 0..<n where a[i] != b[i] { return false }
    return true
}
