import Foundation
import TestSupport
import Testing

/// sae-eval on a TopK SAE trained (briefly) on the d4 fixture, through the programs as a user runs them.
@Suite(.serialized) struct EvaluationTests {
    static let d4 = D4Fixture.path
    static func exe(_ name: String) -> String { D4Fixture.exe(name) }
    /// A small TopK SAE (k 16, 1024 latents, 24 steps), trained once for all suites.
    static var sae: String { D4Fixture.topKSAE }

    func evaluate(_ args: String, ranks: Int = 1) throws -> [String: Double] {
        let env = shellQuote(TestPaths.repoRoot.appendingPathComponent("launch/mpi-env.sh").path)
        let launcher = ranks > 1 ? ". \(env) && exec mpirun -np \(ranks)" : "exec"
        let r = try runShell("\(launcher) \(Self.exe("sae-eval")) --sae \(shellQuote(Self.sae)) --model \(shellQuote(Self.d4 + "/base_checkpoints/d4")) \(args) --json")
        #expect(r.status == 0, "\(r.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
        return object.compactMapValues { ($0 as? NSNumber)?.doubleValue }
    }

    @Test func metricsAreConsistentAndCleanLossIsNanochats() throws {
        let m = try evaluate("--token-file \(shellQuote(D4Fixture.reference + "/forward.safetensors"))")
        let fvu = try #require(m["fvu"])
        #expect(fvu > 0 && fvu < 1 && abs(m["explained_variance"]! - (1 - fvu)) < 1e-12)
        #expect(m["l0"] == 16 && m["tokens"] == 510)          // 2 rows of 256, BOS left out
        // ce_clean is nanochat's own per-token loss of these rows (reference `loss`, mean 3.991342).
        #expect(abs(m["ce_clean"]! - 3.991342) < 1e-4, "ce_clean \(m["ce_clean"]!)")
        #expect(m["ce_clean"]! < m["ce_sae"]! && m["ce_sae"]! < m["ce_zero"]!, "\(m)")
        let recovered = m["ce_loss_recovered"]!
        #expect(recovered > 0 && recovered <= 1)
        #expect(abs(recovered - (m["ce_zero"]! - m["ce_sae"]!) / (m["ce_zero"]! - m["ce_clean"]!)) < 1e-12)
        #expect(m["kl"]! > 0 && m["dead_fraction"]! >= 0 && m["dense_fraction"]! >= 0)
    }

    @Test func oneAndFourRanksGiveTheSameMetrics() throws {
        let args = "--data \(shellQuote(D4Fixture.data)) --tokens 2048 --context 128"
        let one = try evaluate(args), four = try evaluate(args, ranks: 4)
        #expect(one["tokens"] == four["tokens"] && one["tokens"]! > 2000)
        for (key, value) in one {
            let other = try #require(four[key])
            #expect(abs(value - other) <= 1e-5 * max(1, abs(value)), "\(key): np 1 \(value), np 4 \(other)")
        }
    }

    @Test func badInputExitsTwo() throws {
        let r = try runShell("exec \(Self.exe("sae-eval")) --sae /nonexistent --model \(shellQuote(Self.d4 + "/base_checkpoints/d4")) --token-file x.json")
        #expect(r.status == 2 && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        let both = try runShell("exec \(Self.exe("sae-eval")) --sae x --model y --data d --token-file t")
        #expect(both.status == 2 && both.stderr.contains("exactly one"), "\(both.stderr)")
    }

    /// A damaged validation shard is an error naming it, not a silent switch to training data.
    @Test func aDamagedValidationShardIsAnErrorNotTrainingData() throws {
        let copy = try TestPaths.temporaryDirectory("eval-data").path
        let shards = D4Fixture.data
        let names = try FileManager.default.contentsOfDirectory(atPath: shards).sorted()
        for name in names { try FileManager.default.copyItem(atPath: shards + "/" + name, toPath: copy + "/" + name) }
        let last = copy + "/" + names.last!
        let bytes = try Data(contentsOf: URL(fileURLWithPath: last))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: last))
        let r = try runShell("exec \(Self.exe("sae-eval")) --sae \(shellQuote(Self.sae)) --model \(shellQuote(Self.d4 + "/base_checkpoints/d4")) --data \(shellQuote(copy)) --tokens 512 --context 128 --json")
        #expect(r.status == 2 && r.stdout.isEmpty, "exit \(r.status): \(r.stdout)")
        #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(last), "\(r.stderr)")
    }

    /// --tokens and --context take effect with --data and are refused where they cannot.
    @Test func rowFlagsTakeEffectOrAreRefused() throws {
        let model = "--sae \(shellQuote(Self.sae)) --model \(shellQuote(Self.d4 + "/base_checkpoints/d4"))"
        let tokenFile = "--token-file \(shellQuote(D4Fixture.reference + "/forward.safetensors"))"
        let data = "--data \(shellQuote(D4Fixture.data))"
        let cases: [(String, String)] = [
            ("\(tokenFile) --context 64", "--context: applies to --data only"),
            ("\(tokenFile) --tokens 100", "--tokens: applies to --data only"),
            ("\(data) --context 100000", "--context 100000: exceeds the model's sequence_len (256)"),
            ("\(data) --context 0", "--context: expected a positive count"),
        ]
        for (args, words) in cases {
            let r = try runShell("exec \(Self.exe("sae-eval")) \(model) \(args)")
            #expect(r.status == 2 && r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(words), "\(args): \(r.stderr)")
        }
        // With --data, --context changes the rows: shorter rows see less context, a higher loss.
        let short = try evaluate("\(data) --tokens 512 --context 16"), long = try evaluate("\(data) --tokens 512 --context 128")
        #expect(short["ce_clean"]! > long["ce_clean"]!, "context 16: \(short), context 128: \(long)")
    }
}
