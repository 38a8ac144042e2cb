import Foundation
import Tensors

/// How the next token is drawn from the logits.
public struct Sampling: Sendable {
    /// 0 = greedy (argmax, ties to the lower id); otherwise softmax(logits / temperature).
    public var temperature: Float
    /// Keep only the k most likely tokens before sampling (nil = all).
    public var topK: Int?
    /// Seed of the sampling generator (same seed, same tokens).
    public var seed: UInt64

    public init(temperature: Float = 0, topK: Int? = nil, seed: UInt64 = 42) {
        self.temperature = temperature; self.topK = topK; self.seed = seed
    }
}

extension NanochatModel {
    /// Generates up to `maxTokens` tokens after `prompt` with the KV cache: one prefill of the
    /// prompt, then one token per step. Stops early after a token in `stopTokens`. `callback`
    /// sees every hook point of every step (steering); `onToken` is told each new token.
    public func generate(prompt: [Int], maxTokens: Int, sampling: Sampling = Sampling(),
                         stopTokens: Set<Int> = [], callback: HookCallback? = nil,
                         onToken: ((Int) -> Void)? = nil) throws -> [Int] {
        guard !prompt.isEmpty else { throw NanochatError.invalidTokens(reason: "empty prompt; expected at least <|bos|>") }
        guard maxTokens >= 0 else { throw NanochatError.invalidTokens(reason: "max tokens must be ≥ 0, got \(maxTokens)") }
        if maxTokens == 0 { return [] }
        guard prompt.count + maxTokens <= maxPositions else {
            throw NanochatError.invalidTokens(reason: "prompt of \(prompt.count) + \(maxTokens) new tokens exceeds the \(maxPositions) positions this model supports")
        }
        let cache = try makeCache(batch: 1, capacity: prompt.count + maxTokens)
        var rng = Xoshiro256(seed: sampling.seed)
        var out: [Int] = []
        var logits = try decode(tokens: [prompt], cache: cache, logits: .last, callback: callback).logits!
        while true {
            let next = Self.sample(logits.storage, sampling: sampling, rng: &rng)
            out.append(next)
            onToken?(next)
            if out.count == maxTokens || stopTokens.contains(next) { break }
            logits = try decode(tokens: [[next]], cache: cache, logits: .last, callback: callback).logits!
        }
        return out
    }

    /// Draws a token from one row of logits.
    public static func sample(_ logits: [Float], sampling: Sampling, rng: inout Xoshiro256) -> Int {
        if sampling.temperature <= 0 {
            var best = 0
            for i in 1..<logits.count where logits[i] > logits[best] { best = i }
            return best
        }
        // Candidates: all ids, or the top k (descending, ties to the lower id).
        var ids = Array(0..<logits.count)
        if let k = sampling.topK, k > 0, k < logits.count {
            let t = Tensor(shape: [1, logits.count], storage: logits).topK(k)
            ids = t.indices.map(Int.init)
        }
        // p_i ∝ exp((l_i − max l) / temperature)
        let m = ids.map { logits[$0] }.max()!
        let w = ids.map { Double(Foundation.exp((logits[$0] - m) / sampling.temperature)) }
        var u = rng.nextDouble() * w.reduce(0, +)
        for (i, wi) in zip(ids, w) {
            u -= wi
            if u < 0 { return i }
        }
        return ids.last!
    }
}
