import Foundation
import Testing
@testable import SAE
import Tensors

@Suite struct ResamplingTests {
    /// Dead latents get decoder rows equal to normalised high-loss inputs, encoder rows at 0.2 × the
    /// mean living encoder norm, zero bias and zero Adam moments; living latents and their moments
    /// are untouched; the same inputs and RNG give the same result (every rank agrees).
    @Test(arguments: [Architecture.relu, .gated, .jumprelu, .topk])
    func resampleDeadLatents(_ arch: Architecture) throws {
        var rng = Xoshiro256(seed: 11)
        let d = 16, m = 40
        var sae = try SAE(config: SAEConfig(architecture: arch, dIn: d, dSAE: m, k: 4, l1: 0.1), rng: &rng)
        let L = sae.layout
        for i in 0..<L.count where !L.log_threshold.contains(i) { sae.params[i] += 0.1 * rng.nextGaussian() }
        var adam = AdamState(count: L.count)
        for i in 0..<L.count { adam.m[i] = rng.nextGaussian(); adam.v[i] = rng.nextFloat() + 0.5 }
        let before = sae, adamBefore = adam
        // 50 candidates: only rows 7 and 23 have non-negligible loss, so they must be the ones drawn.
        let candidates = Tensor.randomNormal(shape: [50, d], rng: &rng)
        var losses = [Float](repeating: 1e-6, count: 50)
        losses[7] = 5; losses[23] = 4
        let dead = [2, 9, 30]
        var rngA = Xoshiro256(seed: 99), rngB = Xoshiro256(seed: 99)
        var twin = sae, twinAdam = adam
        let chosen = try sae.resample(deadLatents: dead, candidates: candidates, losses: losses, adam: &adam, rng: &rngA)
        _ = try twin.resample(deadLatents: dead, candidates: candidates, losses: losses, adam: &twinAdam, rng: &rngB)
        #expect(twin.params == sae.params && twinAdam == adam, "same inputs and RNG must give bitwise the same update")
        #expect(chosen.allSatisfy { $0 == 7 || $0 == 23 })

        var living = 0.0
        for j in 0..<m where !dead.contains(j) {
            living += Double(dot(Array(before.params[L.W_enc.lowerBound + j * d ..< L.W_enc.lowerBound + (j + 1) * d]))).squareRoot()
        }
        let target = 0.2 * living / Double(m - dead.count)
        for (j, row) in zip(dead, chosen) {
            let x = Array(candidates.storage[row * d ..< (row + 1) * d])
            let nx = Double(dot(x)).squareRoot()
            for i in 0..<d {
                let u = Double(x[i]) / nx
                #expect(abs(Double(sae.params[L.W_dec.lowerBound + j * d + i]) - u) < 1e-6)
                #expect(abs(Double(sae.params[L.W_enc.lowerBound + j * d + i]) - u * target) < 1e-6)
            }
            for v in [L.b_enc, L.b_gate, L.b_mag, L.r_mag] where !v.isEmpty { #expect(sae.params[v.lowerBound + j] == 0) }
        }
        // Exactly the touched entries changed, in parameters and in both moments.
        var touched = Set<Int>()
        for j in dead {
            for r in [L.W_dec, L.W_enc] { for i in 0..<d { touched.insert(r.lowerBound + j * d + i) } }
            for v in [L.b_enc, L.b_gate, L.b_mag, L.r_mag] where !v.isEmpty { touched.insert(v.lowerBound + j) }
        }
        for i in 0..<L.count {
            if touched.contains(i) {
                #expect(adam.m[i] == 0 && adam.v[i] == 0)
            } else {
                #expect(sae.params[i] == before.params[i] && adam.m[i] == adamBefore.m[i] && adam.v[i] == adamBefore.v[i])
            }
        }
    }

    @Test func deadLatentStatistics() {
        var s = LatentStatistics(latents: 4)
        s.record(counts: [1, 0, 0, 2], tokens: 100)
        s.record(counts: [0, 0, 3, 1], tokens: 50)
        #expect(s.tokensSinceFired == [50, 150, 0, 0])
        #expect(s.firingCounts == [1, 0, 3, 3] && s.windowTokens == 150)
        #expect(s.deadMask(deadTokens: 100) == [false, true, false, false])
        #expect(s.deadLatents(deadTokens: 50) == [0, 1])
        #expect(s.firingFractions[2] == 0.02)
        s.resetWindow()
        #expect(s.firingCounts == [0, 0, 0, 0] && s.tokensSinceFired == [50, 150, 0, 0])
    }
}

func dot(_ a: [Float]) -> Float { a.reduce(0) { $0 + $1 * $1 } }
