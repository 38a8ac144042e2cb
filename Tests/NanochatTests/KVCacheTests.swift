import Nanochat
import Tensors
import Testing

/// Decoding with the KV cache gives the logits of a full forward pass.
@Suite struct KVCacheTests {
    @Test(arguments: ["d4", "v0"])
    func prefillThenOneTokenAtATimeMatchesFullForward(_ name: String) throws {
        let (_, _, dir) = Fixtures.models.first { $0.name == name }!
        let model = Loaded.model(name), ref = try Reference(dir: dir)
        let tokens = ref.tokens, T = tokens[0].count, V = model.config.vocabSize
        let full = try #require(try model.forward(tokens: tokens).logits)
        let cache = try model.makeCache(batch: tokens.count, capacity: T)
        let prefill = 37   // decoding then crosses the 128-token windows of d4
        let p = try #require(try model.decode(tokens: tokens.map { Array($0[0..<prefill]) }, cache: cache, logits: .all).logits)
        // Largest |a − b| between row r of `x` and the logits of (b, t) in the full forward.
        func diff(_ x: Tensor, _ r: Int, _ b: Int, _ t: Int) -> Float {
            zip(x.storage[(r * V)..<((r + 1) * V)], full.storage[((b * T + t) * V)..<((b * T + t + 1) * V)])
                .reduce(0) { max($0, abs($1.0 - $1.1)) }
        }
        var worst: Float = 0
        for b in 0..<tokens.count {
            for t in 0..<prefill { worst = max(worst, diff(p, b * prefill + t, b, t)) }
        }
        for t in prefill..<T {
            let o = try #require(try model.decode(tokens: tokens.map { [$0[t]] }, cache: cache).logits)
            for b in 0..<tokens.count { worst = max(worst, diff(o, b, b, t)) }
        }
        #expect(cache.length == T)
        #expect(worst < 1e-4)
    }

    @Test func hookCallbacksSteerDecodingAsTheyDoTheFullForward() throws {
        let model = Loaded.d4, tokens = [4087, 464, 532, 1450, 438, 327, 589, 298]
        let point = HookPoint(layer: 1, kind: .residPost)
        var positions: [Int] = []
        // Halve one residual; the same edit at every position must give the same logits either way.
        let steer: HookCallback = { act in
            guard act.point == point else { return }
            positions.append(contentsOf: (0..<act.tokens).map { act.startPosition + $0 })
            for i in act.values.indices { act.values[i] *= 0.5 }
        }
        let full = try #require(try model.forward(tokens: [tokens], callback: steer).logits)
        let clean = try #require(try model.forward(tokens: [tokens]).logits)
        #expect(positions == Array(0..<8))
        positions = []
        let cache = try model.makeCache(batch: 1, capacity: tokens.count)
        _ = try model.decode(tokens: [Array(tokens[0..<5])], cache: cache, callback: steer)
        var last = Tensor(shape: [1])
        for t in 5..<8 { last = try #require(try model.decode(tokens: [[tokens[t]]], cache: cache, callback: steer).logits) }
        #expect(positions == Array(0..<8))
        let V = model.config.vocabSize
        let fullLast = Tensor(shape: [1, 1, V], storage: Array(full.storage[(7 * V)..<(8 * V)]))
        let cleanLast = Tensor(shape: [1, 1, V], storage: Array(clean.storage[(7 * V)..<(8 * V)]))
        #expect(last.maxAbsDifference(fullLast) < 1e-4)
        #expect(last.maxAbsDifference(cleanLast) > 1e-2)
    }

    @Test func decodingPastTheCacheIsRefused() throws {
        let model = Loaded.v0
        let cache = try model.makeCache(batch: 1, capacity: 2)
        _ = try model.decode(tokens: [[1, 2]], cache: cache)
        #expect(throws: NanochatError.self) { try model.decode(tokens: [[3]], cache: cache) }
        #expect(throws: NanochatError.self) { try model.decode(tokens: [[3], [4]], cache: try model.makeCache(batch: 1, capacity: 4)) }
    }

    @Test func slidingWindowsFollowThePattern() {
        // d4: window_pattern SSSL, sequence_len 256 → S = ceil(256/4/128)·128 = 128, last layer L.
        #expect(Loaded.d4.windows == [128, 128, 128, 256])
        #expect(Loaded.v0.windows == [128, 128])
        let c = ModelConfig(sequenceLen: 2048, vocabSize: 65536, nLayer: 5, nHead: 4, nKVHead: 4, nEmbd: 256,
                            windowPattern: "SL")
        #expect(c.windows == [512, 2048, 512, 2048, 2048])
    }
}
