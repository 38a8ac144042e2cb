import Foundation
import Nanochat
@testable import Runtime
import SAE
import TestSupport
import Tensors
import Testing

/// Feature tracking and steering on the d4 fixture model with an SAE of random weights at
/// blocks.2.hook_resid_post (the mechanics do not depend on training).
@Suite struct SAERuntimeTests {
    static let d4 = URL(fileURLWithPath: TestPaths.d4BaseDir)
    static let hook = "blocks.2.hook_resid_post"
    static let model = try! NanochatModel(location: ModelLocation.resolve(model: d4.appendingPathComponent("base_checkpoints/d4").path))
    static let tokenizer = try! Tokenizer(path: d4.appendingPathComponent("tokenizer/tokenizer.pkl").path)

    /// A random topk SAE (d_in `dIn`, 1024 latents, k 16) saved in SAELens format; its directory.
    static func saeDirectory(dIn: Int = 256, hook: String = hook) throws -> String {
        var rng = Xoshiro256(seed: 3)
        var sae = try SAE(config: SAEConfig(architecture: .topk, dIn: dIn, dSAE: 1024, k: 16), rng: &rng)
        for i in sae.layout.b_enc { sae.params[i] = 0.5 }   // some features fire on every token
        let dir = try TestPaths.temporaryDirectory("runtime-sae").path
        try sae.saveSAELens(to: dir, metadata: SAELensMetadata(hookName: hook, contextSize: 256))
        return dir
    }

    func runtime() throws -> SAERuntime {
        let rt = SAERuntime(model: Self.model, tokenizer: Self.tokenizer)
        try rt.attach(AttachedSAE(directory: Self.saeDirectory(), model: Self.model))
        return rt
    }

    var prompt: [Int] { [try! Self.tokenizer.bos] + Self.tokenizer.encode("The Python interpreter") }

    @Test func trackingAloneChangesNothing() throws {
        let plain = try Self.model.generate(prompt: prompt, maxTokens: 24)
        let rt = try runtime()
        let tracked = try rt.generate(prompt: prompt, maxTokens: 24)
        #expect(tracked == plain)
        // One record per token processed (prompt at prefill, then one per new token but the last).
        #expect(rt.trace.count == prompt.count + 23)
        #expect(rt.trace.allSatisfy { $0.features.count == 10 && $0.errorNorm > 0 })
    }

