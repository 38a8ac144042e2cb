import Foundation
import Testing
import Training

@Suite struct TrainConfigTests {
    func tempFile(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("nanosae-config-\(UUID().uuidString).json").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func fileThenFlagsWithFlagsWinning() throws {
        var c = TrainConfig()
        try c.apply(configFile: try tempFile("""
            {"model": "m.pt", "data": "d", "hook": ["blocks.1.hook_resid_post", "blocks.2.hook_mlp_out"],
             "batch_tokens": 8192, "total_tokens": "1.5M", "lr": 0.001, "resume": false, "arch": "relu"}
            """))
        #expect(c.hooks == ["blocks.1.hook_resid_post", "blocks.2.hook_mlp_out"])
        #expect(c.batchTokens == 8192 && c.totalTokens == 1_500_000 && c.lr == 0.001 && c.arch == "relu")
        try c.apply(flags: ["--batch-tokens", "16k", "--resume", "--hook", "blocks.0.hook_resid_pre",
                            "--lr=2e-4", "--exclude-bos=false"])
        #expect(c.batchTokens == 16000 && c.resume && c.lr == 2e-4 && !c.excludeBOS)
        #expect(c.hooks == ["blocks.0.hook_resid_pre"], "a flag list replaces the file's list")
        try c.validate()
        #expect(c.jsonObject["batch_tokens"] as? Int == 16000)
    }

    @Test func unknownKeysAndFlagsAreErrorsNamingThem() throws {
        var c = TrainConfig()
        let path = try tempFile(#"{"batch_tokens": 4096, "learning_rate": 0.1}"#)
        #expect(throws: ConfigError.self) { try c.apply(configFile: path) }
        do { try c.apply(configFile: path) } catch let e as ConfigError {
            #expect(e.description.contains("unknown key 'learning_rate'") && e.description.contains(".json"))
        }
        do { try c.apply(flags: ["--batch_tokens", "3"]); Issue.record("underscore flag accepted") }
        catch let e as ConfigError { #expect(e.description.contains("--batch_tokens")) }
        do { try c.apply(flags: ["--nope", "3"]); Issue.record("unknown flag accepted") }
        catch let e as ConfigError { #expect(e.description.contains("unknown flag '--nope'")) }
    }

    @Test func wrongTypesAreErrorsNamingTheKey() throws {
        for (text, key) in [(#"{"k": "many"}"#, "'k'"), (#"{"resume": 1}"#, "'resume'"), (#"{"k": true}"#, "'k'"),
                            (#"{"lr": "fast"}"#, "'lr'"), (#"{"k": 1.5}"#, "'k'"), (#"[1]"#, "object")] {
            var c = TrainConfig()
            do { try c.apply(configFile: try tempFile(text)); Issue.record("accepted \(text)") }
            catch let e as ConfigError { #expect(e.description.contains(key), "\(e)") }
        }
        var c = TrainConfig()
        do { try c.apply(flags: ["--total-tokens", "lots"]); Issue.record("accepted") }
        catch let e as ConfigError { #expect(e.description.contains("--total-tokens")) }
    }

    @Test func validationRefusesImpossibleValues() throws {
        var base = TrainConfig()
        base.model = "m.pt"; base.data = "d"; base.hooks = ["blocks.0.hook_resid_post"]
        try base.validate()
        for (flags, word) in [(["--total-tokens", "-5"], "total_tokens"), (["--arch", "dense"], "arch"),
                              (["--k", "64", "--d-sae", "32"], "k (64)"), (["--l1", "-1"], "l1")] {
            var c = base
            try c.apply(flags: flags)
            do { try c.validate(); Issue.record("accepted \(flags)") }
            catch let e as ConfigError { #expect(e.description.contains(word), "\(e)") }
        }
    }

    @Test func countsParse() {
        #expect(parseCount("4096") == 4096 && parseCount("1_000") == 1000 && parseCount("1.5M") == 1_500_000)
        #expect(parseCount("2B") == 2_000_000_000 && parseCount("16k") == 16000 && parseCount("-3") == -3)
        #expect(parseCount("1.5") == nil && parseCount("x") == nil && parseCount("") == nil)
    }
}
