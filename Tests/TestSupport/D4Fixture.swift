import Foundation

/// The d4 model (a 4-layer nanochat with its tokenizer), the text shards (the last shard is the
/// validation split) and a small TopK SAE trained on it once per test process, through the
/// programs as a user runs them. Shared by the suites that need a real SAE directory.
public enum D4Fixture {
    public static let path = TestPaths.d4BaseDir
    public static let model = TestPaths.d4Model
    public static let reference = TestPaths.d4Reference
    public static var data: String { TestPaths.textShards }
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
