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
