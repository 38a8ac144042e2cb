import Foundation
import Nanochat
import Tensors
import Testing

/// Config, profiles, hook names and model location: the refusals and what they name.
@Suite struct ConfigTests {
    func write(_ text: String) throws -> String {
        let p = Fixtures.temporaryPath(".json")
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }

    @Test func readsModelConfig() throws {
        let c = try ModelConfig(metaPath: Fixtures.d4Dir + "/meta_000600.json")
        #expect(c == ModelConfig(sequenceLen: 256, vocabSize: 4096, nLayer: 4, nHead: 4, nKVHead: 4, nEmbd: 256,
                                 windowPattern: "SSSL"))
        // window_pattern absent means "L".
        #expect(try ModelConfig(metaPath: Fixtures.v0Dir + "/meta_000000.json").windowPattern == "L")
    }

    @Test func metaWithoutModelConfigIsRefusedNamingTheFile() throws {
        let p = try write(#"{"step": 3}"#)
        defer { try? FileManager.default.removeItem(atPath: p) }
        #expect(throws: NanochatError.missingConfigField(file: p, field: "model_config")) { try ModelConfig(metaPath: p) }
        let e = NanochatError.missingConfigField(file: p, field: "model_config")
        #expect(e.description.hasPrefix(p) && e.description.contains("model_config") && !e.description.contains("\n"))
        let q = try write(#"{"model_config": {"sequence_len": 8, "vocab_size": 10, "n_layer": 1, "n_head": 1, "n_embd": 32}}"#)
        defer { try? FileManager.default.removeItem(atPath: q) }
        #expect(throws: NanochatError.missingConfigField(file: q, field: "n_kv_head")) { try ModelConfig(metaPath: q) }
    }

    @Test func hookNamesAndLayers() throws {
        #expect(try HookPoint(name: "blocks.3.hook_resid_post", nLayer: 4) == HookPoint(layer: 3, kind: .residPost))
        #expect(throws: NanochatError.unknownHook("blocks.1.hook_resid")) { try HookPoint(name: "blocks.1.hook_resid", nLayer: 4) }
        #expect(throws: NanochatError.unknownHook("blocks.x.hook_mlp_out")) { try HookPoint(name: "blocks.x.hook_mlp_out") }
        #expect(throws: NanochatError.hookLayerOutOfRange(hook: "blocks.4.hook_mlp_out", layers: 4)) {
            try HookPoint(name: "blocks.4.hook_mlp_out", nLayer: 4)
        }
        #expect(try HookPoint.parseList("all", nLayer: 2).count == 10)
        #expect(try HookPoint.parseList("blocks.0.hook_attn_out,blocks.1.hook_resid_pre", nLayer: 2).map(\.name)
                == ["blocks.0.hook_attn_out", "blocks.1.hook_resid_pre"])
        #expect(throws: NanochatError.hookLayerOutOfRange(hook: "blocks.2.hook_resid_pre", layers: 2)) {
            try Loaded.v0.forward(tokens: [[1]], hooks: [HookPoint(layer: 2, kind: .residPre)])
        }
    }

    @Test func profilesAreDetectedAndMismatchesListTheKeys() throws {
        #expect(Loaded.d4.profile == .current)
        #expect(Loaded.v0.profile == .v0)
        let c = Loaded.v0.config
        var sd: [String: Tensor] = [:]
        for (k, s) in ArchitectureProfile.v0.expectedShapes(c) { sd[k] = Tensor(shape: s) }
        #expect(try NanochatModel(config: c, stateDict: sd).profile == .v0)
        // Forcing the other profile, or a wrong shape, is refused with the keys that do not fit.
        #expect(throws: NanochatError.self) { try NanochatModel(config: c, stateDict: sd, profile: .current) }
        sd["lm_head.weight"] = Tensor(shape: [10, 128])
        sd["extra.weight"] = Tensor(shape: [1])
        do {
            _ = try NanochatModel(config: c, stateDict: sd, file: "m.pt")
            Issue.record("a state dict with a wrong shape was accepted")
        } catch let e as NanochatError {
            #expect(e.description.hasPrefix("m.pt:"))
            #expect(e.description.contains("lm_head.weight is [10, 128], expected [4096, 128]"))
            #expect(e.description.contains("unexpected extra.weight"))
        }
        #expect(throws: NanochatError.unknownProfile("v9")) { try ArchitectureProfile.named("v9") }
    }

    @Test func locatesCheckpointsLikeNanochat() throws {
        let byDir = try ModelLocation.resolve(model: Fixtures.d4Dir)
        #expect(byDir.step == 600 && byDir.modelPath.hasSuffix("d4/model_000600.pt"))
        #expect(byDir.defaultTokenizerPath.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
                == URL(fileURLWithPath: Fixtures.tokenizerPath).standardizedFileURL.path)
        let byBase = try ModelLocation.resolve(model: nil, baseDir: Fixtures.d4BaseDir)
        #expect(byBase.step == 600 && byBase.metaPath.hasSuffix("d4/meta_000600.json"))
        #expect(try ModelLocation.resolve(model: nil, baseDir: Fixtures.d4BaseDir, tag: "d4", step: 600) == byBase)
        #expect(throws: NanochatError.self) { try ModelLocation.resolve(model: Fixtures.d4Dir, step: 5) }
        #expect(throws: NanochatError.self) { try ModelLocation.resolve(model: byDir.modelPath, step: 5) }
        #expect(try ModelLocation.resolve(model: byDir.modelPath, step: 600) == byDir)
        #expect(throws: NanochatError.self) { try ModelLocation.resolve(model: "/nonexistent/model_000001.pt") }
        #expect(try ModelLocation.resolve(model: Fixtures.v0Model).defaultTokenizerPath == nil)
    }
}
