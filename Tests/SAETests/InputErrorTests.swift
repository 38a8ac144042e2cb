import Foundation
import Testing
@testable import SAE
import Tensors

@Suite struct InputErrorTests {
    func sae(_ arch: Architecture = .topk) throws -> SAE {
        var rng = Xoshiro256(seed: 1)
        return try SAE(config: SAEConfig(architecture: arch, dIn: 8, dSAE: 32, k: 4, l1: 0.1), rng: &rng)
    }

    @Test func mismatchedWidth() throws {
        let s = try sae()
        var g = [Float](repeating: 0, count: s.layout.count)
        #expect(throws: SAEError.widthMismatch(expected: 8, got: 9)) {
            try s.lossAndGradients(Tensor(shape: [3, 9]), into: &g)
        }
        #expect("\(SAEError.widthMismatch(expected: 8, got: 9))".contains("width 9 but the SAE has d_in 8"))
    }

    @Test func kLargerThanLatents() {
        var rng = Xoshiro256(seed: 1)
        #expect(throws: SAEError.invalidConfig(field: "k", expected: "1...d_sae (32), got 33")) {
            try SAE(config: SAEConfig(architecture: .topk, dIn: 8, dSAE: 32, k: 33), rng: &rng)
        }
    }

    @Test func negativeLambda() throws {
        var rng = Xoshiro256(seed: 1)
        #expect(throws: SAEError.invalidConfig(field: "l1", expected: "a finite λ >= 0, got -0.5")) {
            try SAE(config: SAEConfig(architecture: .relu, dIn: 8, dSAE: 32, l1: -0.5), rng: &rng)
        }
        let s = try sae(.relu)
        var g = [Float](repeating: 0, count: s.layout.count)
        #expect(throws: SAEError.invalidLambda(-1)) { try s.lossAndGradients(Tensor(shape: [2, 8]), into: &g, lambda: -1) }
    }

    /// A NaN anywhere in a batch is refused before anything is written.
    @Test(arguments: Architecture.allCases)
    func nanBatchIsRefusedWithNothingUpdated(_ arch: Architecture) throws {
        let s = try sae(arch)
        var rng = Xoshiro256(seed: 2)
        var x = Tensor.randomNormal(shape: [4, 8], rng: &rng)
        x.storage[2 * 8 + 5] = .nan
        var g = [Float](repeating: 42, count: s.layout.count)
        #expect(throws: SAEError.nonFiniteInput(row: 2)) { try s.lossAndGradients(x, into: &g) }
        #expect(g.allSatisfy { $0 == 42 })
        var t = s
        #expect(throws: SAEError.nonFiniteInput(row: 2)) { try t.initializeDecoderBias(from: x) }
        #expect(t.params == s.params)
    }

    @Test func wrongBufferSizes() throws {
        let s = try sae()
        var g = [Float](repeating: 0, count: 3)
        #expect(throws: SAEError.sizeMismatch(what: "gradient buffer", expected: s.layout.count, got: 3)) {
            try s.lossAndGradients(Tensor(shape: [2, 8]), into: &g)
        }
        var g2 = [Float](repeating: 0, count: s.layout.count)
        #expect(throws: SAEError.sizeMismatch(what: "dead-latent mask", expected: 32, got: 5)) {
            try s.lossAndGradients(Tensor(shape: [2, 8]), into: &g2, deadMask: [Bool](repeating: true, count: 5))
        }
    }
}
