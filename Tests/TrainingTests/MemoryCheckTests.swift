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
