import Tensors

// Dead-latent statistics: per-latent firing counts and tokens since firing, combinable across ranks.
// What dead latents are used for: the AuxK loss (AuxK.swift) and resampling (Resampling.swift).

/// Per-latent firing statistics over a token window, as plain arrays a trainer can combine across
/// ranks: `tokensSinceFired` with MIN, `firingCounts` with SUM (or feed every rank the already
/// summed counts of a step, which keeps both identical everywhere).
public struct LatentStatistics: Sendable, Equatable, Codable {
    /// Tokens seen since latent j last fired (saturates, never overflows).
    public var tokensSinceFired: [Int64]
    /// Rows in which latent j fired since the last `resetWindow`.
    public var firingCounts: [Int64]
    /// Tokens counted in `firingCounts`.
    public var windowTokens: Int64 = 0

    public init(latents: Int) {
        tokensSinceFired = [Int64](repeating: 0, count: latents)
        firingCounts = [Int64](repeating: 0, count: latents)
    }

    /// Adds one step: `counts` [m] rows each latent fired in, out of `tokens` rows.
    public mutating func record(counts: [Int64], tokens: Int64) {
        precondition(counts.count == firingCounts.count, "record: \(counts.count) counts for \(firingCounts.count) latents")
        for j in 0..<counts.count {
            firingCounts[j] += counts[j]
            tokensSinceFired[j] = counts[j] > 0 ? 0 : tokensSinceFired[j] &+ tokens
            if tokensSinceFired[j] < 0 { tokensSinceFired[j] = .max }
        }
        windowTokens += tokens
    }

    /// Latents that fired for none of the last `deadTokens` tokens.
    public func deadMask(deadTokens: Int64) -> [Bool] { tokensSinceFired.map { $0 >= deadTokens } }

    /// Dead latents' indices (ascending).
    public func deadLatents(deadTokens: Int64) -> [Int] {
        tokensSinceFired.indices.filter { tokensSinceFired[$0] >= deadTokens }
    }

    /// Firing fraction per latent over the window (SAELens's sparsity is log10 of this + 1e-10).
    public var firingFractions: [Double] {
        firingCounts.map { windowTokens > 0 ? Double($0) / Double(windowTokens) : 0 }
    }

    /// Starts a new counting window (`tokensSinceFired` carries on).
    public mutating func resetWindow() {
        for j in firingCounts.indices { firingCounts[j] = 0 }
        windowTokens = 0
    }
}
