import Distributed
import Foundation
import Formats
import SAE
import TestSupport
import Testing
import Tensors
import Training

/// The trainer end to end on the d4 fixture model, small enough for a debug build: in-process on
/// one rank, and through the `sae-train` executable for exit codes, crashes and resume.
@Suite(.serialized) struct TrainerTests {
    static let d4 = URL(fileURLWithPath: TestPaths.d4BaseDir)
    static let hook = "blocks.1.hook_resid_post"

    /// A run of 12 steps of 512 tokens, checkpoints every 4 steps.
    static func smallConfig(out: String) -> TrainConfig {
        var c = TrainConfig()
        c.model = d4.appendingPathComponent("base_checkpoints/d4").path
        c.data = TestPaths.textShards
        c.hooks = [hook]
        c.context = 128
        c.expansion = 2
        c.k = 16
        c.batchTokens = 512
        c.bufferTokens = 2048
        c.totalTokens = 6144
        c.checkpointEvery = 2048
        c.logEvery = 1
        c.out = out
        return c
    }

    static func flags(_ c: TrainConfig) -> String {
        ["--model", c.model, "--data", c.data, "--hook", c.hooks[0], "--context", "\(c.context)",
         "--expansion", "\(c.expansion)", "--k", "\(c.k)", "--batch-tokens", "\(c.batchTokens)",
         "--buffer-tokens", "\(c.bufferTokens)", "--total-tokens", "\(c.totalTokens)",
         "--checkpoint-every", "\(c.checkpointEvery)", "--out", c.out].map(shellQuote).joined(separator: " ")
    }

    static var saeTrain: String { shellQuote(TestPaths.products.appendingPathComponent("sae-train").path) }

    func weights(_ out: String) throws -> [String: [Float]] {
        let f = try SafetensorsFile(path: "\(out)/\(Self.hook)/sae_weights.safetensors")
        return try Dictionary(uniqueKeysWithValues: f.names.map { ($0, try f.tensor($0).storage) })
    }

