import Foundation
import Nanochat
import Tensors
import Testing

/// The forward pass against nanochat's own PyTorch outputs (reference/forward.safetensors).
@Suite struct ForwardTests {
    @Test(arguments: ["d4", "v0"])
    func logitsAndEveryHookMatchReference(_ name: String) throws {
        let (_, _, dir) = Fixtures.models.first { $0.name == name }!
        let model = Loaded.model(name), ref = try Reference(dir: dir)
        let hooks = HookPoint.all(nLayer: model.config.nLayer)
        let out = try model.forward(tokens: ref.tokens, hooks: hooks)
        let logits = try #require(out.logits)
        #expect(logits.maxAbsDifference(try ref.tensor("logits")) < 1e-4)
        for h in hooks {
            let r = try ref.tensor(h.name)
            let got = try #require(out.activations[h])
            let tol = 5e-5 * max(1, r.maxAbs)
            #expect(got.maxAbsDifference(r) < tol, "\(name) \(h.name): \(got.maxAbsDifference(r)) ≥ \(tol)")
        }
    }

    @Test(arguments: ["d4", "v0"])
    func perTokenLossMatchesReference(_ name: String) throws {
        let (_, _, dir) = Fixtures.models.first { $0.name == name }!
        let model = Loaded.model(name), ref = try Reference(dir: dir)
        let targets = try Reference.rows(ref.file, "targets")
        let loss = try ref.tensor("loss")
        let logits = try #require(try model.forward(tokens: ref.tokens).logits)
        let V = model.config.vocabSize, T = ref.tokens[0].count
        var worst: Float = 0
        for b in 0..<ref.tokens.count {
            for t in 0..<T {
                // cross entropy = logsumexp(logits) − logits[target]
                let row = logits.storage[(b * T + t) * V ..< (b * T + t + 1) * V]
                let m = row.max()!
                let lse = m + Foundation.log(row.reduce(Float(0)) { $0 + Foundation.exp($1 - m) })
                let ce = lse - row[row.startIndex + targets[b][t]]
                worst = max(worst, abs(ce - loss[b, t]))
            }
        }
        #expect(worst < 1e-4)
    }

    @Test func stopsAfterDeepestRequestedHook() throws {
        let model = Loaded.d4, ref = try Reference(dir: Fixtures.models[0].reference)
        var seen: [HookPoint] = []
        let hook = HookPoint(layer: 1, kind: .residMid)
        let out = try model.forward(tokens: [Array(ref.tokens[0].prefix(32))], hooks: [hook], logits: false) {
            seen.append($0.point)
        }
        #expect(out.logits == nil)
        #expect(seen.last == hook)
        #expect(seen == HookPoint.all(nLayer: 4).filter { $0 <= hook })
        let full = try model.forward(tokens: [Array(ref.tokens[0].prefix(32))], hooks: [hook])
        // Same values (up to OpenBLAS splitting work differently when other tests run alongside).
        #expect(try #require(out.activations[hook]).maxAbsDifference(try #require(full.activations[hook])) < 1e-5)
    }

    @Test func callbackCanSteerTheResidual() throws {
        let model = Loaded.d4, tokens = [[4087, 464, 532, 1450]]
        let clean = try #require(try model.forward(tokens: tokens).logits)
        // Zeroing the MLP output of layer 3 is the same as the residual without it.
        let point = HookPoint(layer: 3, kind: .mlpOut)
        var mlp = Tensor(shape: [1])
        let steered = try model.forward(tokens: tokens, hooks: [point, HookPoint(layer: 3, kind: .residPost)]) { act in
            if act.point == point {
                mlp = Tensor(shape: [act.batch, act.tokens, act.width], storage: Array(act.values))
                for i in act.values.indices { act.values[i] = 0 }
            }
        }
        #expect(mlp.maxAbs > 0)
        #expect(steered.activations[point]!.maxAbs == 0)
        let logits = try #require(steered.logits)
        #expect(logits.maxAbsDifference(clean) > 1e-3)
        // A callback that writes nothing changes nothing.
        let same = try #require(try model.forward(tokens: tokens) { _ in }.logits)
        #expect(same.maxAbsDifference(clean) < 1e-4)
    }

    @Test func refusesBadTokens() throws {
        let model = Loaded.v0
        #expect(throws: NanochatError.self) { try model.forward(tokens: [[1, 2], [3]]) }
        #expect(throws: NanochatError.self) { try model.forward(tokens: [[4096]]) }
        #expect(throws: NanochatError.self) { try model.forward(tokens: [Array(repeating: 1, count: 129)]) }
        #expect(throws: NanochatError.self) { try model.forward(tokens: []) }
    }
}
