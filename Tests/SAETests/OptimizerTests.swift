import Foundation
import Formats
import Testing
@testable import SAE
import Tensors
import TestSupport

@Suite struct OptimizerTests {
    /// Two Adam steps against the formula evaluated by hand in Double.
    @Test func adamMatchesFormula() {
        var p = ParameterBuffer([1, -2, 0.5] as [Float])
        var adam = AdamState(count: 3, config: AdamConfig(beta1: 0.8, beta2: 0.9, eps: 1e-6))
        let g1: [Float] = [0.1, -0.3, 2], g2: [Float] = [-0.2, 0.1, 1]
        adam.update(&p, gradients: g1, lr: 0.01)
        adam.update(&p, gradients: g2, lr: 0.01)
        for i in 0..<3 {
            var q = [1.0, -2, 0.5][i], m = 0.0, v = 0.0
            for (t, g) in [Double(g1[i]), Double(g2[i])].enumerated() {
                m = 0.8 * m + 0.2 * g; v = 0.9 * v + 0.1 * g * g
                let mh = m / (1 - pow(0.8, Double(t + 1))), vh = v / (1 - pow(0.9, Double(t + 1)))
                q -= 0.01 * mh / (vh.squareRoot() + 1e-6)
            }
            #expect(abs(Double(p[i]) - q) < 1e-6)
        }
        #expect(adam.step == 2)
    }

    @Test func schedules() {
        let lr = LearningRateSchedule(lr: 1, totalSteps: 100, warmupSteps: 10, decaySteps: 20, finalFraction: 0.1)
        #expect(lr(0) == 0.1 && lr(9) == 1 && lr(50) == 1 && lr(79) == 1)
        #expect(abs(lr(89) - 0.55) < 1e-6 && abs(lr(99) - 0.1) < 1e-6)
        let l = LambdaSchedule(lambda: 2, warmupSteps: 4)
        #expect(l(0) == 0.5 && l(3) == 2 && l(100) == 2)
    }

    @Test func gradientClipping() {
        var g: [Float] = [3, 4]
        #expect(clipGradientNorm(&g, maxNorm: 1) == 5)
        #expect(abs(g[0] - 0.6) < 1e-7 && abs(g[1] - 0.8) < 1e-7)
        var h: [Float] = [0.3, 0.4]
        clipGradientNorm(&h, maxNorm: 1)
        #expect(h == [0.3, 0.4])
    }

    /// The projected decoder gradient is orthogonal to each row; after a step the rows have unit norm.
    @Test func decoderRowsStayUnitNorm() throws {
        var rng = Xoshiro256(seed: 3)
        var sae = try SAE(config: SAEConfig(architecture: .topk, dIn: 16, dSAE: 64, k: 4), rng: &rng)
        let x = Tensor.randomNormal(shape: [32, 16], rng: &rng)
        var g = [Float](repeating: 0, count: sae.layout.count)
        _ = try sae.lossAndGradients(x, into: &g)
        sae.projectDecoderGradients(&g)
        let L = sae.layout
        var worstDot: Float = 0
        for j in 0..<64 {
            let w = Array(sae.params[L.W_dec.lowerBound + j * 16 ..< L.W_dec.lowerBound + (j + 1) * 16])
            let gj = Array(g[L.W_dec.lowerBound + j * 16 ..< L.W_dec.lowerBound + (j + 1) * 16])
            worstDot = max(worstDot, abs(zip(w, gj).map(*).reduce(0, +)))
        }
        #expect(worstDot < 1e-6)
        var adam = AdamState(count: L.count)
        sae.optimizerStep(gradients: &g, adam: &adam, lr: 0.05)
        for j in 0..<64 {
            let n = (0..<16).map { sae.params[L.W_dec.lowerBound + j * 16 + $0] }.reduce(0) { $0 + $1 * $1 }
            #expect(abs(n - 1) < 1e-5)
        }
    }

