import Foundation
import Formats
import Testing
@testable import SAE
import Tensors

@Suite struct SAELensFormatTests {
    func randomSAE(_ arch: Architecture, seed: UInt64 = 5) throws -> SAE {
        var rng = Xoshiro256(seed: seed)
        var sae = try SAE(config: SAEConfig(architecture: arch, dIn: 12, dSAE: 30, k: 5, l1: 0.2), rng: &rng)
        for i in 0..<sae.layout.count where !sae.layout.log_threshold.contains(i) { sae.params[i] += 0.2 * rng.nextGaussian() }
        for i in sae.layout.log_threshold { sae.params[i] = Foundation.log(0.05 + 0.3 * rng.nextFloat()) }
        sae.threshold = 0.25
        return sae
    }

    /// Save → load gives back bitwise the same parameters (jumprelu: θ = exp(log θ) and back, so
    /// compare thresholds), and the same features and reconstructions.
    @Test(arguments: [Architecture.topk, .relu, .gated, .jumprelu, .batchtopk])
    func roundTrip(_ arch: Architecture) throws {
        let sae = try randomSAE(arch)
        let dir = temporaryDirectory("roundtrip")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try sae.saveSAELens(to: dir, metadata: SAELensMetadata(hookName: "blocks.1.hook_resid_post", contextSize: 256,
                                                                extra: ["step": "10"]),
                            firingFractions: (0..<30).map { Double($0) / 100 })
        let back = try SAE.loadSAELens(from: dir)
        var rng = Xoshiro256(seed: 1)
        let x = Tensor.randomNormal(shape: [7, 12], rng: &rng)
        let f0 = try sae.encode(x), f1 = try back.encode(x)
        #expect(f0.maxAbsDifference(f1) <= 1e-6)
        #expect(try sae.decode(f0).maxAbsDifference(back.decode(f1)) <= 1e-6)
        let L = sae.layout
        if arch == .batchtopk {
            #expect(back.config.architecture == .jumprelu)
            #expect(back.params[back.layout.log_threshold].allSatisfy { Foundation.exp($0) == 0.25 })
        } else {
            #expect(back.config == {
                var c = SAEConfig(architecture: arch, dIn: 12, dSAE: 30); if arch == .topk { c.k = 5 }; return c
            }())
            for t in L.tensors where t.name != "log_threshold" { #expect(Array(back.params[t.range]) == Array(sae.params[t.range]), "\(t.name)") }
        }
        if arch == .jumprelu {
            for (a, b) in zip(back.params[L.log_threshold], sae.params[L.log_threshold]) {
                #expect(Foundation.exp(a) == Foundation.exp(b))
            }
        }
        let cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/cfg.json"))) as! [String: Any]
        #expect(cfg["d_in"] as? Int == 12 && cfg["apply_b_dec_to_input"] as? Bool == true)
        #expect((cfg["metadata"] as? [String: Any])?["hook_name"] as? String == "blocks.1.hook_resid_post")
        let sparsity = try SafetensorsFile(path: dir + "/sparsity.safetensors").tensor("sparsity")
        #expect(sparsity.shape == [30] && abs(sparsity.storage[10] - Float(Foundation.log10(0.1 + 1e-10))) < 1e-6)
        let weights = try SafetensorsFile(path: dir + "/sae_weights.safetensors")
        #expect(try weights.shape("W_enc") == [12, 30])
    }

    /// A checkpoint trained on s·x, saved with s folded in, reconstructs raw x as the scaled SAE did.
    @Test func inputScaleIsFoldedIntoSavedWeights() throws {
        let sae = try randomSAE(.relu)
        let s: Float = 3.5
        var rng = Xoshiro256(seed: 2)
        let x = Tensor.randomNormal(shape: [6, 12], rng: &rng)
        var sx = x; sx *= s
        let dir = temporaryDirectory("scale")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try sae.saveSAELens(to: dir, metadata: SAELensMetadata(hookName: "h"), inputScale: s)
        let raw = try SAE.loadSAELens(from: dir)
        #expect(try raw.encode(x).maxAbsDifference(sae.encode(sx)) <= 1e-5)
        var expected = try sae.decode(sae.encode(sx)); expected *= 1 / s
        #expect(try raw.decode(raw.encode(x)).maxAbsDifference(expected) <= 1e-5)
    }

    /// SAELens's apply_b_dec_to_input = false (e.g. Gemma Scope) is folded into b_enc.
    @Test func applyBDecFalseIsFolded() throws {
        let sae = try randomSAE(.jumprelu)
        let dir = temporaryDirectory("nobdec")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try sae.saveSAELens(to: dir, metadata: SAELensMetadata(hookName: "h"))
        var cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/cfg.json"))) as! [String: Any]
        cfg["apply_b_dec_to_input"] = false
        try JSONSerialization.data(withJSONObject: cfg).write(to: URL(fileURLWithPath: dir + "/cfg.json"))
        let loaded = try SAE.loadSAELens(from: dir)
        // Expected: pre = x·W_enc + b_enc (no b_dec subtraction).
        var rng = Xoshiro256(seed: 4)
        let x = Tensor.randomNormal(shape: [5, 12], rng: &rng)
        var shifted = x
        for b in 0..<5 { for i in 0..<12 { shifted.storage[b * 12 + i] += sae.params[sae.layout.b_dec.lowerBound + i] } }
        #expect(try loaded.encode(x).maxAbsDifference(sae.encode(shifted)) <= 1e-5)
    }

    @Test func unknownArchitectureIsRefused() throws {
        let dir = temporaryDirectory("badarch")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try randomSAE(.relu).saveSAELens(to: dir, metadata: SAELensMetadata(hookName: "h"))
        var cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/cfg.json"))) as! [String: Any]
        cfg["architecture"] = "matryoshka"
        try JSONSerialization.data(withJSONObject: cfg).write(to: URL(fileURLWithPath: dir + "/cfg.json"))
        #expect(throws: SAEError.unknownArchitecture(file: dir + "/cfg.json", name: "matryoshka")) { try SAE.loadSAELens(from: dir) }
        #expect("\(SAEError.unknownArchitecture(file: "c.json", name: "x"))".contains("unknown architecture \"x\""))
        cfg["architecture"] = "standard"; cfg["d_in"] = 13
        try JSONSerialization.data(withJSONObject: cfg).write(to: URL(fileURLWithPath: dir + "/cfg.json"))
        #expect(throws: SAEError.badTensor(file: dir + "/sae_weights.safetensors", name: "W_enc", expected: [13, 30], got: [12, 30])) {
            try SAE.loadSAELens(from: dir)
        }
    }
}
