import Foundation
import Nanochat
import Tensors

// The activation store of one rank: the model's activations at the hooked points, produced in
// blocks of `blockTokens` token positions, each block shuffled as a whole, consumed as consecutive
// local batches, while the next block is computed in the background.
//
// A block is a pure function of (the data cursor where its documents start, its index, the seed,
// the rank): the shuffle's RNG is seeded from (seed, rank, index) and blocks start at document
// boundaries. So a checkpoint only saves `StreamPosition`, and a resumed run rebuilds the very same
// block and skips the batches already used. That is what makes `--resume` bitwise exact.

/// Where a rank's activation stream is.
public struct StreamPosition: Codable, Equatable, Sendable {
    /// Index of the current block (0, 1, 2, ...).
    public var block = 0
    /// Data cursor at the first document of the current block.
    public var blockStart = DataCursor()
    /// Next local batch within the current block.
    public var batch = 0
    public init() {}
}

/// One shuffled block: for each hook, [tokens, d] activations in shuffled order (all hooks in the
/// same order, so batch i of every hook comes from the same token positions).
public struct ActivationBlock: Sendable {
    public let index: Int
    public let start: DataCursor
    /// Data cursor after the block's last document: where the next block starts.
    public let end: DataCursor
    public let tokens: Int
    public var activations: [Tensor]
}

/// Produces blocks from a nanochat model and a rank's documents.
public struct ActivationProducer: Sendable {
    public let model: NanochatModel
    public let tokenizer: Tokenizer
    public let source: DocumentSource
    public let hooks: [HookPoint]
    public let context: Int
    public let blockTokens: Int
    public let excludeBOS: Bool
    public let seed: Int
    public let rank: Int
    /// Rows per forward pass (bounds the memory of one pass).
    public let rowsPerForward: Int

    public init(model: NanochatModel, tokenizer: Tokenizer, source: DocumentSource, hooks: [HookPoint],
                context: Int, blockTokens: Int, excludeBOS: Bool, seed: Int, rank: Int) {
        self.model = model; self.tokenizer = tokenizer; self.source = source; self.hooks = hooks
        self.context = context; self.blockTokens = blockTokens; self.excludeBOS = excludeBOS
        self.seed = seed; self.rank = rank
        rowsPerForward = max(1, 4096 / context)
    }

    public var width: Int { model.config.nEmbd }

    /// Block `index`, whose documents start at `start`.
    public func produce(index: Int, start: DataCursor) throws -> ActivationBlock {
        let d = width, bos = try tokenizer.bos
        var kept = hooks.map { _ in [Float]() }
        for h in kept.indices { kept[h].reserveCapacity(blockTokens * d) }
        var count = 0, cursor = start
        while count < blockTokens {
            let flat = try packRows(from: source, cursor: &cursor, rows: rowsPerForward, context: context, bos: bos,
                                    encode: tokenizer.encode)
            let rows = (0..<rowsPerForward).map { Array(flat[$0 * context ..< ($0 + 1) * context]) }
            let acts = try forwardInParallel(rows)
            for p in 0..<flat.count where count < blockTokens && !(excludeBOS && flat[p] == bos) {
                for h in hooks.indices { kept[h] += acts[h].storage[p * d ..< (p + 1) * d] }
                count += 1
            }
        }
        // Shuffle all hooks with one permutation (Fisher–Yates) seeded by (seed, rank, index).
        var rng = Xoshiro256(seed: mixSeed(UInt64(seed), UInt64(rank), UInt64(index)))
        var perm = Array(0..<blockTokens)
        for i in stride(from: blockTokens - 1, to: 0, by: -1) { perm.swapAt(i, rng.nextInt(below: i + 1)) }
        let shuffled = kept.map { src in
            var dst = [Float](repeating: 0, count: src.count)
            src.withUnsafeBufferPointer { s in dst.withUnsafeMutableBufferPointer { t in
                for (i, j) in perm.enumerated() {
                    (t.baseAddress! + i * d).update(from: s.baseAddress! + j * d, count: d)
                }
            } }
            return Tensor(shape: [blockTokens, d], storage: dst)
        }
        return ActivationBlock(index: index, start: start, end: cursor, tokens: blockTokens, activations: shuffled)
    }
}