    @Test func trainsOneRankInProcessAndWritesALoadableSAE() throws {
        let out = try TestPaths.temporaryDirectory("train").path
        let trainer = try Trainer(config: Self.smallConfig(out: out), comm: SingleProcessCommunicator())
        try trainer.start()
        try trainer.run()
        #expect(trainer.step == 12 && trainer.tokens == 6144)
        let sae = try SAE.loadSAELens(from: "\(out)/\(Self.hook)")
        #expect(sae.config.dIn == 256 && sae.config.dSAE == 512 && sae.config.k == 16)
        let lines = try String(contentsOfFile: "\(out)/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 12)
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        let last = try JSONSerialization.jsonObject(with: Data(lines[11].utf8)) as! [String: Any]
        for key in ["step", "tokens", "loss", "fvu", "l0", "dead_fraction", "lr", "tokens_per_s"] {
            #expect(last[key] != nil, "metrics line lacks \(key)")
        }
        #expect((last["fvu"] as! Double) < (first["fvu"] as! Double), "FVU did not fall: \(first["fvu"]!) → \(last["fvu"]!)")
        #expect(last["l0"] as! Double == 16)
        let run = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(out)/run.json"))) as! [String: Any]
        #expect(run["world_size"] as? Int == 1 && (run["config"] as? [String: Any])?["batch_tokens"] as? Int == 512)
        // Checkpoints at steps 4, 8 and 12; the default keeps the last 3.
        #expect(CheckpointStore(out: out, keep: 3).steps() == [4, 8, 12])
    }

    @Test func severalHooksTrainSeveralSAEsFromOneForwardPass() throws {
        var c = Self.smallConfig(out: try TestPaths.temporaryDirectory("hooks").path)
        c.hooks = ["blocks.0.hook_mlp_out", Self.hook]
        c.totalTokens = 2048
        c.checkpointEvery = 0
        let trainer = try Trainer(config: c, comm: SingleProcessCommunicator())
        try trainer.start()
        try trainer.run()
        for hook in c.hooks {
            let sae = try SAE.loadSAELens(from: "\(c.out)/\(hook)")
            #expect(sae.config.dSAE == 512)
            let cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(c.out)/\(hook)/cfg.json"))) as! [String: Any]
            #expect((cfg["metadata"] as? [String: Any])?["hook_name"] as? String == hook)
        }
        let lines = try String(contentsOfFile: "\(c.out)/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 8, "one line per step and hook")
        // Different hooks, different activations: the two SAEs differ.
        let a = try SafetensorsFile(path: "\(c.out)/\(c.hooks[0])/sae_weights.safetensors").tensor("b_dec")
        let b = try SafetensorsFile(path: "\(c.out)/\(c.hooks[1])/sae_weights.safetensors").tensor("b_dec")
        #expect(a != b)
    }

    /// FVU of the SAE in `dir` on the fixture's reference activations (nanochat's own forward of two
    /// validation rows), BOS positions left out as in training.
    func heldOutFVU(_ dir: String) throws -> Double {
        let ref = try SafetensorsFile(path: TestPaths.d4Reference + "/forward.safetensors")
        let acts = try ref.tensor(Self.hook), tokens = try ref.int64s("tokens")
        let d = acts.columns
        let keep = (0..<tokens.count).filter { tokens[$0] != 4087 }
        let x = Tensor(shape: [keep.count, d], storage: keep.flatMap { acts.storage[$0 * d ..< ($0 + 1) * d] })
        let sae = try SAE.loadSAELens(from: dir)
        let xhat = try sae.decode(try sae.encode(x))
        var mean = [Double](repeating: 0, count: d)
        for r in 0..<x.rows { for i in 0..<d { mean[i] += Double(x[r, i]) / Double(x.rows) } }
        var sse = 0.0, total = 0.0
        for r in 0..<x.rows {
            for i in 0..<d {
                sse += pow(Double(x[r, i] - xhat[r, i]), 2)
                total += pow(Double(x[r, i]) - mean[i], 2)
            }
        }
        return sse / total
    }

    @Test func trainingFromACacheOfTheSameTokensMatchesTrainingFromTheModel() throws {
        var direct = Self.smallConfig(out: try TestPaths.temporaryDirectory("direct").path)
        direct.totalTokens = 12288
        direct.bufferTokens = 12288      // one block: the direct run sees exactly the cached tokens
        direct.checkpointEvery = 0
        let trainer = try Trainer(config: direct, comm: SingleProcessCommunicator())
        try trainer.start()
        try trainer.run()

        var cacheConfig = direct
        cacheConfig.out = try TestPaths.temporaryDirectory("cache").path + "/cache"
        cacheConfig.cacheDtype = "bfloat16"
        try writeActivationCache(config: cacheConfig, comm: SingleProcessCommunicator())
        #expect(throws: ConfigError.self) { try writeActivationCache(config: cacheConfig, comm: SingleProcessCommunicator()) }

        var fromCache = direct
        fromCache.activations = cacheConfig.out
        fromCache.hooks = []
        fromCache.data = ""
        fromCache.out = try TestPaths.temporaryDirectory("fromcache").path
        let t2 = try Trainer(config: fromCache, comm: SingleProcessCommunicator())
        try t2.start()
        try t2.run()
        let a = try heldOutFVU("\(direct.out)/\(Self.hook)"), b = try heldOutFVU("\(fromCache.out)/\(Self.hook)")
        #expect(a < 0.9 && abs(a - b) < 0.01, "held-out FVU from the model \(a), from the cache \(b)")
    }

    @Test func killDuringTrainingAndDuringACheckpointWriteThenResumeIsBitwiseExact() throws {
        let unbroken = try TestPaths.temporaryDirectory("unbroken").path
        let r0 = try runShell("exec \(Self.saeTrain) \(Self.flags(Self.smallConfig(out: unbroken)))")
        #expect(r0.status == 0, "\(r0.stderr)")
        let reference = try weights(unbroken)

        // kill -9 in the middle of training (after the first checkpoint), then --resume.
        let killed = try TestPaths.temporaryDirectory("killed").path
        let store = CheckpointStore(out: killed, keep: 3)
        let r1 = try runShell("exec \(Self.saeTrain) \(Self.flags(Self.smallConfig(out: killed)))",
                              killWhen: { store.latest() != nil })
        #expect(r1.status != 0, "the run was meant to be killed")
        #expect(store.latest()?.step == 4)
        let r2 = try runShell("exec \(Self.saeTrain) \(Self.flags(Self.smallConfig(out: killed))) --resume")
        #expect(r2.status == 0, "\(r2.stderr)")
        #expect(try weights(killed) == reference, "resumed weights differ from the unbroken run's")

        // kill -9 while the step-8 checkpoint is being written: step 4 must survive and resume.
        let torn = try TestPaths.temporaryDirectory("torn").path
        let r3 = try runShell("exec \(Self.saeTrain) \(Self.flags(Self.smallConfig(out: torn)))",
                              environment: ["NANOSAE_TEST_CRASH_IN_CHECKPOINT": "8"])
        #expect(r3.status != 0)
        #expect(CheckpointStore(out: torn, keep: 3).latest()?.step == 4)
        _ = try SAE.loadSAELens(from: "\(torn)/\(Self.hook)")   // the surviving checkpoint loads
        let r4 = try runShell("exec \(Self.saeTrain) \(Self.flags(Self.smallConfig(out: torn))) --resume")
        #expect(r4.status == 0, "\(r4.stderr)")
        #expect(try weights(torn) == reference, "resumed weights differ from the unbroken run's")
    }

    @Test func aNonFiniteLossStopsWithExitOneAndKeepsTheLastGoodCheckpoint() throws {
        // A finite cache to train 4 steps with a checkpoint, then a copy whose rows are all NaN.
        var c = Self.smallConfig(out: try TestPaths.temporaryDirectory("nan").path + "/good")
        c.totalTokens = 2048
        c.bufferTokens = 2048
        try writeActivationCache(config: c, comm: SingleProcessCommunicator())
        let bad = c.out.replacingOccurrences(of: "/good", with: "/bad")
        try FileManager.default.copyItem(atPath: c.out, toPath: bad)
        let bin = "\(bad)/\(Self.hook)/rank_00000.bin"
        let size = try FileManager.default.attributesOfItem(atPath: bin)[.size] as! Int
        let nans = [Float](repeating: .nan, count: size / 4)
        try nans.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: bin)) }

