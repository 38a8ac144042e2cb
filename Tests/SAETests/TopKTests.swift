import Testing
@testable import SAE
import Tensors

// The sparse TopK/BatchTopK path (gather/scatter over active latents) against the dense reference
// path (dense [B,m] activations and sgemms), forward and gradients, at a size where the row chunks,
// the latent buckets and the threads all come into play.
@Suite struct TopKTests {
    func compare(_ arch: Architecture, aux: Bool) throws {
        var rng = Xoshiro256(seed: 7)
        var config = SAEConfig(architecture: arch, dIn: 48, dSAE: 384, k: 12)
        config.auxK = 24
        var sae = try SAE(config: config, rng: &rng)
        let x = Tensor.randomNormal(shape: [1100, 48], rng: &rng)      // > 2 encoder row chunks
        try sae.initializeDecoderBias(from: x)
        for i in sae.layout.b_enc { sae.params[i] = 0.05 * rng.nextGaussian() }
        let dead: [Bool]? = aux ? (0..<384).map { $0 % 5 == 0 } : nil
        var sparse = [Float](repeating: 0, count: sae.layout.count), dense = sparse
        let s = sae.topkLossAndGradients(x, &sparse, deadMask: dead, dense: false)
        let r = sae.topkLossAndGradients(x, &dense, deadMask: dead, dense: true)
        #expect(abs(s.loss - r.loss) <= 1e-5 * max(1, r.loss))
        #expect(abs(s.auxLoss - r.auxLoss) <= 1e-5 * max(1, r.auxLoss))
        if aux { #expect(s.auxLoss > 0) }
        #expect(s.firingCounts == r.firingCounts)
        for t in sae.layout.tensors {
            let a = Array(sparse[t.range]), b = Array(dense[t.range])
            let scale = b.map(abs).max()!
            let diff = zip(a, b).map { abs($0 - $1) }.max()!
            #expect(scale > 0, "\(arch) \(t.name) gradient is zero")
            #expect(diff <= 1e-5 * max(1, scale), "\(arch)\(aux ? "+aux" : "") \(t.name): max diff \(diff), scale \(scale)")
        }
        // The public entry point takes the sparse path; splitting the encoder over workers changes
        // nothing. Bitwise comparisons hold OpenBLAS's thread count (other suites change it).
        try BLAS.withThreads(2) {
            var first = [Float](repeating: 0, count: sae.layout.count)
            sae.encoderWorkers = 1
            let s1 = sae.topkLossAndGradients(x, &first, deadMask: dead, dense: false)
            var viaAPI = [Float](repeating: 0, count: sae.layout.count)
            let st = try sae.lossAndGradients(x, into: &viaAPI, deadMask: dead)
            #expect(viaAPI == first && st.loss == s1.loss)
            sae.encoderWorkers = 3
            var split = [Float](repeating: 0, count: sae.layout.count)
            let ss = try sae.lossAndGradients(x, into: &split, deadMask: dead)
            #expect(split == first && ss.loss == s1.loss && ss.firingCounts == s1.firingCounts)
        }
        guard aux else { return }
        // AuxK ran as dense products over the 77 dead latents (k_aux 24); entry by entry it agrees too.
        #expect(sae.usesGatheredAuxK(dead: 77, kAux: 24))
        sae.auxGatheredDensity = 0
        var entrywise = [Float](repeating: 0, count: sae.layout.count)
        let se = sae.topkLossAndGradients(x, &entrywise, deadMask: dead, dense: false)
        #expect(abs(se.auxLoss - r.auxLoss) <= 1e-5 * max(1, r.auxLoss))
        for t in sae.layout.tensors {
            let a = Array(entrywise[t.range]), b = Array(dense[t.range])
            let diff = zip(a, b).map { abs($0 - $1) }.max()!, scale = b.map(abs).max()!
            #expect(diff <= 1e-5 * max(1, scale), "\(arch) entry-by-entry AuxK \(t.name): max diff \(diff)")
        }
    }

    @Test func topkSparseEqualsDense() throws { try compare(.topk, aux: false) }
    @Test func topkWithAuxKSparseEqualsDense() throws { try compare(.topk, aux: true) }
    @Test func batchtopkSparseEqualsDense() throws { try compare(.batchtopk, aux: true) }

    /// BatchTopK keeps exactly the k·B largest positive pre-activations of the whole batch, with
    /// rows free to take more or fewer than k.
    /// At loudness 40, row 0 takes more than its 4k candidates, so the rows that may hold more are
    /// encoded again (the overflow path of `batchTopKSelect`).
    @Test(arguments: [8, 40] as [Float])
    func batchTopKSelectsGlobally(loudness: Float) throws {
        var rng = Xoshiro256(seed: 3)
        let config = SAEConfig(architecture: .batchtopk, dIn: 16, dSAE: 64, k: 4)
        var sae = try SAE(config: config, rng: &rng)
        for i in sae.layout.b_enc { sae.params[i] = 0.5 }                 // most pre-activations positive
        var x = Tensor.randomNormal(shape: [10, 16], rng: &rng)
        for i in 0..<16 { x.storage[i] *= loudness }                      // row 0 is loud: takes more than k
        var grads = [Float](repeating: 0, count: sae.layout.count)
        let stats = try sae.lossAndGradients(x, into: &grads)
        let ref = referenceLoss(config, sae.params.map(Double.init), x.storage.map(Double.init), rows: 10, lambda: 0)
        let refActive = ref.f.filter { $0 > 0 }.count
        #expect(Double(refActive) == stats.l0 * 10)
        #expect(ref.f[0..<64].filter { $0 > 0 }.count > (loudness > 10 ? 16 : 4))
        #expect(abs(stats.loss - ref.loss) <= 1e-5 * ref.loss)
        let minKept = ref.f.filter { $0 > 0 }.min()!
        #expect(abs(Double(stats.minKeptActivation!) - minKept) <= 1e-5)
    }

    /// The fused bias + selection kernel picks the same latents as `topKRows`,
    /// including ties (values quantised so many are equal) and k near m.
    @Test(arguments: [(1000, 1), (1000, 7), (256, 32), (50, 50), (4096, 32)])
    func fusedSelectionMatchesTopKRows(_ m: Int, _ k: Int) {
        var rng = Xoshiro256(seed: UInt64(m * 100 + k))
        let rows = 9
        var pre = (0 ..< rows * m).map { _ in (rng.nextGaussian() * 4).rounded() / 4 }
        let bias = (0..<m).map { _ in (rng.nextGaussian() * 2).rounded() / 4 }
        var biased = pre
        for b in 0..<rows { for j in 0..<m { biased[b * m + j] += bias[j] } }
        var v1 = [Float](repeating: 0, count: rows * k), i1 = [Int32](repeating: 0, count: rows * k)
        var v2 = v1, i2 = i1
        biased.withUnsafeBufferPointer { x in v1.withUnsafeMutableBufferPointer { v in i1.withUnsafeMutableBufferPointer { i in
            topKRows(x, n: m, k: k, values: v, indices: i)
        } } }
        pre.withUnsafeMutableBufferPointer { p in bias.withUnsafeBufferPointer { bb in
            v2.withUnsafeMutableBufferPointer { v in i2.withUnsafeMutableBufferPointer { i in
                topKWithBias(pre: p.baseAddress!, bias: bb.baseAddress!, rows: rows, m: m, k: k,
                             outIdx: i.baseAddress!, outVal: v.baseAddress!)
            } }
        } }
        // Same set per row (the fused kernel writes it in index order).
        for b in 0..<rows {
            let a = zip(i1[b * k ..< (b + 1) * k], v1[b * k ..< (b + 1) * k]).sorted { $0.0 < $1.0 }
            let c = zip(i2[b * k ..< (b + 1) * k], v2[b * k ..< (b + 1) * k]).sorted { $0.0 < $1.0 }
            #expect(a.map(\.0) == c.map(\.0) && a.map(\.1) == c.map(\.1), "row \(b)")
        }
        #expect(pre == biased, "pre must hold pre + bias afterwards")
    }

    /// AuxK's selection: per row, the k largest positive values among the candidate latents (ties to
    /// the lower latent), padded with zeros when fewer are positive; against a sort.
    @Test(arguments: [(40, 7), (300, 128), (64, 64)])
    func auxSelectionMatchesSort(_ n: Int, _ k: Int) {
        var rng = Xoshiro256(seed: UInt64(n + k))
        let m = 2 * n, rows = 12
        var pre = [Float](repeating: 0, count: rows * m)
        for i in 0 ..< rows * m { pre[i] = (rng.nextGaussian() * 3).rounded() / 3 }      // many ties
        let candidates: [Int32] = (0..<n).map { (t: Int) -> Int32 in Int32(2 * t + (t % 3 == 0 ? 1 : 0)) }
        var idx = [Int32](repeating: -1, count: rows * k), val = [Float](repeating: -1, count: rows * k)
        pre.withUnsafeBufferPointer { p in idx.withUnsafeMutableBufferPointer { i in val.withUnsafeMutableBufferPointer { v in
            selectLargest(pre: p.baseAddress!, m: m, rows: rows, candidates: candidates, k: k,
                          outIdx: i.baseAddress!, outVal: v.baseAddress!)
        } } }
        for b in 0..<rows {
            var all: [(Float, Int32)] = candidates.map { (pre[b * m + Int($0)], $0) }
            all.sort { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
            var expected = Array(all.prefix(k)).filter { $0.0 > 0 }
            expected.sort { $0.1 < $1.1 }
            var got: [(Float, Int32)] = []
            for s in b * k ..< (b + 1) * k where val[s] > 0 { got.append((val[s], idx[s])) }
            #expect(got.map { $0.1 } == expected.map { $0.1 } && got.map { $0.0 } == expected.map { $0.0 }, "row \(b)")
            #expect(val[b * k ..< (b + 1) * k].allSatisfy { $0 >= 0 })
        }
    }
}
