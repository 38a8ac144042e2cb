import ArgumentParser
import Foundation
import Nanochat
import Runtime
import SAE
import Tensors

/// KV-cache generation tokens/s with no SAE, with one SAE tracking every token, and with one
/// steered feature (issue 7's overhead targets: tracking ≤ 5%, steering ≤ 10%). The SAE is a
/// random TopK SAE of the given size at the given hook unless --sae names one.
struct GenerateBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Generation tokens/s without and with SAE tracking and steering.")

    @Option(help: "Model (model_*.pt or checkpoint dir).") var model: String
    @Option(help: "tokenizer.pkl (default: the base dir's).") var tokenizer: String?
    @Option(help: "SAE directory (default: a random TopK SAE).") var sae: String?
    @Option(help: "Hook of the random SAE.") var hook = "blocks.2.hook_resid_post"
    @Option(help: "Latents of the random SAE.") var dSae = 4096
    @Option(help: "Architecture of the random SAE (topk, batchtopk, relu, gated, jumprelu).") var arch = "topk"
    @Option(help: "Tokens generated per measurement.") var tokens = 128
    @Option(help: "Repetitions (best is kept).") var repeats = 3
    @Flag(help: "Time the generating thread's CPU time instead of wall time (BLAS runs on that one thread), for a machine other jobs share.")
    var cpuTime = false
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        BLAS.setThreads(1)
        let location = try ModelLocation.resolve(model: model)
        let m = try NanochatModel(location: location)
        guard let tp = tokenizer ?? location.defaultTokenizerPath else { throw ValidationError("--tokenizer needed") }
        let tok = try Tokenizer(path: tp)
        let attached: AttachedSAE
        if let sae { attached = try AttachedSAE(directory: sae, model: m) } else {
            var rng = Xoshiro256(seed: 1)
            guard let architecture = Architecture(rawValue: arch) else {
                throw ValidationError("--arch must be one of topk, batchtopk, relu, gated, jumprelu; got \(arch)")
            }
            let s = try SAE(config: SAEConfig(architecture: architecture, dIn: m.config.nEmbd, dSAE: dSae, k: 32), rng: &rng)
            attached = AttachedSAE(path: "random", hook: try HookPoint(name: hook, nLayer: m.config.nLayer), sae: s)
        }
        let prompt = [try tok.bos] + tok.encode("The Python interpreter")
        // Four runtimes: no SAE, tracking, steering by `add` (the default --steer mode: no encode) and by
        // `clamp` (reads the feature's activation). The machine's memory bandwidth drifts by ±10%
        // over seconds, so the variants take turns within each repetition and each keeps its best.
        func runtime(_ setup: (SAERuntime) throws -> Void) throws -> SAERuntime {
            let rt = SAERuntime(model: m, tokenizer: tok)
            try setup(rt)
            return rt
        }
        func steering(_ mode: Steering.Mode) -> (SAERuntime) throws -> Void {
            { rt in
                try rt.attach(attached); rt.tracking = false
                try rt.steer(Steering(hook: attached.hook.name, feature: 1, value: 4, mode: mode))
            }
        }
        let runtimes = [try runtime { $0.tracking = false }, try runtime { try $0.attach(attached); $0.tracking = true },
                        try runtime(steering(.add)), try runtime(steering(.clamp))]
        var best = [Double](repeating: .infinity, count: runtimes.count)
        for _ in 0 ... repeats {                 // the first round warms up and counts like the others
            for (i, rt) in runtimes.enumerated() {
                // Reading the trace is part of tracking: the runtime encodes the tracked rows when it is read.
                best[i] = min(best[i], bestSeconds(repeats: 1, threadCPU: cpuTime) {
                    _ = try? rt.generate(prompt: prompt, maxTokens: tokens)
                    precondition(!rt.tracking || rt.trace.count == prompt.count + tokens - 1, "trace incomplete")
                })
            }
        }
        let (plain, tracked, steered, clamped) = (Double(tokens) / best[0], Double(tokens) / best[1],
                                                  Double(tokens) / best[2], Double(tokens) / best[3])
        let result: [String: Any] = ["tokens_per_s": plain, "tracked_tokens_per_s": tracked, "steered_tokens_per_s": steered,
                                     "clamped_tokens_per_s": clamped,
                                     "tracking_overhead_percent": (plain / tracked - 1) * 100,
                                     "steering_overhead_percent": (plain / steered - 1) * 100,
                                     "clamp_overhead_percent": (plain / clamped - 1) * 100, "d_sae": attached.sae.config.dSAE]
        if json { printJSON(result) } else {
            print(String(format: "generation: %.0f tok/s; tracking %.0f tok/s (+%.1f%%); steering (add) %.0f tok/s (+%.1f%%); clamp %.0f tok/s (+%.1f%%)",
                         plain, tracked, (plain / tracked - 1) * 100, steered, (plain / steered - 1) * 100,
                         clamped, (plain / clamped - 1) * 100))
        }
    }
}
