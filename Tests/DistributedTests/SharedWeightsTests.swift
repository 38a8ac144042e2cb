import Foundation
import TestSupport
import Testing

/// The ranks of a node hold one copy of the model: float32 weights are used in place from the
/// mapped checkpoint (page cache, counted as RssFile), bf16 matrices are converted once into
/// node-shared memory (RssShmem). Each rank's private memory (RssAnon, recorded in run.json after
/// loading) stays well below one copy of the weights. The checkpoint: random, d12's shape with a
/// 4096-token vocabulary (~360 MB), written by `sae-bench checkpoint`.
@Suite(.serialized) struct SharedWeightsTests {
    @Test(arguments: [false, true])
    func ranksDoNotCopyTheWeights(allBF16: Bool) throws {
        let work = try TestPaths.temporaryDirectory("shared-weights")
        defer { try? FileManager.default.removeItem(at: work) }
        let model = work.appendingPathComponent("d12").path
        let written = try runShell("exec \(D4Fixture.exe("sae-bench")) checkpoint --shape d12 --vocab 4096 \(allBF16 ? "--all-bf16" : "") --out \(shellQuote(model))")
        try #require(written.status == 0, "\(written.stderr)")
        // Float32 bytes of the 12 layers' matrices: what one private copy would cost at least.
        let floats: Int = 12 * 12 * 768 * 768
        let copyMB = Double(floats * 4) / 1_048_576
        let out = work.appendingPathComponent("run").path
        let r = try MPIJob.run(ranks: 2, "sae-train", [
            "--model", model, "--tokenizer", D4Fixture.path + "/tokenizer", "--data", D4Fixture.data,
            "--hook", "blocks.1.hook_resid_post", "--context", "32", "--expansion", "1", "--k", "8",
            "--batch-tokens", "64", "--buffer-tokens", "64", "--total-tokens", "128", "--out", out])
        try #require(r.status == 0, "\(r.stderr)")
        let run = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/run.json"))) as? [String: Any]
        let ranks = try #require(run?["memory_per_rank_mb"] as? [[String: Any]])
        #expect(ranks.count == 2)
        for rank in ranks {
            let privateMB = try #require(rank["private"] as? Double)
            #expect(privateMB < copyMB / 2, "rank \(rank["rank"]!): \(privateMB) MB private for \(copyMB) MB of weights (\(rank))")
            if allBF16 { #expect((rank["node_shared"] as? Double ?? 0) > copyMB * 0.9, "converted matrices in node-shared memory: \(rank)") }
        }
        #expect(r.stderr.contains(allBF16 ? "converted to float32" : "memory per rank after loading"), "\(r.stderr)")
        // The account of the planned memory: the Adam moments are sharded over the 2 ranks,
        // 2 moments × 1/2 of the SAE's W_enc, W_dec [768, 768], b_enc [768] and b_dec [768].
        let account = try #require(run?["memory_account_mb"] as? [String: Double])
        let saeMB = Double((2 * 768 * 768 + 2 * 768) * 4) / 1_048_576
        // The parameters themselves are held once per node, not privately.
        #expect(account["sae_parameters"] == 0 && abs(account["sae_parameters_node_shared", default: 0] - saeMB) < 1e-6, "\(account)")
        // Each rank's piece ends on a decoder row, so it is within a row (768 floats) of half.
        #expect(abs(account["adam_moments", default: 0] - saeMB) <= 2 * 768 * 4 / 1_048_576, "\(account)")
        #expect(account["activation_blocks", default: 0] > 0 && account["encoder_workspace", default: 0] > 0, "\(account)")
        #expect((run?["optimizer"] as? [String: Any])?["sharded"] as? Bool == true)
        #expect(r.stderr.contains("Adam moments \(String(format: "%.0f", saeMB)) MB (1/2, sharded)"), "\(r.stderr)")
    }
}
