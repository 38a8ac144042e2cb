import Testing
@testable import SAE
import Tensors

// The sparse TopK/BatchTopK path (gather/scatter over active latents) against the dense reference
// path (dense [B,m] activations and sgemms), forward and gradients, at a size where the row chunks,
// the latent buckets and the threads all come into play.
@Suite struct TopKTests {
    func compare(_ arch: Architecture, aux: Bool, d: Int = 48) throws {
        var rng = Xoshiro256(seed: 7)
        var config = SAEConfig(architecture: arch, dIn: d, dSAE: 384, k: 12)
        config.auxK = 24
        var sae = try SAE(config: config, rng: &rng)
        let x = Tensor.randomNormal(shape: [1100, d], rng: &rng)      // > 2 encoder row chunks
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
    /// At d 256 the backward's row blocks are 512 rows: three blocks, bucketed in parallel.
    @Test(arguments: [false, true]) func topkSparseEqualsDenseOverRowBlocks(aux: Bool) throws {
        #expect(EntryBuckets([], rows: 1100, m: 384, d: 256).blocks == 3)
        try compare(.topk, aux: aux, d: 256)
    }
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

    /// The streaming selection keeps, per row, the positive part of `topKRows`'s set (ties to the lower
    /// index; values quantised so many are equal), whatever the tile width, from a proven start and
    /// from estimated starts too low (many shrinks) or too high (`finish` reports the row).
    @Test(arguments: [(1000, 1, 100), (1000, 7, 512), (256, 32, 64), (50, 50, 16), (4096, 32, 512), (700, 12, 7)])
    func streamingSelectionMatchesTopKRows(_ m: Int, _ k: Int, _ tile: Int) {
        var rng = Xoshiro256(seed: UInt64(m * 100 + k))
        let rows = 9
        var pre = (0 ..< rows * m).map { _ in (rng.nextGaussian() * 4).rounded() / 4 }
        for j in 0..<m { pre[j] = -abs(pre[j]) }                       // row 0: nothing positive
        for j in 0..<m where j % 3 != 0 { pre[m + j] = -1 }             // row 1: about m/3 positive
        var refVal = [Float](repeating: 0, count: rows * k), refIdx = [Int32](repeating: 0, count: rows * k)
        pre.withUnsafeBufferPointer { x in refVal.withUnsafeMutableBufferPointer { v in refIdx.withUnsafeMutableBufferPointer { i in
            topKRows(x, n: m, k: k, values: v, indices: i)
        } } }
        let capacity = StreamingTopK.capacity(k: k)
        let value = UnsafeMutablePointer<Float>.allocate(capacity: rows * capacity)
        let index = UnsafeMutablePointer<Int32>.allocate(capacity: rows * capacity)
        let count = UnsafeMutablePointer<Int>.allocate(capacity: rows), threshold = UnsafeMutablePointer<Float>.allocate(capacity: rows)
        let select = StreamingTopK(k: k, capacity: capacity, value: value, index: index, count: count, threshold: threshold)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: select.scratchCount(tile: tile))
        defer { value.deallocate(); index.deallocate(); count.deallocate(); threshold.deallocate(); scratch.deallocate() }
        for b in 0..<rows {
            let positive = zip(refIdx[b * k ..< (b + 1) * k], refVal[b * k ..< (b + 1) * k]).filter { $0.1 > 0 }.sorted { $0.0 < $1.0 }
            let kth = positive.count == k ? positive.map(\.1).min()! : 0
            // Starts: proven, an estimate below the k-th largest, one above it.
            for start: Float in [0, kth > 0 ? 0.8 * kth : 0, kth > 0 ? 1.3 * kth : 0.5] {
                select.start(row: b, threshold: start)
                pre.withUnsafeBufferPointer { p in
                    for lo in stride(from: 0, to: m, by: tile) {
                        select.offer(row: b, p.baseAddress! + b * m + lo, min(tile, m - lo), lo: lo, scratch: scratch)
                    }
                }
                var v = [Float](repeating: -1, count: k), i = [Int32](repeating: -1, count: k)
                let found = v.withUnsafeMutableBufferPointer { vb in i.withUnsafeMutableBufferPointer { ib in
                    select.finish(row: b, started: start, outVal: vb.baseAddress!, outIdx: ib.baseAddress!, scratch: scratch)
                } }
                if start > 0 && positive.filter({ $0.1 > start }).count < k {
                    #expect(found == nil, "row \(b) start \(start): too high a start must be reported")
                    continue
                }
                let got = zip(i, v).filter { $0.1 > 0 }
                #expect(got.map(\.0) == positive.map(\.0) && got.map(\.1) == positive.map(\.1), "row \(b) start \(start) tile \(tile)")
                #expect(v[got.count...].allSatisfy { $0 == 0 })
                if positive.count == k { #expect(found == kth) }
            }
        }
    }

    /// The estimated starts of `topkSelect` change no bit of the selection: far too low (every row
    /// shrinks its list many times) or far too high (every row is selected again from a proven
    /// start), for both architectures, with AuxK, over several chunks and a partial tile; and the
    /// selection is `topKRows` of the dense pre-activations.
    @Test(arguments: [Architecture.topk, .batchtopk])
    func selectionIndependentOfEstimates(_ arch: Architecture) throws {
        var rng = Xoshiro256(seed: 11)
        var config = SAEConfig(architecture: arch, dIn: 24, dSAE: 1100, k: 9)
        config.auxK = 20
        var sae = try SAE(config: config, rng: &rng)
        var x = Tensor.randomNormal(shape: [600, 24], rng: &rng)
        for i in 0..<24 { x.storage[5 * 24 + i] *= 30; x.storage[6 * 24 + i] *= 0.01 }   // a loud and a quiet row
        try sae.initializeDecoderBias(from: x)
        for i in sae.layout.b_enc { sae.params[i] = 0.1 * rng.nextGaussian() }
        let dead = (0..<1100).map { $0 % 7 == 0 }
        // Bitwise comparisons hold OpenBLAS's thread count (other suites change it).
        let base = BLAS.withThreads(2) {
            let base = x.withConstBuffer { sae.topkSelect($0.baseAddress!, rows: 600, deadMask: dead) }
            for margin: Float in [0.01, 1000] {
                sae.selectionMargin = margin
                let s = x.withConstBuffer { sae.topkSelect($0.baseAddress!, rows: 600, deadMask: dead) }
                #expect(s.main.start == base.main.start && s.main.idx == base.main.idx && s.main.val == base.main.val, "margin \(margin)")
                #expect(s.aux?.ordinal == base.aux?.ordinal && s.aux?.value == base.aux?.value && s.minKept == base.minKept)
            }
            return base
        }
        guard arch == .topk else { return }
        // Against topKRows over the dense pre-activations (another sgemm: values to 1e-5).
        let b_dec = Array(sae.params[sae.layout.b_dec]), b_enc = Array(sae.params[sae.layout.b_enc])
        let xt = Tensor(shape: [600, 24], storage: (0 ..< 600 * 24).map { x.storage[$0] - b_dec[$0 % 24] })
        let W = Tensor(shape: [1100, 24], storage: Array(sae.params[sae.layout.W_enc]))
        var pre = matmul(xt, W, .none, .transposed)
        for b in 0..<600 { for j in 0..<1100 { pre.storage[b * 1100 + j] += b_enc[j] } }
        var v = [Float](repeating: 0, count: 600 * 9), i = [Int32](repeating: 0, count: 600 * 9)
        pre.withConstBuffer { p in v.withUnsafeMutableBufferPointer { vb in i.withUnsafeMutableBufferPointer { ib in
            topKRows(p, n: 1100, k: 9, values: vb, indices: ib)
        } } }
        for b in 0..<600 {
            let want = zip(i[b * 9 ..< (b + 1) * 9], v[b * 9 ..< (b + 1) * 9]).filter { $0.1 > 0 }.sorted { $0.0 < $1.0 }
            let lo = base.main.start[b], hi = base.main.start[b + 1]
            #expect(Array(base.main.idx[lo..<hi]) == want.map(\.0), "row \(b)")
            #expect(zip(base.main.val[lo..<hi], want.map(\.1)).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) })
        }
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
