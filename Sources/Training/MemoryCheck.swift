import Foundation

// Before anything is loaded: what the configuration would allocate, checked against what the
// machine has. Each configuration value that sizes memory (d_sae or expansion, batch_tokens,
// buffer_tokens, micro_batches, the number of hooks) enters through checked arithmetic, so a value
// like d_sae 2^62 is an error that names it instead of a trap (integer overflow) or an allocation
// failure after the model has loaded. context is bounded by the model's sequence_len, k and aux_k
// by d_sae; what they size is within the terms below.

/// Physical memory of this machine, in bytes.
public func physicalMemoryBytes() -> Int {
    let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
    guard pages > 0, size > 0 else { return Int.max }
    let (bytes, overflow) = pages.multipliedReportingOverflow(by: size)
    return overflow ? Int.max : bytes
}

/// One allocation of the run, per rank (or once per node): the configuration value that sizes it
/// ("d_sae 4096"), what it holds, and its bytes (nil: more than Int.max).
public struct MemoryNeed: Equatable, Sendable {
    public enum Part: Sendable { case saeState, saeParametersPerNode, encoderWorkspace, activationBlocks }
    public var part: Part
    public var key: String
    public var what: String
    public var bytes: Int?
    /// Held once by the node's ranks together (node-shared), not by each rank.
    public var perNode: Bool { part == .saeParametersPerNode }
}

/// a·b·c·... with nil for an overflow (or a nil factor).
func checkedProduct(_ factors: Int?...) -> Int? {
    var p = 1
    for f in factors {
        guard let f else { return nil }
        let (r, o) = p.multipliedReportingOverflow(by: f)
        if o { return nil }
        p = r
    }
    return p
}

/// a + b + ... with nil for an overflow (or a nil term).
func checkedSum(_ terms: [Int?]) -> Int? {
    var s = 0
    for t in terms {
        guard let t else { return nil }
        let (r, o) = s.addingReportingOverflow(t)
        if o { return nil }
        s = r
    }
    return s
}

/// "1.6 TB", "24 GB", "512 MB" (decimal units, two significant digits); nil: beyond any machine.
public func formatBytes(_ bytes: Int?) -> String {
    guard let bytes else { return "more than 9.2 EB (2^63 bytes)" }
    let units = ["bytes", "kB", "MB", "GB", "TB", "PB", "EB"]
    var v = Double(bytes), u = 0
    while v >= 1000 && u < units.count - 1 { v /= 1000; u += 1 }
    return u == 0 ? "\(bytes) bytes" : String(format: v < 10 ? "%.1f %@" : "%.0f %@", v, units[u])
}

extension TrainConfig {
    /// The latents: d_sae, or expansion × d_in (nil if that overflows).
    public func latents(dIn: Int) -> Int? {
        dSae > 0 ? dSae : checkedProduct(expansion, dIn)
    }

    /// The key that sets the latents, as the user wrote it.
    func latentsKey(dIn: Int) -> String {
        dSae > 0 ? "d_sae \(dSae)" : "expansion \(expansion) (d_sae = \(expansion) × d_in \(dIn))"
    }

    /// Gradient pieces per rank when they are summed in the fixed tree, or nil for one gradient per
    /// rank and MPI_Allreduce (N does not divide micro_batches, batch_tokens is not a multiple of
    /// it, or batchtopk, whose selection spans the rank's batch).
    public func localMicroBatches(ranks N: Int) -> Int? {
        effectiveMicroBatches.flatMap { M in
            M % N == 0 && batchTokens % M == 0 && arch != "batchtopk" ? M / N : nil
        }
    }

    /// One rank's bytes for one SAE's training state (nil: more than Int.max): the parameters, the
    /// gradients with log2(L) partial sums of the summation tree, and Adam's two moments, of 1/N of
    /// the parameters when the optimizer state is sharded over N ranks.
    public func saeStateBytes(dIn d: Int, ranks N: Int) -> (parameters: Int?, gradients: Int?, moments: Int?) {
        // Floats of one SAE: W_enc and W_dec [m, d], b_dec [d], at most 4 vectors [m] (gated).
        let floats = checkedSum([checkedProduct(2, latents(dIn: d), d), d, checkedProduct(4, latents(dIn: d))])
        let L = localMicroBatches(ranks: N) ?? 1
        let shared = shardOptimizer && N > 1 ? N : 1
        return (checkedProduct(floats, 4), checkedProduct(1 + L.trailingZeroBitCount, floats, 4),
                floats.map { ($0 + shared - 1) / shared }.flatMap { checkedProduct(2, $0, 4) })
    }

