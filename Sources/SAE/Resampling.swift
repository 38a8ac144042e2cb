import Foundation
import Tensors

// Resampling dead latents, after Anthropic's "Towards Monosemanticity" (2023), appendix
// "Neuron resampling". A pure function of (parameters, Adam state, candidates + losses, RNG): a
// trainer gathers the candidates of all ranks, hands every rank the same set and the same RNG state,
// and every rank computes the same update, so parameters stay bitwise identical.

/// Which dead latents take which candidate row, and the encoder norm they start at: what
/// `SAE.resample` decides (reading the parameters) before it writes, so that ranks sharing one
/// parameter buffer can all decide and one of them write.
public struct ResamplePlan: Sendable {
    public let latents: [Int]
    /// The candidate row chosen for each latent.
    public let rows: [Int]
    let candidates: Tensor
    /// 0.2 · mean ‖W_enc,i‖ over the living latents.
    let encoderNorm: Float
}

extension SAE {
    /// Re-initialises `deadLatents` from `candidates` [N, d] drawn with probability ∝ `losses`²:
    ///   W_dec,j = x/‖x‖;  W_enc,j = (x/‖x‖)·0.2·mean_{living i} ‖W_enc,i‖;  b_enc,j = 0
    /// (gated: b_gate, b_mag and r_mag of j = 0). The Adam moments of exactly those rows and entries are
    /// zeroed (a sharded `adam` zeroes those in its slice); everything else is untouched. Returns the
    /// candidate row chosen for each dead latent.
    @discardableResult
    public mutating func resample(deadLatents: [Int], candidates: Tensor, losses: [Float],
                                  adam: inout AdamState, rng: inout Xoshiro256) throws -> [Int] {
        guard adam.slice.upperBound <= layout.count else {
            throw SAEError.sizeMismatch(what: "Adam state", expected: layout.count, got: adam.slice.upperBound)
        }
        let plan = try resamplePlan(deadLatents: deadLatents, candidates: candidates, losses: losses, rng: &rng)
        apply(plan)
        resetMoments(of: plan, in: &adam)
        return plan.rows
    }

    /// The first half of `resample`: checks the inputs and draws the rows (reads the parameters only).
    public func resamplePlan(deadLatents: [Int], candidates: Tensor, losses: [Float],
                             rng: inout Xoshiro256) throws -> ResamplePlan {
        let d = config.dIn, m = config.dSAE
        guard !deadLatents.isEmpty else { return ResamplePlan(latents: [], rows: [], candidates: candidates, encoderNorm: 0) }
        guard candidates.columns == d else { throw SAEError.widthMismatch(expected: d, got: candidates.columns) }
        let N = candidates.rows
        guard N > 0 && candidates.count > 0 else { throw SAEError.emptyBatch }
        guard losses.count == N else { throw SAEError.sizeMismatch(what: "candidate losses", expected: N, got: losses.count) }
        for (i, l) in losses.enumerated() where !l.isFinite || l < 0 { throw SAEError.nonFiniteInput(row: i) }
        try checkBatch(candidates)
        for j in deadLatents where j < 0 || j >= m {
            throw SAEError.invalidConfig(field: "dead latent index", expected: "in 0..<\(m), got \(j)")
        }

        // Cumulative loss² (Double, fixed order) for inverse-CDF sampling.
        var cdf = [Double](repeating: 0, count: N)
        var total = 0.0
        for i in 0..<N { total += Double(losses[i]) * Double(losses[i]); cdf[i] = total }

        // Mean encoder norm of the living latents.
        let dead = Set(deadLatents)
        var normSum = 0.0, living = 0
        for j in 0..<m where !dead.contains(j) {
            var s = 0.0
            for i in 0..<d { let w = Double(params[layout.W_enc.lowerBound + j * d + i]); s += w * w }
            normSum += s.squareRoot(); living += 1
        }
        let encNorm = Float(living > 0 ? 0.2 * normSum / Double(living) : 0.2)

        var rows: [Int] = []
        for _ in deadLatents {
            if total > 0 {
                let u = rng.nextDouble() * total
                var lo = 0, hi = N - 1          // first i with cdf[i] > u
                while lo < hi { let mid = (lo + hi) / 2; if cdf[mid] > u { hi = mid } else { lo = mid + 1 } }
                rows.append(lo)
            } else {
                rows.append(rng.nextInt(below: N))
            }
        }
        return ResamplePlan(latents: deadLatents, rows: rows, candidates: candidates, encoderNorm: encNorm)
    }

    /// The second half of `resample`: writes the plan's latents.
    public mutating func apply(_ plan: ResamplePlan) {
        let d = config.dIn
        for (j, row) in zip(plan.latents, plan.rows) {
            var n = 0.0
            for i in 0..<d { let x = Double(plan.candidates.storage[row * d + i]); n += x * x }
            let inv = n > 0 ? Float(1 / n.squareRoot()) : 0
            for i in 0..<d {
                let u = plan.candidates.storage[row * d + i] * inv
                params[layout.W_dec.lowerBound + j * d + i] = u
                params[layout.W_enc.lowerBound + j * d + i] = u * plan.encoderNorm
            }
            for v in [layout.b_enc, layout.b_gate, layout.r_mag, layout.b_mag] where !v.isEmpty { params[v.lowerBound + j] = 0 }
        }
    }

    /// Zeroes the Adam moments of every parameter the plan rewrites (those in `adam`'s slice).
    public func resetMoments(of plan: ResamplePlan, in adam: inout AdamState) {
        let d = config.dIn
        for j in plan.latents {
            adam.resetMoments(layout.W_dec.lowerBound + j * d ..< layout.W_dec.lowerBound + (j + 1) * d)
            adam.resetMoments(layout.W_enc.lowerBound + j * d ..< layout.W_enc.lowerBound + (j + 1) * d)
            for v in [layout.b_enc, layout.b_gate, layout.r_mag, layout.b_mag] where !v.isEmpty {
                adam.resetMoments(v.lowerBound + j ..< v.lowerBound + j + 1)
            }
        }
    }
}
