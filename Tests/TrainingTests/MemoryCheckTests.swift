import Foundation
import Testing
import Training

/// Every configuration value that sizes memory is checked, with overflow-checked arithmetic,
/// against the machine's memory before anything is allocated.
@Suite struct MemoryCheckTests {
    func problem(_ edit: (inout TrainConfig) -> Void, available: Int = 16 << 30, ranksOnHost: Int = 1) -> String? {
        var c = TrainConfig()
        edit(&c)
        do {
            try c.checkMemory(dIn: 768, hooks: 1, ranks: 1, ranksOnHost: ranksOnHost, fromModel: true, available: available)
            return nil
        } catch { return "\(error)" }
    }

    @Test func theDefaultsFitAndEachSizingValueCanBeTooLarge() throws {
        #expect(problem { _ in } == nil)
        #expect(physicalMemoryBytes() > 1 << 26)
        let cases: [((inout TrainConfig) -> Void, String)] = [
            ({ $0.dSae = 100_000_000_000 }, "d_sae 100000000000: the SAE's parameters"),
            ({ $0.dSae = 1 << 62 }, "d_sae 4611686018427387904"),
            ({ $0.expansion = 1 << 62 }, "expansion 4611686018427387904 (d_sae = 4611686018427387904 × d_in 768)"),
            ({ $0.bufferTokens = 1 << 40 }, "buffer_tokens 1099511627776: the shuffled activation blocks"),
            ({ $0.batchTokens = 1 << 40; $0.bufferTokens = 1 << 40 }, "batch_tokens 1099511627776: the encoder's activations"),
        ]
        for (edit, expected) in cases {
            let p = problem(edit) ?? ""
            #expect(p.hasPrefix(expected) && p.hasSuffix("this machine has 17 GB"), "\(p)")
        }
        // The bytes are stated: d_sae 1e11 × d_in 768 × 2 matrices × 4 buffers × 4 bytes ≈ 2.5 PB.
        #expect(problem { $0.dSae = 100_000_000_000 }?.contains("would need 2.5 PB") == true)
    }

    @Test func ranksSharingTheMachineShareItsMemory() {
        // 4 GB per rank of SAE state fits 16 GB once, not 8 times.
        let big: (inout TrainConfig) -> Void = { $0.dSae = 150_000 }
        #expect(problem(big) == nil)
        let p = problem(big, ranksOnHost: 8) ?? ""
        #expect(p.contains("for the 8 ranks on this machine"), "\(p)")
    }

    /// Sharded over N > 1 ranks, the SAE's parameters are held once per node, so they count once for
    /// the ranks on the machine, not once per rank.
    @Test func shardedParametersCountOncePerNode() throws {
        var c = TrainConfig()
        c.dSae = 16384
        let needs = c.memoryNeeds(dIn: 768, hooks: 2, ranks: 8, fromModel: true)
        let parameters = 2 * (2 * 16384 * 768 + 768 + 16384) * 4          // 2 hooks: W_enc, W_dec, b_dec, b_enc
        let node = try #require(needs.first { $0.perNode })
        #expect(node.bytes! >= parameters && node.bytes! <= parameters + 2 * 3 * 16384 * 4, "\(node)")   // bound: 4 vectors [m]
        let perRank = needs.filter { !$0.perNode }.reduce(0) { $0 + $1.bytes! }
        let exact = 8 * perRank + node.bytes!
        func fits(_ c: TrainConfig, _ available: Int) -> Bool {
            (try? c.checkMemory(dIn: 768, hooks: 2, ranks: 8, ranksOnHost: 8, fromModel: true, available: available)) != nil
        }
        #expect(fits(c, exact) && !fits(c, exact - 1))
        // Unsharded, every rank holds the parameters (and all the moments): the same memory is too little.
        var unsharded = c
        unsharded.shardOptimizer = false
        #expect(!fits(unsharded, exact) && unsharded.memoryNeeds(dIn: 768, hooks: 2, ranks: 8, fromModel: true).allSatisfy { !$0.perNode })
    }

    @Test func resumeFromIsAKeyAndAFlagAndImpliesResuming() throws {
        var c = TrainConfig()
        #expect(!c.resuming)
        try c.apply(flags: ["--resume-from", "8"])
        #expect(c.resumeFrom == 8 && c.resuming)
        c.resumeFrom = -2
        c.model = "m"; c.data = "d"; c.hooks = ["blocks.0.hook_resid_post"]
        #expect(throws: ConfigError.self) { try c.validate() }
    }
}
