import Testing
@testable import SAE
import Tensors

/// `encodeSparse` (TopK through the training's chunked selection) against the dense `encode`.
@Suite struct SparseEncodingTests {
    @Test(arguments: [Architecture.topk, .relu]) func sparseEqualsDense(_ arch: Architecture) throws {
        var rng = Xoshiro256(seed: 11)
        var sae = try SAE(config: SAEConfig(architecture: arch, dIn: 32, dSAE: 256, k: 8), rng: &rng)
        let x = Tensor.randomNormal(shape: [600, 32], rng: &rng)       // > 2 encoder row chunks
        for i in sae.layout.b_enc { sae.params[i] = 0.05 * rng.nextGaussian() }
        let dense = try sae.encode(x), sparse = try sae.encodeSparse(x)
        #expect(sparse.rows == 600 && sparse.index.count > 600)
        for b in 0..<600 {
            let row = sparse.start[b] ..< sparse.start[b + 1]
            let expected = (0..<256).filter { dense.storage[b * 256 + $0] > 0 }
            #expect(Set(row.map { Int(sparse.index[$0]) }) == Set(expected), "row \(b)")
            for s in row {
                let j = Int(sparse.index[s])
                #expect(abs(sparse.value[s] - dense.storage[b * 256 + j]) <= 1e-5 * max(1, dense.storage[b * 256 + j]))
                #expect(sparse.value(row: b, feature: j) == sparse.value[s])
            }
        }
        #expect(SparseFeatures(dense: dense).index.count == sparse.index.count)
    }
}
