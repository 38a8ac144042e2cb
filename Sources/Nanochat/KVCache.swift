/// Keys and values of every layer for the positions decoded so far, plus what the smear needs
/// (the previous token's embedding), so decoding one token at a time gives the logits of a full
/// forward pass. One cache per sequence batch; not shared between threads.
public final class KVCache {
    public let batch: Int
    /// Positions the cache can hold.
    public let capacity: Int
    /// Positions filled so far (the position of the next token).
    public internal(set) var length = 0
    let kvWidth: Int
    /// Per layer: keys and values [B, capacity, Hkv·D], rotated and normed keys.
    var keys: [UnsafeMutablePointer<Float>]
    var values: [UnsafeMutablePointer<Float>]
    /// norm(wte[last token]) per row, before the smear: [B, C].
    var previousEmbedding: [Float]

    /// A one-pass cache (full forward from position 0): attention reads the pass's own k and v
    /// buffers, so nothing is allocated or copied here.
    let transient: Bool

    init(batch: Int, capacity: Int, layers: Int, kvWidth: Int, width: Int, transient: Bool = false) {
        self.batch = batch; self.capacity = capacity; self.kvWidth = kvWidth; self.transient = transient
        let n = transient ? 0 : batch * capacity * kvWidth
        keys = transient ? [] : (0..<layers).map { _ in .allocate(capacity: max(n, 1)) }
        values = transient ? [] : (0..<layers).map { _ in .allocate(capacity: max(n, 1)) }
        previousEmbedding = Array(repeating: 0, count: batch * width)
    }

    deinit {
        for p in keys { p.deallocate() }
        for p in values { p.deallocate() }
    }

    /// Forgets every position (the buffers are reused).
    public func reset() { length = 0 }
}

extension NanochatModel {
    /// An empty cache for `batch` sequences of up to `capacity` positions (≤ `maxPositions`).
    public func makeCache(batch: Int, capacity: Int) throws -> KVCache {
        guard batch >= 1, capacity >= 1, capacity <= maxPositions else {
            throw NanochatError.invalidTokens(reason: "KV cache of batch \(batch) × \(capacity) positions; expected batch ≥ 1 and 1...\(maxPositions) positions")
        }
        return KVCache(batch: batch, capacity: capacity, layers: config.nLayer,
                       kvWidth: config.nKVHead * config.headDim, width: config.nEmbd)
    }
}
