import Distributed
import SAE

// Sharded optimizer state (ZeRO stage 1): with N ranks each keeps Adam's moments of one piece of
// the parameters, 2/N of the buffers instead of 2. A step is
//   gradients reduce-scattered (each rank gets its piece's sum, in the fixed tree when N is a power
//   of two) → Adam on the rank's piece → parameters allgathered,
// which moves as many bytes as the allreduce it replaces. Every element goes through the same
// arithmetic as unsharded, so the parameters are bitwise those of an unsharded run. Resampling
// writes the parameters on every rank and zeroes moments where they live; checkpoints gather the
// moments to rank 0 into the same files as an unsharded run, and a resume keeps its own piece.
//
// The parameters themselves are then held once per node (`Communicator.nodeSharedBuffer`): each
// rank's Adam writes its piece in place, a node barrier makes the pieces visible, and node leaders
// pass pieces between nodes (`shareNodePieces`). No rank writes while another may read: the
// reduce-scatter returns only once every rank has finished its gradients (each piece sums all of
// them), and other writes (b_dec, resampling) are made by the node leader between two barriers.

/// The pieces of an SAE's parameter buffer that `ranks` ranks own: about 1/N each, the cut points
/// moved to whole W_dec rows (unit-norm decoders are projected and renormalised row by row).
func optimizerShards(_ layout: ParameterLayout, ranks: Int) -> BufferShards {
    let rows = layout.W_dec, d = layout.dIn
    return BufferShards(count: layout.count, ranks: ranks) { cut in
        guard rows.contains(cut) else { return cut }
        return rows.lowerBound + (cut - rows.lowerBound + d / 2) / d * d
    }
}

extension Trainer {
    /// Hook `t`'s Adam moments over all parameters: gathered from every rank's piece to rank 0 when
    /// sharded (nil on the other ranks), the rank's own when not.
    func fullMoments(_ t: HookTrainer) -> (m: [Float], v: [Float])? {
        guard let shards else { return (t.adam.m, t.adam.v) }
        let n = shards.bounds.last!
        var m = [Float](repeating: 0, count: comm.isRoot ? n : 0), v = m
        t.adam.m.withUnsafeBufferPointer { p in m.withUnsafeMutableBufferPointer { comm.gather(p, shards, into: $0) } }
        t.adam.v.withUnsafeBufferPointer { p in v.withUnsafeMutableBufferPointer { comm.gather(p, shards, into: $0) } }
        return comm.isRoot ? (m, v) : nil
    }

    /// A restored hook's Adam state cut down to this rank's piece.
    func keepOwnPiece(_ t: HookTrainer) {
        guard let shards else { return }
        let piece = shards.piece(of: comm.rank)
        var adam = AdamState(slice: piece, config: t.adam.config)
        adam.m = Array(t.adam.m[piece])
        adam.v = Array(t.adam.v[piece])
        adam.step = t.adam.step
        t.adam = adam
    }
}

extension Trainer {
    /// A zeroed parameter buffer of the SAE shared by the ranks of this node.
    func nodeSharedParameters() -> ParameterBuffer {
        let n = ParameterLayout(saeConfig).count
        return ParameterBuffer(shared: comm.nodeSharedBuffer(bytes: n * 4).bindMemory(to: Float.self, capacity: n), count: n)
    }

    /// Runs `write`, the same parameter update on every rank: on every rank when each holds its own
    /// parameters, on the node leader only, once the node has stopped reading, when they are shared.
    func writeOncePerNode(_ write: () -> Void) {
        guard shards != nil else { return write() }
        comm.nodeBarrier()
        if comm.isNodeLeader { write() }
        comm.nodeBarrier()
    }

    /// A restored hook's parameters moved into node-shared memory (when sharded).
    func shareRestoredParameters(_ t: HookTrainer) throws {
        guard shards != nil else { return }
        var sae = try SAE(config: t.sae.config, buffer: nodeSharedParameters(), threshold: t.sae.threshold)
        writeOncePerNode { sae.params.replaceSubrange(sae.params.indices, with: t.sae.params) }
        t.sae = sae
    }
}
