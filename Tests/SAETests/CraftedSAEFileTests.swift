import Foundation
import Formats
import Testing
@testable import SAE
import Tensors

/// SAE directories crafted to break the loader (issue 19): sizes near Int.max, negative, larger than
/// the weights file, and weights that are NaN or out of their domain. Each is refused with an error
/// naming the file and the key or tensor, before anything the size of cfg.json's claims is allocated.
@Suite struct CraftedSAEFileTests {
    /// A valid jumprelu SAE (d_in 8, d_sae 16) saved in SAELens format, then `cfgEdit` applied to
    /// its cfg.json and `weights` (if given) written as its sae_weights.safetensors.
    func directory(_ cfgEdit: (inout [String: Any]) -> Void = { _ in },
                   weights: [(name: String, tensor: Tensor)]? = nil) throws -> String {
        var rng = Xoshiro256(seed: 5)
        let sae = try SAE(config: SAEConfig(architecture: .jumprelu, dIn: 8, dSAE: 16, l1: 0.1), rng: &rng)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("crafted-sae-\(UUID().uuidString)").path
        try sae.saveSAELens(to: dir, metadata: SAELensMetadata(hookName: "blocks.1.hook_resid_post"))
        let cfgURL = URL(fileURLWithPath: dir + "/cfg.json")
        var cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: cfgURL)) as! [String: Any]
        cfgEdit(&cfg)
        try JSONSerialization.data(withJSONObject: cfg).write(to: cfgURL)
        if let weights { try writeSafetensors(weights, to: dir + "/sae_weights.safetensors") }
        return dir
    }

    func refusal(_ dir: String) -> String? {
        do { _ = try SAE.loadSAELens(from: dir); return nil } catch { return "\(error)" }
    }

    @Test func theValidDirectoryLoads() throws {
        #expect(refusal(try directory()) == nil)
    }

    /// 2^62 latents overflowed the parameter count (a trap, exit 132); 10^12 was allocated (exit 134).
    @Test(arguments: [4_611_686_018_427_387_904, Int.max, 1_000_000_000_000, 1 << 40])
    func hugeDSAEIsRefusedBeforeAllocating(_ m: Int) throws {
        let message = try #require(refusal(try directory { $0["d_sae"] = m }))
        #expect(message.contains("d_sae") || message.contains("tensor W_enc has shape [8, 16], expected [8, \(m)]"), "\(message)")
    }

    @Test func hugeDInIsRefused() throws {
        let message = try #require(refusal(try directory { $0["d_in"] = Int.max }))
        #expect(message.contains("d_sae") || message.contains("d_in"), "\(message)")
    }

    @Test(arguments: [-5, 0])
    func nonPositiveSizesAreRefused(_ m: Int) throws {
        let message = try #require(refusal(try directory { $0["d_sae"] = m }))
        #expect(message.contains("cfg.json: key d_sae must be a positive integer"), "\(message)")
    }

    @Test func fractionalAndHugeFloatSizesAreRefused() throws {
        for v in [16.5, 1e30, -1e30] as [Double] {
            let message = try #require(refusal(try directory { $0["d_sae"] = v }))
            #expect(message.contains("key d_sae"), "\(v): \(message)")
        }
    }

    /// cfg.json claims more latents than the weights file holds: the shapes are compared first.
    @Test func sizesLargerThanTheFileAreRefused() throws {
        let message = try #require(refusal(try directory { $0["d_sae"] = 1 << 20 }))
        #expect(message.contains("sae_weights.safetensors: tensor W_enc has shape [8, 16], expected [8, 1048576]"), "\(message)")
    }

    /// A NaN or inf weight is refused naming the tensor and the element.
    @Test func nonFiniteWeightsAreRefused() throws {
        var rng = Xoshiro256(seed: 5)
        let sae = try SAE(config: SAEConfig(architecture: .jumprelu, dIn: 8, dSAE: 16, l1: 0.1), rng: &rng)
        let good: [(name: String, tensor: Tensor)] = [
            ("W_enc", Tensor(shape: [8, 16], repeating: 0.1)), ("W_dec", sae.tensor(sae.layout.W_dec, shape: [16, 8])),
            ("b_dec", Tensor(shape: [8])), ("b_enc", Tensor(shape: [16])), ("threshold", Tensor(shape: [16], repeating: 0.01)),
        ]
        for (name, index, value, word) in [("W_dec", 37, Float.nan, "finite"), ("b_enc", 3, Float.infinity, "finite"),
                                           ("threshold", 2, Float(-0.5), "≥ 0")] {
            var weights = good
            let i = weights.firstIndex { $0.name == name }!
            weights[i].tensor.storage[index] = value
            let message = try #require(refusal(try directory(weights: weights)), "\(name)")
            #expect(message.contains("sae_weights.safetensors: tensor \(name), element \(index)") && message.contains(word), "\(message)")
        }
        #expect(refusal(try directory(weights: good)) == nil)
    }

    /// An integer tensor where a float one belongs is refused, not reinterpreted.
    @Test func integerWeightsAreRefused() throws {
        let dir = try directory()
        try writeSafetensors(int64s: [("W_enc", [8, 16], [Int64](repeating: 1, count: 128))], to: dir + "/sae_weights.safetensors")
        let message = try #require(refusal(dir))
        #expect(message.contains("W_enc"), "\(message)")
    }

    @Test func parameterCountIsCheckedArithmetic() {
        #expect(SAEConfig(architecture: .topk, dIn: 768, dSAE: 24576).parameterCount == 2 * 768 * 24576 + 768 + 24576)
        #expect(SAEConfig(architecture: .gated, dIn: 8, dSAE: 16).parameterCount == 2 * 128 + 8 + 48)
        #expect(SAEConfig(architecture: .topk, dIn: 1 << 31, dSAE: 1 << 31).parameterCount == nil)
        #expect(SAEConfig(architecture: .topk, dIn: 2, dSAE: Int.max / 2).parameterCount == nil)
    }
}
