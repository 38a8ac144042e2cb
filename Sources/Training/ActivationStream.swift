import Foundation
import Tensors

/// Where a rank's training batches come from: the model (shuffled blocks, per-rank cursors) or an
/// activation cache (a seeded permutation of all cached rows, the same global batches for any N).
protocol ActivationStream: AnyObject {
    /// Makes global step `step`'s local batch current.
    func load(step: Int) throws
    /// The current local batch of hook `h`: [localBatch, d], raw (unscaled) activations.
    func batch(hook h: Int) -> Tensor
    /// Called after the step has used the batch.
    func finishStep()
    /// Rows for the input-scale estimate; over all ranks they do not depend on N for a cache.
    func scaleSample(hook h: Int) throws -> Tensor
    /// This rank's resumable position (model streams; a cache's position is the step).
    var position: StreamPosition { get }
}

/// Batches from the model: consecutive local batches of shuffled blocks, the next block computed
/// in the background (ActivationBlocks.swift) while the run still needs one.
final class ModelStream: ActivationStream {
    let localBatch: Int, batchesPerBlock: Int
    /// Blocks the run's steps use: block i holds steps i·batchesPerBlock ..< (i+1)·batchesPerBlock.
    let blocksNeeded: Int
    let prefetcher: BlockPrefetcher
    var block: ActivationBlock
    private(set) var position: StreamPosition

    /// Starts at `position` (a fresh run: block 0 at the first document), for a run of `totalSteps`.
    init(producer: ActivationProducer, localBatch: Int, position: StreamPosition, totalSteps: Int) throws {
        self.localBatch = localBatch
        batchesPerBlock = producer.blockTokens / localBatch
        blocksNeeded = (totalSteps + batchesPerBlock - 1) / batchesPerBlock
        prefetcher = BlockPrefetcher { index, start in try producer.produce(index: index, start: start) }
        prefetcher.start(index: position.block, from: position.blockStart)
        block = try prefetcher.take()
        self.position = position
        prefetchNext()
    }

    /// Starts the next block unless the run ends within this one (at d20 on 8 oversubscribed ranks
    /// an unused block held the end of the run for minutes).
    private func prefetchNext() {
        if block.index + 1 < blocksNeeded { prefetcher.start(index: block.index + 1, from: block.end) }
    }

    func load(step: Int) throws {
        guard position.batch == batchesPerBlock else { return }
        block = try prefetcher.take()
        prefetchNext()
        position = StreamPosition()
        position.block = block.index
        position.blockStart = block.start
    }

    func batch(hook h: Int) -> Tensor {
        let d = block.activations[h].columns, b = position.batch
        return Tensor(shape: [localBatch, d],
                      storage: Array(block.activations[h].storage[b * localBatch * d ..< (b + 1) * localBatch * d]))
    }

    func finishStep() { position.batch += 1 }

    func scaleSample(hook h: Int) throws -> Tensor { block.activations[h] }
}

/// Batches from an activation cache. Global step s covers positions s·B ..< (s+1)·B of an endless
/// sequence of epochs, each a seeded permutation of all rows; rank r of N takes the r-th of N
/// equal slices. So the data of a step depends on the seed and the cache, not on N.
final class CacheStream: ActivationStream {
    let rows: [CachedRows]
    let globalBatch: Int, localBatch: Int, rank: Int, seed: Int
    var current: [Tensor] = []
    var permutations: [Int: FeistelPermutation] = [:]
    let position = StreamPosition()

    init(dir: String, manifest: CacheManifest, hooks: [String], globalBatch: Int, rank: Int, size: Int, seed: Int) throws {
        rows = try hooks.map { try CachedRows(dir: dir, manifest: manifest, hook: $0) }
        self.globalBatch = globalBatch
        localBatch = globalBatch / size
        self.rank = rank
        self.seed = seed
    }

    /// Local batch of global step `step`, all hooks.
    func rows(step: Int, count: Int) -> [Tensor] {
        let n = rows[0].rows, d = rows[0].d
        return rows.map { source in
            var t = Tensor(shape: [count, d])
            t.withBuffer { out in
                for j in 0..<count {
                    let i = step * globalBatch + rank * localBatch + j
                    let epoch = i / n
                    let perm = permutation(epoch: epoch, n: n)
                    source.copyRow(perm(i % n), into: out.baseAddress! + j * d)
                }
            }
            return t
        }
    }

    func permutation(epoch: Int, n: Int) -> FeistelPermutation {
        if let p = permutations[epoch] { return p }
        let p = FeistelPermutation(count: n, seed: mixSeed(UInt64(seed), 0xCAC4E, UInt64(epoch)))
        permutations = [epoch: p]
        return p
    }

    func load(step: Int) throws { current = rows(step: step, count: localBatch) }
    func batch(hook h: Int) -> Tensor { current[h] }
    func finishStep() {}

    /// This rank's slices of the first 8 global batches.
    func scaleSample(hook h: Int) throws -> Tensor {
        let parts = (0..<8).map { rows(step: $0, count: localBatch)[h] }
        return Tensor(shape: [8 * localBatch, rows[h].d], storage: parts.flatMap(\.storage))
    }
}
