import Foundation
import Testing
@testable import SAE
import Tensors

// The runtime's sparse inference against the dense `encode`: every architecture's rule, the TopK
// selection straight from the encoder chunks, and one feature's activation on one row.
@Suite struct SparseInferenceTests {
    @Test(arguments: Architecture.allCases)
    func sparseEncodeEqualsDenseEncode(_ arch: Architecture) throws {
        var rng = Xoshiro256(seed: 11)
        var sae = try SAE(config: SAEConfig(architecture: arch, dIn: 24, dSAE: 160, k: 7), rng: &rng)
        let x = Tensor.randomNormal(shape: [300, 24], rng: &rng)    // > 1 encoder row chunk
        try sae.initializeDecoderBias(from: x)
        // Biases and thresholds away from their initial values, so each rule's every branch is taken.
        for r in [sae.layout.b_enc, sae.layout.b_gate, sae.layout.b_mag, sae.layout.r_mag] {
            for i in r { sae.params[i] = 0.3 * rng.nextGaussian() }
        }
        for i in sae.layout.log_threshold { sae.params[i] = Foundation.log(0.2 + 0.3 * abs(rng.nextGaussian())) }
        sae.threshold = 0.25
        let dense = try sae.encode(x)
        let sparse = try sae.encodeSparse(x)
        #expect(sparse.rows == 300 && SparseFeatures(dense: dense).feature.count == sparse.feature.count)
        var rebuilt = [Float](repeating: 0, count: 300 * 160)
        for b in 0..<300 {
            for t in sparse.start[b] ..< sparse.start[b + 1] {
                #expect(sparse.activation[t] > 0)
                #expect(sparse.activation(row: b, feature: Int(sparse.feature[t])) == sparse.activation[t])
                rebuilt[b * 160 + Int(sparse.feature[t])] = sparse.activation[t]
            }
        }
        let diff = zip(rebuilt, dense.storage).map { abs($0 - $1) }.max()!
        #expect(diff <= 1e-5, "\(arch): max difference \(diff)")
        #expect(sparse.activation.count == dense.storage.filter { $0 > 0 }.count)
        #expect(sparse.activation.count > 300, "\(arch): too few active features to test anything")

        // One feature on one row, for active and inactive features alike.
        for b in [0, 17, 299] {
            for j in [0, 5, 59, 159] + (sparse.start[b] ..< sparse.start[b + 1]).map({ Int(sparse.feature[$0]) }) {
                let a = x.withConstBuffer { sae.activation(of: j, in: $0.baseAddress! + b * 24) }
                #expect(abs(a - dense.storage[b * 160 + j]) <= 1e-5, "\(arch) row \(b) feature \(j)")
            }
        }
    }

    /// TopK's one-feature activation runs the encoder block by block (512 latents) and stops once k
    /// latents beat the feature: every feature of every row, across several blocks, with ties.
    @Test func topkActivationAcrossBlocks() throws {
        var rng = Xoshiro256(seed: 5)
        var sae = try SAE(config: SAEConfig(architecture: .topk, dIn: 16, dSAE: 1300, k: 20), rng: &rng)
        let x = Tensor.randomNormal(shape: [12, 16], rng: &rng)
        try sae.initializeDecoderBias(from: x)
        for i in sae.layout.b_enc { sae.params[i] = 0.2 * rng.nextGaussian() }
        // Latent 1100 copies latent 100: equal pre-activations in different blocks (ties to the lower index).
        for i in 0..<16 { sae.params[sae.layout.W_enc.lowerBound + 1100 * 16 + i] = sae.params[sae.layout.W_enc.lowerBound + 100 * 16 + i] }
        sae.params[sae.layout.b_enc.lowerBound + 1100] = sae.params[sae.layout.b_enc.lowerBound + 100]
        let dense = try sae.encode(x)
        var active = 0
        for b in 0..<12 {
            for j in 0..<1300 {
                let a = x.withConstBuffer { sae.activation(of: j, in: $0.baseAddress! + b * 16) }
                #expect(abs(a - dense.storage[b * 1300 + j]) <= 1e-5, "row \(b) feature \(j): \(a) vs \(dense.storage[b * 1300 + j])")
                if a > 0 { active += 1 }
            }
        }
        #expect(active == 12 * 20)
    }
}
