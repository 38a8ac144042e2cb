import Formats
import Foundation
import Nanochat
@testable import Runtime
import SAE
import TestSupport
import Tensors
import Testing

/// Inputs from outside that once crashed or misled the runtime (issue 19), each from its
/// reproduction: a negative feature index through the HTTP API (a trap in decoderRow; -1 steered
/// along the wrong row), crafted SAE cfg.json sizes (overflow and allocation crashes in
/// `sae-run features`), NaN weights read without a word; and the request decoding of `sae-run serve`.
@Suite struct HostileInputTests {
    static let hook = SAERuntimeTests.hook
    static let targets = [Steering.Target(hook: hook, dSAE: 1024)]

    /// Every path that adds an intervention goes through `Steering.check`.
    @Test func steeringIsCheckedAgainstTheAttachedSAE() throws {
        let rt = SAERuntime(model: SAERuntimeTests.model, tokenizer: SAERuntimeTests.tokenizer)
        try rt.attach(AttachedSAE(directory: SAERuntimeTests.saeDirectory(), model: SAERuntimeTests.model))
        for (s, word) in [(Steering(hook: Self.hook, feature: -100_000, value: 5), "0..<1024"),
                          (Steering(hook: Self.hook, feature: -1, value: 5, mode: .clamp), "0..<1024"),
                          (Steering(hook: Self.hook, feature: 1024, value: 5), "0..<1024"),
                          (Steering(hook: Self.hook, feature: 3, value: .nan), "finite"),
                          (Steering(hook: Self.hook, feature: 3, value: -.infinity, mode: .scale), "finite"),
                          (Steering(hook: "blocks.1.hook_resid_post", feature: 3, value: 1), "no SAE attached")] {
            #expect(throws: RuntimeError.self) { try rt.steer(s) }
            do { try rt.steer(s) } catch { #expect("\(error)".contains(word), "\(error)") }
        }
        #expect(rt.interventions.isEmpty)
        try rt.steer(Steering(hook: Self.hook, feature: 1023, value: 5))
        #expect(rt.interventions.count == 1)
    }

    /// A finite but huge steer overflows the activations downstream (inf, then NaN): generation and
    /// tracking an SAE at a later hook must still finish.
    @Test func overflowingSteersLeaveTrackingWorking() throws {
        let rt = SAERuntime(model: SAERuntimeTests.model, tokenizer: SAERuntimeTests.tokenizer)
        try rt.attach(AttachedSAE(directory: SAERuntimeTests.saeDirectory(), model: SAERuntimeTests.model))
        try rt.attach(AttachedSAE(directory: SAERuntimeTests.saeDirectory(hook: "blocks.3.hook_resid_post"), model: SAERuntimeTests.model))
        for mode in Steering.Mode.allCases {
            rt.interventions = []
            try rt.steer(Steering(hook: Self.hook, feature: 3, value: 3e38, mode: mode))
            let out = try rt.generate(prompt: [try SAERuntimeTests.tokenizer.bos] + SAERuntimeTests.tokenizer.encode("Hello"), maxTokens: 3)
            #expect(out.count == 3)
            let trace = rt.trace
            #expect(trace.count == 10, "\(mode)")
            // Past the steered hook the activations are inf/NaN: no features fire, ‖x − x̂‖ is not finite
            // (the server writes it as null), and nothing traps.
            #expect(trace.allSatisfy { $0.features.allSatisfy { $0.1.isFinite } }, "\(mode)")
        }
    }

    func refusal(_ body: String, generate: Bool = true) -> String? {
        let limits = ServeRequest.Limits(maxPromptChars: 200, maxNewTokens: 64)
        do {
            if generate { _ = try ServeRequest.generate(Data(body.utf8), limits: limits, targets: Self.targets) }
            else { _ = try ServeRequest.features(Data(body.utf8), limits: limits) }
            return nil
        } catch let e as RuntimeError {
            return e.description
        } catch {
            return "not a RuntimeError: \(error)"
        }
    }

    static let steer = #"{"hook":"blocks.2.hook_resid_post","feature":3,"value":5}"#

    /// Bodies an attacker or a buggy script sends, and a word each refusal must contain.
    static let hostile: [(body: String, word: String)] = [
        (#"{"prompt":"Hello","max_tokens":5,"steer":[{"hook":"blocks.2.hook_resid_post","feature":-100000,"value":5,"mode":"add","scope":"gen"}]}"#, "0..<1024"),
        (#"{"prompt":"Hello","steer":[{"hook":"blocks.2.hook_resid_post","feature":-1,"value":5,"mode":"clamp"}]}"#, "0..<1024"),
        (#"{"prompt":"Hello","steer":[{"hook":"blocks.2.hook_resid_post","feature":99999999999999999999,"value":5}]}"#, "feature"),
        (#"{"prompt":"Hello","steer":[{"hook":"blocks.2.hook_resid_post","feature":3,"value":1e400}]}"#, "1e400"),
        (#"{"prompt":"Hello","steer":[{"hook":"blocks.2.hook_resid_post","feature":3.5,"value":1}]}"#, "feature"),
        (#"{"prompt":"Hello","steer":[{"hook":"blocks.2.hook_resid_post","feature":"3","value":1}]}"#, "\"feature\": expected an integer"),
        (#"{"prompt":"Hello","steer":[{"hook":"blocks.2.hook_resid_post","feature":3}]}"#, "\"value\": required"),
        (#"{"prompt":"Hello","steer":[{"hook":"blocks.2.hook_resid_post","feature":3,"value":1,"mode":"multiply"}]}"#, "mode"),
        (#"{"prompt":"Hello","steer":[{"hook":"blocks.2.hook_resid_post","feature":3,"value":1,"scope":7}]}"#, "scope"),
        (#"{"prompt":"Hello","steer":[{"hook":"blocks.2.hook_resid_post","feature":3,"value":1,"feature_id":2}]}"#, "\"feature_id\": unknown key"),
        (#"{"prompt":"Hello","steer":[{"hook":"blocks.9.hook_resid_post","feature":3,"value":1}]}"#, "no SAE attached"),
        (#"{"prompt":"Hello","steer":{"hook":"blocks.2.hook_resid_post"}}"#, "\"steer\": expected an array"),
        (#"{"prompt":"Hello","steer":[1,2]}"#, "steer"),
        (#"{"prompt":"Hello","steer":[null]}"#, "steer"),
        (#"{"prompt":"Hello","steer":["#, "JSON"),
        (#"{"prompt":"Hello","seed":-1}"#, "\"seed\""),
        (#"{"prompt":"Hello","seed":1e30}"#, "\"seed\""),
        (#"{"prompt":"Hello","max_tokens":5.5}"#, "\"max_tokens\""),
        (#"{"prompt":"Hello","max_tokens":-3}"#, "\"max_tokens\": expected 1-64"),
        (#"{"prompt":"Hello","max_tokens":true}"#, "\"max_tokens\""),
        (#"{"prompt":"Hello","temperature":-1}"#, "\"temperature\": expected 0-10"),
        (#"{"prompt":"Hello","temperature":"hot"}"#, "\"temperature\": expected a number"),
        (#"{"prompt":"Hello","max_tokenz":5}"#, "\"max_tokenz\": unknown key"),
        (#"{"prompt":""}"#, "\"prompt\": expected a non-empty string"),
        (#"{"prompt":null}"#, "\"prompt\""),
        (#"{"prompt":["Hello"]}"#, "\"prompt\": expected a string"),
        (#"{"max_tokens":5}"#, "\"prompt\": required"),
        (#"[1,2,3]"#, "JSON object"),
        (#""Hello""#, "JSON object"),
        ("", "JSON"),
        ("nope", "JSON"),
        ("{\"prompt\":\"\(String(repeating: "x", count: 201))\"}", "longer than 200"),
        (#"{"prompt":"Hello","steer":"# + String(repeating: "[", count: 20_000) + String(repeating: "]", count: 20_000) + "}", "nested deeper"),
        (#"{"prompt":"Hello","x":"# + String(repeating: "{\"a\":", count: 10_000) + "1" + String(repeating: "}", count: 10_000) + "}", "nested deeper"),
        (#"{"prompt":"Hello","steer":["# + Array(repeating: steer, count: 65).joined(separator: ",") + "]}", "at most 64"),
        ("{\"prompt\":\"\(String(repeating: "x", count: 70_000))\"}", "larger than 65536 bytes"),
    ]

    @Test func hostileBodiesAreRefusedWithAMessageNamingTheKey() {
        for (body, word) in Self.hostile {
            let message = refusal(body)
            #expect(message?.contains(word) == true, "\(body.prefix(120)): \(message ?? "accepted")")
            #expect(message.map { !$0.contains("\n") && !$0.hasPrefix("not a RuntimeError") } ?? false, "\(message ?? "")")
        }
        #expect(refusal(#"{"prompt":"Hello","top":0}"#, generate: false)?.contains("\"top\": expected 1-50") == true)
        #expect(refusal(#"{"prompt":"Hello","top":3,"max_tokens":2}"#, generate: false)?.contains("\"max_tokens\": unknown key") == true)
    }

    @Test func aWellFormedRequestDecodesAsWritten() throws {
        let body = #"{"prompt":"Hello","max_tokens":5,"temperature":0.5,"seed":18446744073709551615,"steer":[{"hook":"blocks.2.hook_resid_post","feature":1023,"value":-2.5,"mode":"clamp","scope":"gen"}]}"#
        let r = try ServeRequest.generate(Data(body.utf8), limits: .init(maxPromptChars: 200, maxNewTokens: 64), targets: Self.targets)
        #expect(r == ServeRequest.Generate(prompt: "Hello", maxTokens: 5, temperature: 0.5, seed: .max,
                                           steer: [Steering(hook: Self.hook, feature: 1023, value: -2.5, mode: .clamp, scope: .gen)]))
        let d = try ServeRequest.generate(Data(#"{"prompt":"Hi"}"#.utf8), limits: .init(), targets: Self.targets)
        #expect(d == ServeRequest.Generate(prompt: "Hi", maxTokens: 32, temperature: 0, seed: 42, steer: []))
        #expect(try ServeRequest.features(Data(#"{"prompt":"Hi"}"#.utf8), limits: .init()) == ServeRequest.Features(prompt: "Hi", top: 10))
        // Values beyond float32 saturate instead of becoming inf.
        let huge = try ServeRequest.generate(Data(#"{"prompt":"Hi","steer":[{"hook":"blocks.2.hook_resid_post","feature":0,"value":-1e300}]}"#.utf8),
                                             limits: .init(), targets: Self.targets)
        #expect(huge.steer.first?.value == -Float.greatestFiniteMagnitude)
    }

    @Test func nestingDepthSkipsBracketsInStrings() {
        #expect(ServeRequest.nestingDepth(Data(#"{"a":"[[[[{{{{\"[[","b":[[1]]}"#.utf8)) == 3)
    }

    // The command line, with crafted SAE directories and damaged weights.

    /// The test SAE with its cfg.json's `key` set to `value`.
    static func craftedSAE(_ key: String, _ value: Any) throws -> String {
        let dir = try SAERuntimeTests.saeDirectory()
        let url = URL(fileURLWithPath: dir + "/cfg.json")
        var cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        cfg[key] = value
        try JSONSerialization.data(withJSONObject: cfg).write(to: url)
        return dir
    }

    /// `sae-run features` on crafted sizes: exit 2 with one line, in little time and memory (GNU time
    /// reports the peak resident set; the d4 model alone needs ~100 MB).
    @Test func craftedSizesExitTwoQuicklyWithSmallMemory() throws {
        let exe = D4Fixture.exe("sae-run")
        let model = shellQuote(SAERuntimeTests.d4.appendingPathComponent("base_checkpoints/d4").path)
        for (value, word) in [(4_611_686_018_427_387_904, "d_sae"), (1_000_000_000_000, "W_enc"), (-7, "d_sae"), (1 << 30, "W_enc")] {
            let sae = try Self.craftedSAE("d_sae", value)
            let r = try runShell("exec /usr/bin/time -q -f 'peak-kb %M' \(exe) features --model \(model) --sae \(shellQuote(sae)) --prompt hi --json")
            let lines = r.stderr.split(separator: "\n")
            let peak = lines.last.flatMap { Int($0.split(separator: " ").last ?? "") } ?? -1
            #expect(r.status == 2 && lines.count == 2 && lines[0].contains(word), "d_sae \(value): exit \(r.status), \(r.stderr)")
            #expect(peak > 0 && peak < 400_000 && r.seconds < 30, "d_sae \(value): peak \(peak) kB, \(r.seconds) s")
        }
    }

    /// Invalid UTF-8 on `sae-run tokenize`'s stdin is an error naming the line and byte offset (readLine
    /// replaced it with U+FFFD and tokenized that, exit 0).
    @Test func invalidUTF8OnStdinIsRefusedWithItsOffset() throws {
        let tok = shellQuote(SAERuntimeTests.d4.appendingPathComponent("tokenizer/tokenizer.pkl").path)
        let r = try runShell("printf '\"hello\"\\n\"a\\377 b\"\\n' | exec \(D4Fixture.exe("sae-run")) tokenize --tokenizer \(tok)")
        #expect(r.status == 2 && r.stderr.contains("stdin line 2: invalid UTF-8 at byte offset 10"), "\(r.status): \(r.stderr)")
        let ok = try runShell("printf '\"h\\303\\251llo\"\\n' | exec \(D4Fixture.exe("sae-run")) tokenize --tokenizer \(tok)")
        #expect(ok.status == 0 && ok.stdout.hasPrefix("["), "\(ok.stderr)")
    }

    /// An output path the user can fix is exit 2 before anything runs (was exit 1 after the forward),
    /// and a directory without cfg.json says what an SAE directory holds.
    @Test func pathsTheUserCanFixExitTwo() throws {
        let exe = D4Fixture.exe("sae-run")
        let model = shellQuote(SAERuntimeTests.d4.appendingPathComponent("base_checkpoints/d4").path)
        let tokens = try TestPaths.temporaryDirectory("tokens").appendingPathComponent("t.json")
        try Data("[[1,2,3]]".utf8).write(to: tokens)
        for (out, word) in [("/", "is a directory"), ("/nonexistent-dir/x.safetensors", "its directory /nonexistent-dir does not exist")] {
            let r = try runShell("exec \(exe) forward --model \(model) --tokens \(shellQuote(tokens.path)) --out \(out)")
            #expect(r.status == 2 && r.stderr.hasPrefix("error: --out \(out): \(word)"), "\(r.status): \(r.stderr)")
        }
        let empty = try TestPaths.temporaryDirectory("not-an-sae").path
        let r = try runShell("exec \(exe) features --model \(model) --sae \(shellQuote(empty)) --prompt hi")
        #expect(r.status == 2 && r.stderr.contains("cfg.json: no such file; an SAE directory holds cfg.json"), "\(r.stderr)")
    }

    /// A NaN in the SAE's decoder: exit 2 naming the tensor (it printed meaningless numbers, exit 0).
    @Test func nanWeightsExitTwoNamingTheTensor() throws {
        let dir = try SAERuntimeTests.saeDirectory()
        var rng = Xoshiro256(seed: 3)
        var sae = try SAE(config: SAEConfig(architecture: .topk, dIn: 256, dSAE: 1024, k: 16), rng: &rng)
        sae.params[sae.layout.W_dec.lowerBound + 77] = .nan
        try sae.saveSAELens(to: dir, metadata: SAELensMetadata(hookName: Self.hook, contextSize: 256))
        let model = shellQuote(SAERuntimeTests.d4.appendingPathComponent("base_checkpoints/d4").path)
        let r = try runShell("exec \(D4Fixture.exe("sae-run")) features --model \(model) --sae \(shellQuote(dir)) --prompt hi --json")
        #expect(r.status == 2 && r.stderr.contains("tensor W_dec, element 77: expected a finite number"), "\(r.status): \(r.stderr)")
        #expect(r.stdout.isEmpty)
    }

    /// A NaN in the model's weights: exit 2 naming the tensor, before anything runs.
    @Test func nanModelWeightsExitTwoNamingTheTensor() throws {
        let source = SAERuntimeTests.d4.appendingPathComponent("base_checkpoints/d4")
        let dir = try TestPaths.temporaryDirectory("nan-model")
        for name in try FileManager.default.contentsOfDirectory(atPath: source.path) {
            try FileManager.default.copyItem(at: source.appendingPathComponent(name), to: dir.appendingPathComponent(name))
        }
        let pt = try #require(try FileManager.default.contentsOfDirectory(atPath: dir.path).first { $0.hasSuffix(".pt") })
        let path = dir.appendingPathComponent(pt).path
        // The zip entries are stored: overwrite 4 bytes of lm_head's data with a NaN.
        let state = try loadTorchStateDict(path: path)
        let target = "lm_head.weight"
        let offset = try Self.dataOffset(of: target, in: path, expected: try #require(state[target]))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seek(toOffset: UInt64(offset + 4 * 10))
        handle.write(Data(withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { Array($0) }))
        try handle.close()
        let r = try runShell("exec \(D4Fixture.exe("sae-run")) generate --model \(shellQuote(dir.path)) --tokenizer \(shellQuote(SAERuntimeTests.d4.appendingPathComponent("tokenizer/tokenizer.pkl").path)) --prompt hi --max-tokens 2")
        #expect(r.status == 2 && r.stderr.contains("lm_head.weight holds NaN or inf (element 10)"), "\(r.status): \(r.stderr)")
    }

    /// Where tensor `name`'s float32 data starts in the checkpoint file: the stored entry whose bytes
    /// equal the tensor's (nanochat saves each storage as its own zip entry).
    static func dataOffset(of name: String, in path: String, expected: Tensor) throws -> Int {
        let zip = try ZipArchive(path: path)
        let want = expected.storage.prefix(64).flatMap { f in withUnsafeBytes(of: f.bitPattern.littleEndian) { Array($0) } }
        for e in zip.entries where e.method == 0 && e.uncompressedSize >= want.count {
            let head = try zip.withEntryBytes(e.name) { Array($0.prefix(want.count)) }
            if head == want { return e.dataRange.lowerBound }
        }
        throw RuntimeError.badInput("no stored entry holds \(name)")
    }
}