extension ActivationProducer {
    /// The hooked activations of `rows`, [rows·T, d] per hook. The rows are split into a fixed
    /// number of groups whose forward passes run at the same time (BLAS is single-threaded during
    /// training, so this is how one rank's forward uses several cores). The split does not depend
    /// on the machine, so neither do the results.
    func forwardInParallel(_ rows: [[Int]]) throws -> [Tensor] {
        let groups = min(Self.forwardGroups, rows.count)
        let per = (rows.count + groups - 1) / groups
        var outputs = [Result<[Tensor], Error>?](repeating: nil, count: groups)
        outputs.withUnsafeMutableBufferPointer { out in
            let out = UncheckedSendable(out)
            parallelFor(groups) { g in
                let part = Array(rows[g * per ..< min(rows.count, (g + 1) * per)])
                out.value[g] = Result {
                    let o = try model.forward(tokens: part, hooks: hooks, logits: false)
                    return hooks.map { o.activations[$0]! }
                }
            }
        }
        let parts = try outputs.map { try $0!.get() }
        return hooks.indices.map { h in
            Tensor(shape: [rows.count * context, width], storage: parts.flatMap { $0[h].storage })
        }
    }

    static let forwardGroups = 4
}

/// Computes the next block on a background thread while the current one is trained on.
public final class BlockPrefetcher: @unchecked Sendable {
    private let produce: @Sendable (Int, DataCursor) throws -> ActivationBlock
    private let queue = DispatchQueue(label: "nanosae.activations")
    private let ready = DispatchSemaphore(value: 0)
    private var result: Result<ActivationBlock, Error>? = nil
    private var pending = false
    /// Seconds the consumer spent waiting for blocks (the SAE step should not wait on data).
    public private(set) var waitSeconds = 0.0
    /// Seconds spent producing blocks (forward passes, packing, shuffling).
    public private(set) var produceSeconds = 0.0
    /// Tokens of the blocks produced in those seconds (the last one may be dropped unused).
    public private(set) var producedTokens = 0

    public init(_ produce: @escaping @Sendable (Int, DataCursor) throws -> ActivationBlock) {
        self.produce = produce
    }

    /// Starts computing block `index` from `start` in the background.
    public func start(index: Int, from start: DataCursor) {
        precondition(!pending, "a block is already being produced")
        pending = true
        queue.async { [self] in
            let t0 = DispatchTime.now().uptimeNanoseconds
            result = Result { try produce(index, start) }
            produceSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
            producedTokens += (try? result?.get().tokens) ?? 0
            ready.signal()
        }
    }

    /// Waits for a block still being produced and drops it (at the end of a run).
    public func drain() {
        guard pending else { return }
        ready.wait()
        pending = false
        result = nil
    }

    /// Waits for the block started last and returns it.
    public func take() throws -> ActivationBlock {
        precondition(pending, "no block was started")
        let t0 = DispatchTime.now().uptimeNanoseconds
        ready.wait()
        waitSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        pending = false
        defer { result = nil }
        return try result!.get()
    }
}

/// A 64-bit seed from several integers (SplitMix64's finaliser over a running mix).
public func mixSeed(_ parts: UInt64...) -> UInt64 {
    var h: UInt64 = 0x243F_6A88_85A3_08D3
    for p in parts {
        h ^= p &+ 0x9E37_79B9_7F4A_7C15 &+ (h << 6) &+ (h >> 2)
        h = (h ^ (h >> 30)) &* 0xBF58_476D_1CE4_E5B9
        h = (h ^ (h >> 27)) &* 0x94D0_49BB_1331_11EB
        h ^= h >> 31
    }
    return h
}
