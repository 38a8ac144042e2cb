import Foundation

/// The d4 fixture (a 4-layer nanochat with tokenizer and parquet shards; the last shard is the
/// validation split) and a small TopK SAE trained on it once per test process, through the
/// programs as a user runs them. Shared by the suites that need a real SAE directory.
public enum D4Fixture {
    public static let path = TestPaths.fixtures.appendingPathComponent("nanochat-d4").path
    public static let model = path + "/base_checkpoints/d4"
    public static let data = path + "/base_data_climbmix"
    public static let hook = "blocks.1.hook_resid_post"

    /// A built executable, shell-quoted.
    public static func exe(_ name: String) -> String { shellQuote(TestPaths.products.appendingPathComponent(name).path) }

    /// The training run directory (metrics.jsonl, run.json, <hook>/) of a small TopK SAE: k 16,
    /// 1024 latents, 24 steps of 1024 tokens. Trained on first use.
    public static let topKRun: String = {
        let out = try! TestPaths.temporaryDirectory("tiny-sae").path
        let r = try! runShell("exec \(exe("sae-train")) --model \(shellQuote(model)) --data \(shellQuote(data)) --hook \(hook) --context 128 --expansion 4 --k 16 --batch-tokens 1024 --buffer-tokens 8192 --total-tokens 24576 --out \(shellQuote(out))")
        precondition(r.status == 0, r.stderr)
        return out
    }()

    /// That SAE's directory (SAELens format).
    public static var topKSAE: String { topKRun + "/" + hook }
}