    /// Sharded optimizer state (ZeRO-1): Adam states over slices that cut between decoder rows,
    /// each updating its own slice of a copy, give bitwise the full update, unit-norm rows included;
    /// resampling's moment reset touches only the slice a state holds.
    @Test func adamOverSlicesIsTheFullUpdate() throws {
        var rng = Xoshiro256(seed: 11)
        var sae = try SAE(config: SAEConfig(architecture: .topk, dIn: 16, dSAE: 64, k: 4), rng: &rng)
        let L = sae.layout
        let x = Tensor(shape: [32, 16], storage: (0..<512).map { _ in rng.nextGaussian() })
        var g = [Float](repeating: 0, count: L.count)
        _ = try sae.lossAndGradients(x, into: &g)
        // Cuts inside W_enc (anywhere) and inside W_dec (on a row boundary).
        let cuts = [0, 777, L.W_dec.lowerBound + 16 * 20, L.W_dec.lowerBound + 16 * 41, L.count]
        var whole = sae, wholeG = g, wholeAdam = AdamState(count: L.count)
        var slices = zip(cuts, cuts.dropFirst()).map { AdamState(slice: $0 ..< $1) }
        var parts = sae
        for step in 0..<3 {
            whole.optimizerStep(gradients: &wholeG, adam: &wholeAdam, lr: 0.01)
            var next = parts.params
            for i in slices.indices {
                var copy = parts, gi = g
                copy.optimizerStep(gradients: &gi, adam: &slices[i], lr: 0.01)
                next.replaceSubrange(slices[i].slice, with: copy.params[slices[i].slice])
            }
            parts.params = next
            #expect(parts.params == whole.params, "step \(step)")
            wholeG = g
        }
        #expect(slices.flatMap(\.m) == wholeAdam.m && slices.flatMap(\.v) == wholeAdam.v)
        slices[1].resetMoments(0 ..< 1000)     // slice 1 holds 777 ..< 1344
        #expect(slices[1].m[..<223].allSatisfy { $0 == 0 } && slices[1].m[223...].contains { $0 != 0 })
        #expect(slices[0].m.contains { $0 != 0 })
    }

    @Test func inputScalingEstimate() {
        var s = InputScaling()
        s.observe(Tensor(shape: [2, 4], storage: [2, 2, 2, 2, 2, 2, 2, 2]))   // ‖x‖² = 16, d = 4
        #expect(abs(s.factor(dIn: 4) - 0.5) < 1e-7)
    }

    /// Training on real activations (nanochat d4's blocks.1.hook_resid_post, 512 tokens of the fixture):
    /// every architecture's loss falls well below its starting value; topk's FVU ends below 0.5 and
    /// its decoder rows keep unit norm.
    @Test(arguments: Architecture.allCases)
    func trainsOnFixtureActivations(_ arch: Architecture) throws {
        let path = TestPaths.d4Reference + "/forward.safetensors"
        let acts = try SafetensorsFile(path: path).tensor("blocks.1.hook_resid_post")   // [2,256,256]
        var x = acts.reshaped([512, 256])
        var scaling = InputScaling()
        scaling.observe(x)
        x *= scaling.factor(dIn: 256)
        var rng = Xoshiro256(seed: 5)
        var config = SAEConfig(architecture: arch, dIn: 256, dSAE: 256, k: 16, l1: arch == .jumprelu ? 1e-3 : 1e-2)
        config.initialThreshold = 0.001
        var sae = try SAE(config: config, rng: &rng)
        try sae.initializeDecoderBias(from: x)
        var adam = AdamState(count: sae.layout.count)
        var g = [Float](repeating: 0, count: sae.layout.count)
        var stats = LatentStatistics(latents: 256)
        let first = try sae.lossAndGradients(x, into: &g)
        var last = first
        for step in 0..<25 {
            last = try sae.lossAndGradients(x, into: &g, deadMask: stats.deadMask(deadTokens: 2048))
            stats.record(counts: last.firingCounts, tokens: 512)
            if arch == .batchtopk, let a = last.minKeptActivation { sae.updateThreshold(with: a) }
            clipGradientNorm(&g, maxNorm: 10)
            sae.optimizerStep(gradients: &g, adam: &adam, lr: LearningRateSchedule(lr: 1e-2, totalSteps: 25, warmupSteps: 3)(step))
        }
        #expect(last.mse < 0.5 * first.mse, "\(arch): mse \(first.mse) → \(last.mse)")
        if arch == .topk {
            #expect(last.fvu < 0.5, "topk FVU \(last.fvu)")
            #expect(abs(last.l0 - 16) < 0.5)
        }
        if arch == .batchtopk { #expect(sae.threshold > 0) }
    }
}
