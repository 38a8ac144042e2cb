import Nanochat
import Tensors
import Testing

/// Greedy generation with the KV cache against nanochat's GPT.generate (reference/generate.json).
@Suite struct GenerationTests {
    @Test(arguments: ["d4", "v0"])
    func greedyMatchesReference(_ name: String) throws {
        let (_, _, dir) = Fixtures.models.first { $0.name == name }!
        let model = Loaded.model(name), tok = Loaded.tokenizer, ref = try GenerateReference(dir: dir)
        let prompt = [try tok.bos] + tok.encode(ref.prompt_text)
        #expect(prompt == ref.prompt_tokens)
        let out = try model.generate(prompt: prompt, maxTokens: ref.greedy_tokens.count)
        #expect(out == ref.greedy_tokens)
        #expect(tok.decode(out) == ref.greedy_text)
    }

    @Test func samplingIsSeededAndTopKRestricts() throws {
        let model = Loaded.d4
        let prompt = [4087, 464, 532, 1450]
        let s = Sampling(temperature: 1, topK: 5, seed: 7)
        let a = try model.generate(prompt: prompt, maxTokens: 12, sampling: s)
        let b = try model.generate(prompt: prompt, maxTokens: 12, sampling: s)
        #expect(a == b)
        #expect(a.count == 12)
        // top-1 sampling is greedy.
        let top1 = try model.generate(prompt: prompt, maxTokens: 12, sampling: Sampling(temperature: 1, topK: 1, seed: 3))
        #expect(top1 == (try model.generate(prompt: prompt, maxTokens: 12)))
        // Every sampled token is among the 5 most likely at its step.
        var rng = Xoshiro256(seed: 1)
        let logits: [Float] = [0, 5, 1, 4, 3, 2, -1, 0.5]
        for _ in 0..<200 {
            let t = NanochatModel.sample(logits, sampling: Sampling(temperature: 2, topK: 3), rng: &rng)
            #expect([1, 3, 4].contains(t))
        }
    }
}
