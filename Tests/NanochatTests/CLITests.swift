import Foundation
import Formats
import Nanochat
import Testing

/// The sae-run executable (built beside the test bundle): DESIGN 4's command lines and exit codes.
@Suite struct CLITests {
    static let executable: String? = {
        var dirs = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
        dirs.append(Bundle.main.bundleURL)
        dirs.append(Bundle.main.bundleURL.deletingLastPathComponent())
        for d in dirs {
            for candidate in [d, d.deletingLastPathComponent()] {
                let p = candidate.appendingPathComponent("sae-run").path
                if FileManager.default.isExecutableFile(atPath: p) { return p }
            }
        }
        return nil
    }()

    struct Result { let status: Int32; let stdout: String; let stderr: String }

    func run(_ args: [String], stdin: String = "") throws -> Result {
        let exe = try #require(Self.executable, "sae-run not found beside the test bundle")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let inPipe = Pipe(), outPipe = Pipe(), errPipe = Pipe()
        p.standardInput = inPipe; p.standardOutput = outPipe; p.standardError = errPipe
        try p.run()
        inPipe.fileHandleForWriting.write(Data(stdin.utf8))
        try inPipe.fileHandleForWriting.close()
        let out = outPipe.fileHandleForReading.readDataToEndOfFile()
        let err = errPipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
                      stderr: String(decoding: err, as: UTF8.self))
    }

    /// Exit 2 with exactly one line on stderr that contains `mention`.
    func expectBadInput(_ r: Result, mentioning mention: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 2, "status \(r.status), stderr \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.split(separator: "\n").count == 1, "stderr: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.contains(mention), "stderr: \(r.stderr)", sourceLocation: sourceLocation)
    }

    @Test func forwardWritesLogitsAndHooks() throws {
        let out = Fixtures.temporaryPath(".safetensors")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let tokens = Fixtures.temporaryPath(".json")
        defer { try? FileManager.default.removeItem(atPath: tokens) }
        try "[[4087, 464, 532, 1450], [4087, 72, 4022, 1853]]".write(toFile: tokens, atomically: true, encoding: .utf8)
        let r = try run(["forward", "--model", Fixtures.v0Model, "--tokenizer", Fixtures.tokenizerPath, "--tokens", tokens,
                         "--hooks", "blocks.0.hook_resid_post,blocks.1.hook_attn_out", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        let f = try SafetensorsFile(path: out)
        #expect(f.names == ["blocks.0.hook_resid_post", "blocks.1.hook_attn_out", "logits"])
        #expect(try f.shape("logits") == [2, 4, 4096])
        #expect(try f.shape("blocks.1.hook_attn_out") == [2, 4, 128])
        let direct = try Loaded.v0.forward(tokens: [[4087, 464, 532, 1450], [4087, 72, 4022, 1853]])
        // Not bitwise: OpenBLAS may split the sgemms differently in another process.
        #expect(try f.tensor("logits").maxAbsDifference(direct.logits!) < 1e-5)
    }

    @Test func tokenizeReadsJSONLines() throws {
        let r = try run(["tokenize", "--tokenizer", Fixtures.tokenizerPath], stdin: "\"Hello world! This is a test.\"\n\"\"\n")
        #expect(r.status == 0)
        #expect(r.stdout == "[72,4022,1853,33,591,307,260,968,46]\n[]\n")
        expectBadInput(try run(["tokenize", "--tokenizer", Fixtures.tokenizerPath], stdin: "not json\n"), mentioning: "stdin line 1")
        // nanochat's tokenizer folder, as every tool takes it (DESIGN 5).
        let folder = URL(fileURLWithPath: Fixtures.tokenizerPath).deletingLastPathComponent().path
        let f = try run(["tokenize", "--tokenizer", folder], stdin: "\"Hello world! This is a test.\"\n")
        #expect(f.status == 0 && f.stdout == "[72,4022,1853,33,591,307,260,968,46]\n", "\(f.status): \(f.stderr)")
    }

    @Test func generateGreedyJSON() throws {
        let r = try run(["generate", "--model", Fixtures.d4Dir, "--prompt", "The Python interpreter", "--max-tokens", "48",
                         "--temperature", "0", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        struct Out: Decodable { let tokens: [Int]; let text: String }
        let o = try JSONDecoder().decode(Out.self, from: Data(r.stdout.utf8))
        let ref = try GenerateReference(dir: Fixtures.models[0].reference)
        #expect(o.tokens == ref.greedy_tokens)
        #expect(o.text == ref.greedy_text)
    }

    @Test func badInputExitsTwoWithOneLine() throws {
        let tokens = Fixtures.d4Reference + "/forward.safetensors", out = Fixtures.temporaryPath(".safetensors")
        defer { try? FileManager.default.removeItem(atPath: out) }
        expectBadInput(try run(["forward", "--model", Fixtures.d4Dir, "--tokens", tokens, "--hooks", "blocks.0.hook_nope", "--out", out]),
                       mentioning: "blocks.0.hook_nope")
        expectBadInput(try run(["forward", "--model", Fixtures.d4Dir, "--tokens", tokens, "--hooks", "blocks.4.hook_mlp_out", "--out", out]),
                       mentioning: "n_layer")
        // v0's tokens [2,128] fed with the d4 tokenizer is fine; a 4097-token vocabulary is not.
        let meta = Fixtures.temporaryPath("")
        try FileManager.default.createDirectory(atPath: meta, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: meta) }
        try #"{"step": 0}"#.write(toFile: meta + "/meta_000000.json", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: meta + "/model_000000.pt", withDestinationPath: Fixtures.v0Model)
        expectBadInput(try run(["generate", "--model", meta, "--tokenizer", Fixtures.tokenizerPath, "--prompt", "x", "--max-tokens", "1"]),
                       mentioning: "meta_000000.json")
        try #"{"model_config": {"sequence_len": 128, "vocab_size": 4000, "n_layer": 2, "n_head": 4, "n_kv_head": 2, "n_embd": 128}}"#
            .write(toFile: meta + "/meta_000000.json", atomically: true, encoding: .utf8)
        // vocab 4000: the 4096-token tokenizer is refused first (before any weight is read); without
        // a tokenizer, the 4096-row weights do not fit and the profile check names the keys.
        expectBadInput(try run(["generate", "--model", meta, "--tokenizer", Fixtures.tokenizerPath, "--prompt", "x", "--max-tokens", "1"]),
                       mentioning: "vocab_size is 4000")
        expectBadInput(try run(["forward", "--model", meta, "--tokens", tokens, "--out", out]), mentioning: "lm_head.weight")
        // A tokenizer whose vocabulary is not the model's.
        let tiny = Fixtures.temporaryPath(".pkl")
        defer { try? FileManager.default.removeItem(atPath: tiny) }
        FileManager.default.createFile(atPath: tiny, contents: Data(tinyTokenizerPickle(specials: [("<|bos|>", 256)])))
        let mismatch = try run(["generate", "--model", Fixtures.d4Dir, "--tokenizer", tiny, "--prompt", "x", "--max-tokens", "1"])
        expectBadInput(mismatch, mentioning: tiny)
        #expect(mismatch.stderr.contains("257") && mismatch.stderr.contains("4096"))
        // Checked before the weights: with the weights file cut short too, the tokenizer is what is
        // reported; the meta json before both.
        let cut = Fixtures.temporaryPath("")
        try FileManager.default.createDirectory(atPath: cut, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: cut) }
        let pt = try #require(try FileManager.default.contentsOfDirectory(atPath: Fixtures.d4Dir).first { $0.hasSuffix(".pt") })
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Fixtures.d4Dir + "/" + pt))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: cut + "/" + pt))
        let metaName = pt.replacingOccurrences(of: "model_", with: "meta_").replacingOccurrences(of: ".pt", with: ".json")
        try FileManager.default.copyItem(atPath: Fixtures.d4Dir + "/" + metaName, toPath: cut + "/" + metaName)
        expectBadInput(try run(["generate", "--model", cut, "--tokenizer", tiny, "--prompt", "x", "--max-tokens", "1"]), mentioning: "vocab_size")
        expectBadInput(try run(["generate", "--model", cut, "--tokenizer", Fixtures.tokenizerPath, "--prompt", "x", "--max-tokens", "1"]),
                       mentioning: pt)
        try #"{"model_config": {}}"#.write(toFile: cut + "/" + metaName, atomically: true, encoding: .utf8)
        expectBadInput(try run(["generate", "--model", cut, "--tokenizer", tiny, "--prompt", "x", "--max-tokens", "1"]), mentioning: metaName)
        // nanochat's tokenizer folder is accepted as well as the file.
        let folder = URL(fileURLWithPath: Fixtures.tokenizerPath).deletingLastPathComponent().path
        let viaFolder = try run(["generate", "--model", Fixtures.d4Dir, "--tokenizer", folder, "--prompt", "x", "--max-tokens", "2"])
        #expect(viaFolder.status == 0, "\(viaFolder.stderr)")
        expectBadInput(try run(["generate", "--model", Fixtures.d4Dir, "--prompt", "x", "--max-tokens", "nine"]), mentioning: "--max-tokens")
        expectBadInput(try run(["forward", "--model", "/nonexistent", "--tokens", tokens, "--out", out]), mentioning: "/nonexistent")
        expectBadInput(try run(["generate", "--model", Fixtures.v0Model, "--prompt", "x", "--max-tokens", "1"]), mentioning: "--tokenizer")
        #expect(try run(["--help"]).status == 0)
    }
}