        let out = try TestPaths.temporaryDirectory("nan-run").path
        let common = "--expansion 2 --k 16 --batch-tokens 512 --checkpoint-every 2048 --out \(shellQuote(out))"
        let r1 = try runShell("exec \(Self.saeTrain) --activations \(shellQuote(c.out)) --total-tokens 2048 \(common)")
        #expect(r1.status == 0, "\(r1.stderr)")
        let r2 = try runShell("exec \(Self.saeTrain) --activations \(shellQuote(bad)) --total-tokens 4096 --resume \(common)")
        #expect(r2.status == 1, "exit \(r2.status): \(r2.stderr)")
        #expect(r2.stderr.contains("step 5") && r2.stderr.contains("not finite") && r2.stderr.contains("last good checkpoint"),
                "\(r2.stderr)")
        #expect(CheckpointStore(out: out, keep: 3).latest()?.step == 4)
        _ = try SAE.loadSAELens(from: "\(out)/\(Self.hook)")
    }

    @Test func badInputExitsTwoWithOneLineAndOverwritesNothing() throws {
        let dir = try TestPaths.temporaryDirectory("bad")
        let base = Self.smallConfig(out: dir.appendingPathComponent("out").path)
        let emptyData = dir.appendingPathComponent("empty").path
        try FileManager.default.createDirectory(atPath: emptyData, withIntermediateDirectories: true)
        let config = dir.appendingPathComponent("c.json").path
        try #"{"batch_tokens": 512, "learning_rate": 1}"#.write(toFile: config, atomically: true, encoding: .utf8)
        let cases: [(String, String)] = [
            ("--config \(shellQuote(config))", "unknown key 'learning_rate'"),
            ("--total-tokens -5", "total_tokens"),
            ("--micro-batches 12", "micro_batches must be a power of two"),
            ("--hook blocks.9.hook_resid_post", "blocks.9"),
            ("--hook blocks.1.hook_nothing", "hook_nothing"),
            ("--data \(shellQuote(emptyData))", "no documents"),
            ("--model /nonexistent/model_000001.pt", "/nonexistent"),
            ("--batch-tokens 500 --total-tokens 6000", ""),     // valid: makes OUT hold a run
        ]
        for (extra, word) in cases {
            let r = try runShell("exec \(Self.saeTrain) \(Self.flags(base)) \(extra)")
            if word.isEmpty { #expect(r.status == 0, "\(r.stderr)"); continue }
            #expect(r.status == 2, "\(extra): exit \(r.status)\n\(r.stderr)")
            let lines = r.stderr.split(separator: "\n")
            #expect(lines.count == 1 && r.stderr.contains(word), "\(extra): \(r.stderr)")
        }
        // OUT now holds a finished run: without --resume it is refused and left untouched.
        let runJSON = try Data(contentsOf: URL(fileURLWithPath: base.out + "/run.json"))
        let r = try runShell("exec \(Self.saeTrain) \(Self.flags(base))")
        #expect(r.status == 2 && r.stderr.contains("--resume"), "\(r.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: base.out + "/run.json")) == runJSON)
    }
}
