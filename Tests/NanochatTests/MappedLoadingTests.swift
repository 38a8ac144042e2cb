import Foundation
import Formats
import Nanochat
import Tensors
import Testing

/// Weights used in place from the mapped checkpoint (ParameterStore) give bitwise the outputs of
/// the same weights copied into private memory (the loading path before issue 14).
@Suite struct MappedLoadingTests {
    @Test(arguments: ["d4", "v0"])
    func mappedEqualsCopiedBitwise(_ name: String) throws {
        let fixture = Fixtures.models.first { $0.name == name }!
        let location = try ModelLocation.resolve(model: fixture.model)
        let mapped = try NanochatModel(location: location)
        let copied = try NanochatModel(config: ModelConfig(metaPath: location.metaPath),
                                       stateDict: loadTorchStateDict(path: location.modelPath), file: location.modelPath)
        #expect(mapped.convertedTensors.isEmpty, "a float32 checkpoint is used in place: \(mapped.convertedTensors)")
        #expect(mapped.parameterCount == copied.parameterCount)
        let tokens = try Reference(dir: fixture.reference).tokens
        let hooks = HookPoint.all(nLayer: mapped.config.nLayer)
        let a = try mapped.forward(tokens: tokens, hooks: hooks), b = try copied.forward(tokens: tokens, hooks: hooks)
        #expect(a.logits!.storage == b.logits!.storage)
        for h in hooks { #expect(a.activations[h]!.storage == b.activations[h]!.storage, "\(h.name)") }
        #expect(mapped.parameter("transformer.wte.weight")!.storage == copied.parameter("transformer.wte.weight")!.storage)
    }
}

/// Checkpoints saved with bf16 tensors, written by `writeTorchCheckpoint` from the d4 weights: the
/// embedding tables stay bf16 in the mapping (rows widened on lookup, exact), bf16 matrices are
/// converted once, through the caller's shared memory when given. Either way the outputs are the
/// bits of a float32 model holding the same (bf16-representable) values.
@Suite struct BF16CheckpointTests {
    /// d4's weights with the tensors `toBF16` selects rounded to bf16, written with those stored as
    /// bf16; returns the float32 reference model and the checkpoint's directory.
    func checkpoint(_ toBF16: (String, [Int]) -> Bool) throws -> (reference: NanochatModel, dir: String) {
        let location = try ModelLocation.resolve(model: Fixtures.d4Dir)
        let config = try ModelConfig(metaPath: location.metaPath)
        var sd = try loadTorchStateDict(path: location.modelPath)
        let names = sd.keys.sorted()
        let specs = names.map { TorchTensorSpec(name: $0, dtype: toBF16($0, sd[$0]!.shape) ? .bf16 : .f32, shape: sd[$0]!.shape) }
        for s in specs where s.dtype == .bf16 {   // round to nearest even, as torch's .bfloat16()
            sd[s.name]!.storage = sd[s.name]!.storage.map { v in
                let b = v.bitPattern
                return Float(bitPattern: (b &+ 0x7fff &+ ((b >> 16) & 1)) & 0xffff_0000)
            }
        }
        let dir = Fixtures.temporaryPath("")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: location.metaPath, toPath: dir + "/" + (location.metaPath as NSString).lastPathComponent)
        let name = ((location.modelPath as NSString).lastPathComponent as NSString).deletingPathExtension
        try writeTorchCheckpoint(path: dir + "/\(name).pt", archive: name, tensors: specs) { i, bytes in
            let values = sd[specs[i].name]!.storage
            if specs[i].dtype == .f32 { values.withUnsafeBytes { bytes.copyMemory(from: $0) }; return }
            let b = bytes.bindMemory(to: UInt16.self)
            for (j, v) in values.enumerated() { b[j] = UInt16(v.bitPattern >> 16).littleEndian }
        }
        return (try NanochatModel(config: config, stateDict: sd), dir)
    }