    /// The large allocations of one rank training `hooks` SAEs on activations of width `dIn`.
    /// `fromModel`: the activation blocks of the model's forward pass (not allocated from a cache).
    public func memoryNeeds(dIn d: Int, hooks: Int, ranks N: Int, fromModel: Bool) -> [MemoryNeed] {
        let m = latents(dIn: d)
        let L = localMicroBatches(ranks: N) ?? 1
        let state = saeStateBytes(dIn: d, ranks: N)
        let localBatch = batchTokens / N
        // Sharded, the parameters are held once per node (Trainer: node-shared), not by each rank.
        let nodeShared = shardOptimizer && N > 1
        let hookNote = hooks > 1 ? " (\(hooks) hooks)" : ""
        var needs = [
            MemoryNeed(part: .saeState, key: latentsKey(dIn: d),
                       what: nodeShared ? "the SAE's gradients and Adam moments" + hookNote
                                        : "the SAE's parameters, gradients and Adam moments" + hookNote,
                       bytes: checkedProduct(hooks, checkedSum([nodeShared ? 0 : state.parameters, state.gradients, state.moments]))),
            // The encoder's pre-activations and their gradient, [rows, m], for one micro-batch.
            MemoryNeed(part: .encoderWorkspace, key: "batch_tokens \(batchTokens)",
                       what: "the encoder's activations of \(localBatch / L) rows × \(m.map(String.init) ?? "d_sae") latents",
                       bytes: checkedProduct(2, localBatch / L, m, 4)),
        ]
        if fromModel {
            // Blocks of buffer_tokens rows: the one trained on and the one being computed, each
            // gathered and then shuffled into a copy.
            let blockTokens = checkedProduct(max(1, bufferTokens / max(1, localBatch)), localBatch)
            needs.append(MemoryNeed(part: .activationBlocks, key: "buffer_tokens \(bufferTokens)",
                                    what: "the shuffled activation blocks (\(hooks) hook(s) × d_in \(d))",
                                    bytes: checkedProduct(hooks, 4, blockTokens, d, 4)))
        }
        if nodeShared {
            needs.append(MemoryNeed(part: .saeParametersPerNode, key: latentsKey(dIn: d),
                                    what: "the SAE's parameters (once per node)" + hookNote,
                                    bytes: checkedProduct(hooks, state.parameters)))
        }
        return needs
    }

    /// Throws a `ConfigError` naming the configuration value whose allocation does not fit in
    /// `available` bytes when `ranksOnHost` ranks of this run share the machine.
    public func checkMemory(dIn: Int, hooks: Int, ranks: Int, ranksOnHost: Int, fromModel: Bool,
                            available: Int = physicalMemoryBytes()) throws {
        let needs = memoryNeeds(dIn: dIn, hooks: hooks, ranks: ranks, fromModel: fromModel)
        let perRank = checkedSum(needs.filter { !$0.perNode }.map(\.bytes))
        let total = checkedSum([checkedProduct(perRank, max(1, ranksOnHost))] + needs.filter(\.perNode).map(\.bytes))
        if let total, total <= available { return }
        // The value to change: the first (latents before batch before buffer) whose own need is too
        // large, else the largest.
        let share = available / max(1, ranksOnHost)
        let worst = needs.first { ($0.bytes ?? Int.max) > ($0.perNode ? available : share) }
            ?? needs.max { ($0.bytes ?? Int.max) < ($1.bytes ?? Int.max) }!
        let onHost = ranksOnHost <= 1 ? ""
            : worst.perNode ? ", \(formatBytes(total)) with the \(ranksOnHost) ranks' own memory on this machine"
            : " per rank, \(formatBytes(total)) for the \(ranksOnHost) ranks on this machine"
        let ofTotal = worst.bytes == perRank ? "" : " (\(formatBytes(perRank)) in all)"
        throw ConfigError(worst.key, "\(worst.what) would need \(formatBytes(worst.bytes))\(ofTotal)\(onHost); "
                          + "this machine has \(formatBytes(available))")
    }
}