    @Test func neutralInterventionsLeaveEveryLogitUnchanged() throws {
        let rt = try runtime()
        let base = try rt.forward(tokens: prompt)
        let last = try #require(rt.trace.last)
        let (feature, value) = try #require(last.features.first)
        let inactive = (0..<1024).first { f in !rt.trace.contains { $0.features.contains { $0.0 == f } } } ?? 1023
        // The clamp targets the last token only: treat it as the one "generated" position.
        func logits(_ s: Steering) throws -> Tensor {
            rt.interventions = []
            try rt.steer(s)
            return try Self.model.forward(tokens: [prompt], callback: rt.callback(promptLength: prompt.count - 1)).logits!
        }
        for s in [Steering(hook: Self.hook, feature: feature, value: value, mode: .clamp, scope: .gen),
                  Steering(hook: Self.hook, feature: 5, value: 0, mode: .add),
                  Steering(hook: Self.hook, feature: inactive, value: 0, mode: .clamp),
                  Steering(hook: Self.hook, feature: feature, value: 1, mode: .scale)] {
            let steered = try logits(s)
            #expect(steered.maxAbsDifference(base) <= 1e-5, "\(s) changed the logits by \(steered.maxAbsDifference(base))")
        }
        // Clamping the same feature elsewhere does change them (the check above can fail).
        #expect(try logits(Steering(hook: Self.hook, feature: feature, value: value + 5, mode: .clamp, scope: .gen))
                    .maxAbsDifference(base) > 1e-3)
    }

    @Test func steeringMovesTheActivationAlongTheDecoderRow() throws {
        let rt = try runtime()
        rt.tracking = false
        try rt.steer(Steering(hook: Self.hook, feature: 7, value: 8, mode: .add, scope: .all))
        let point = try HookPoint(name: Self.hook)
        func activation(steered: Bool) throws -> [Float] {
            var seen: [Float] = []
            let inner = rt.callback(promptLength: prompt.count)
            _ = try Self.model.forward(tokens: [prompt], hooks: [point], logits: false, callback: { act in
                if steered { inner(act) }
                if act.point == point { seen = Array(act.values) }
            })
            return seen
        }
        let before = try activation(steered: false), after = try activation(steered: true)
        let row = Array(rt.saes[0].decoderRow(7)), d = row.count
        for t in 0..<prompt.count {
            for i in 0..<d {
                let moved = after[t * d + i] - before[t * d + i]
                let expected: Float = t == 0 ? 0 : 8 * row[i]    // BOS is left alone
                #expect(abs(moved - expected) <= 1e-5 * max(1, abs(before[t * d + i])), "t \(t) i \(i)")
            }
        }
        // A strong push changes what the model writes.
        let plain = try Self.model.generate(prompt: prompt, maxTokens: 16)
        rt.interventions = []
        try rt.steer(Steering(hook: Self.hook, feature: 7, value: 60, mode: .add, scope: .all))
        #expect(try rt.generate(prompt: prompt, maxTokens: 16) != plain)
    }

    @Test func steeredKVCacheGenerationEqualsFullRecompute() throws {
        let rt = try runtime()
        rt.tracking = false
        try rt.steer(Steering(hook: Self.hook, feature: 3, value: 20, mode: .add, scope: .gen))
        try rt.steer(Steering(hook: Self.hook, feature: 11, value: 4, mode: .clamp, scope: .all))
        let cached = try rt.generate(prompt: prompt, maxTokens: 16)
        let recomputed = try rt.generateByRecompute(prompt: prompt, maxTokens: 16)
        #expect(cached == recomputed)
    }

    @Test func badInputIsRefusedNamingWhatWasExpected() throws {
        #expect(throws: RuntimeError.self) { try AttachedSAE(directory: Self.saeDirectory(dIn: 128), model: Self.model) }
        #expect(throws: RuntimeError.self) { try AttachedSAE(directory: Self.saeDirectory(hook: "blocks.9.hook_resid_post"), model: Self.model) }
        let rt = try runtime()
        do { try rt.steer(Steering(hook: Self.hook, feature: 1024, value: 1)); Issue.record("accepted feature 1024") }
        catch let e as RuntimeError { #expect(e.description.contains("d_sae = 1024")) }
        do { try rt.steer(Steering(hook: "blocks.1.hook_resid_post", feature: 1, value: 1)); Issue.record("accepted a hook without SAE") }
        catch let e as RuntimeError { #expect(e.description.contains("no SAE attached")) }
        for bad in ["blocks.2.hook_resid_post:x:1", "blocks.2.hook_resid_post:1", "nohook:1:1", "blocks.2.hook_resid_post:1:1:push",
                    "blocks.2.hook_resid_post:1:nan"] {
            #expect(throws: RuntimeError.self, "\(bad)") { try Steering(spec: bad) }
        }
        let s = try Steering(spec: "blocks.2.hook_resid_post:12:-3.5:clamp:gen")
        #expect(s.feature == 12 && s.value == -3.5 && s.mode == .clamp && s.scope == .gen)
    }

    @Test func theCommandLineListsFeaturesAndRefusesBadInputWithExitTwo() throws {
        let exe = shellQuote(TestPaths.products.appendingPathComponent("sae-run").path)
        let model = shellQuote(Self.d4.appendingPathComponent("base_checkpoints/d4").path)
        let tok = shellQuote(Self.d4.appendingPathComponent("tokenizer/tokenizer.pkl").path)
        let sae = try Self.saeDirectory()
        let r = try runShell("exec \(exe) features --model \(model) --tokenizer \(tok) --sae \(shellQuote(sae)) --prompt 'The Python interpreter' --top 3 --json")
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]]
        #expect(rows?.count == prompt.count - 1 && (rows?.first?["features"] as? [[Any]])?.count == 3, "\(r.stdout)")
        let g = try runShell("exec \(exe) generate --model \(model) --tokenizer \(tok) --sae \(shellQuote(sae)) --prompt hi --max-tokens 4 --steer blocks.2.hook_resid_post:5:10 --json")
        #expect(g.status == 0, "\(g.stderr)")
        for (args, word) in [("--steer blocks.2.hook_resid_post:5", "--steer"),
                             ("--steer blocks.2.hook_resid_post:4096:1", "d_sae"),
                             ("--sae \(shellQuote(try Self.saeDirectory(dIn: 128)))", "d_in 128")] {
            let b = try runShell("exec \(exe) generate --model \(model) --tokenizer \(tok) --sae \(shellQuote(sae)) --prompt hi --max-tokens 2 \(args)")
            #expect(b.status == 2 && b.stderr.contains(word) && b.stderr.split(separator: "\n").count == 1, "\(args): \(b.stderr)")
        }
    }

    @Test func chatStreamsRepliesAndTakesCommands() throws {
        let exe = shellQuote(TestPaths.products.appendingPathComponent("sae-run").path)
        let model = shellQuote(Self.d4.appendingPathComponent("base_checkpoints/d4").path)
        let sae = try Self.saeDirectory()
        let input = "hello there\n/features 2\n/steer blocks.2.hook_resid_post:5:60\nhello there\n/steer nonsense\n/reset\n/quit\n"
        let r = try runShell("printf \(shellQuote(input)) | exec \(exe) chat --model \(model) --sae \(shellQuote(sae)) --max-tokens 8 --temperature 0")
        #expect(r.status == 0, "\(r.stderr)")
        let out = r.stdout
        #expect(out.contains("\" there\""), "features of the turn's tokens: \(out)")
        #expect(out.contains("(steering: blocks.2.hook_resid_post:5:60.0:add:all)"))
        #expect(out.contains("error: --steer nonsense"))
        #expect(out.contains("(context cleared)"))
        // The same line, steered, continues differently.
        let replies = out.components(separatedBy: "> ").filter { !$0.hasPrefix("(") && !$0.isEmpty }
        #expect(replies.count >= 3 && replies[1] != replies[3], "\(replies)")
    }
}