    func expectSameOutputs(_ a: NanochatModel, _ b: NanochatModel) throws {
        let tokens = try Reference(dir: Fixtures.models[0].reference).tokens
        let hooks = HookPoint.all(nLayer: a.config.nLayer)
        let x = try a.forward(tokens: tokens, hooks: hooks), y = try b.forward(tokens: tokens, hooks: hooks)
        #expect(x.logits!.storage == y.logits!.storage)
        for h in hooks { #expect(x.activations[h]!.storage == y.activations[h]!.storage, "\(h.name)") }
        #expect(try a.generate(prompt: tokens[0].prefix(8).map { $0 }, maxTokens: 8)
                == b.generate(prompt: tokens[0].prefix(8).map { $0 }, maxTokens: 8))
    }

    @Test func bf16EmbeddingsAreUsedInPlaceAndGiveTheSameBits() throws {
        let (reference, dir) = try checkpoint { name, _ in name == "transformer.wte.weight" || name.hasPrefix("value_embeds.") }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let mapped = try NanochatModel(location: ModelLocation.resolve(model: dir))
        #expect(mapped.convertedTensors.isEmpty, "\(mapped.convertedTensors)")
        try expectSameOutputs(reference, mapped)
    }

    @Test func bf16MatricesAreConvertedOnceIntoSharedMemory() throws {
        let (reference, dir) = try checkpoint { _, shape in shape.count == 2 }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var calls: [Int] = []
        let shared: SharedMemory = { bytes, fill in
            calls.append(bytes)
            let p = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            try fill(p)
            return UnsafeRawPointer(p)   // (leaked: lives as long as the test process, like a shared window)
        }
        let mapped = try NanochatModel(location: ModelLocation.resolve(model: dir), sharedMemory: shared)
        // Every 2-D tensor but the embedding tables (kept bf16) is converted, all in one region.
        let matrices = ArchitectureProfile.current.expectedShapes(reference.config)
            .filter { $0.value.count == 2 && $0.key != "transformer.wte.weight" && !$0.key.hasPrefix("value_embeds.") }
        #expect(Set(mapped.convertedTensors.map(\.name)) == Set(matrices.keys))
        #expect(calls.count == 1 && calls[0] >= mapped.convertedTensors.reduce(0) { $0 + $1.bytes })
        #expect(mapped.conversionNote?.contains("\(matrices.count) tensor(s) converted") == true)
        try expectSameOutputs(reference, mapped)
        // Without shared memory the same tensors go to private memory, with the same outputs.
        try expectSameOutputs(reference, try NanochatModel(location: ModelLocation.resolve(model: dir)))
    }

    /// The writer's files read back through the reader bit for bit, and Python's zipfile layout
    /// rules hold (stored entries, data 64-byte aligned).
    @Test func writtenCheckpointsReadBackBitwise() throws {
        let dir = Fixtures.temporaryPath("")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let specs = [TorchTensorSpec(name: "a", dtype: .f32, shape: [3, 5]), TorchTensorSpec(name: "_orig_mod.b", dtype: .bf16, shape: [7]),
                     TorchTensorSpec(name: "c", dtype: .f16, shape: []), TorchTensorSpec(name: "empty", dtype: .f32, shape: [0, 4])]
        try writeTorchCheckpoint(path: dir + "/m.pt", archive: "m", tensors: specs) { i, bytes in
            for j in 0..<bytes.count { bytes[j] = UInt8(truncatingIfNeeded: 37 &* (i + 1) &+ j) & 0x3f }   // no NaN patterns
        }
        let ck = try TorchCheckpoint(path: dir + "/m.pt")
        #expect(ck.names == ["a", "b", "c", "empty"])
        for (i, s) in specs.enumerated() {
            let name = s.name.replacingOccurrences(of: "_orig_mod.", with: "")
            let info = try ck.info(name)
            #expect(info.dtype == s.dtype && info.shape == s.shape)
            let expected = (0..<(s.count * s.dtype.size)).map { UInt8(truncatingIfNeeded: 37 &* (i + 1) &+ $0) & 0x3f }
            if s.count > 0 {
                let raw = try #require(try ck.mappedElements(name))
                #expect(Array(raw) == expected, "\(name)")
                #expect(Int(bitPattern: raw.baseAddress!) % 64 == 0)
            }
        }
    }
}
