import Foundation
import Testing
import Tensors

/// sgemm through our wrapper against a naive triple loop, for odd sizes and every transpose.
@Suite struct BLASTests {
    /// C = op(A)·op(B) by the definition, in Double.
    func naive(_ a: Tensor, _ b: Tensor, _ ta: Transpose, _ tb: Transpose) -> [Double] {
        let (m, k) = ta == .none ? (a.shape[0], a.shape[1]) : (a.shape[1], a.shape[0])
        let n = tb == .none ? b.shape[1] : b.shape[0]
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let av = ta == .none ? a[i, p] : a[p, i]
                    let bv = tb == .none ? b[p, j] : b[j, p]
                    s += Double(av) * Double(bv)
                }
                c[i * n + j] = s
            }
        }
        return c
    }

    @Test(arguments: [(1, 1, 1), (3, 5, 7), (17, 1, 9), (33, 65, 31), (64, 100, 3)])
    func matmulMatchesNaiveLoops(size: (Int, Int, Int)) {
        let (m, k, n) = size
        var rng = Xoshiro256(seed: UInt64(m * 1000 + k * 10 + n))
        for ta in [Transpose.none, .transposed] {
            for tb in [Transpose.none, .transposed] {
                let a = Tensor.randomNormal(shape: ta == .none ? [m, k] : [k, m], rng: &rng)
                let b = Tensor.randomNormal(shape: tb == .none ? [k, n] : [n, k], rng: &rng)
                let c = matmul(a, b, ta, tb)
                #expect(c.shape == [m, n])
                let ref = naive(a, b, ta, tb)
                let err = zip(c.storage, ref).map { abs(Double($0) - $1) }.max() ?? 0
                #expect(err < 1e-4 * Double(k), "m=\(m) k=\(k) n=\(n) \(ta) \(tb): error \(err)")
            }
        }
    }

    @Test func sgemmHonoursStridesAlphaAndBeta() {
        // C (3×2, inside a 3×4 buffer) = 2·A·B + 0.5·C, A is a 3×2 view inside a 3×5 buffer.
        var rng = Xoshiro256(seed: 7)
        let a = Tensor.randomNormal(shape: [3, 5], rng: &rng)
        let b = Tensor.randomNormal(shape: [2, 2], rng: &rng)
        var c = Tensor.randomNormal(shape: [3, 4], rng: &rng)
        let c0 = c
        a.withConstBuffer { pa in b.withConstBuffer { pb in c.withBuffer { pc in
            sgemm(.none, .none, m: 3, n: 2, k: 2, alpha: 2, a: pa.baseAddress!, lda: 5,
                  b: pb.baseAddress!, ldb: 2, beta: 0.5, c: pc.baseAddress!, ldc: 4)
        } } }
        for i in 0..<3 {
            for j in 0..<4 {
                let expected = j < 2 ? 2 * (a[i, 0] * b[0, j] + a[i, 1] * b[1, j]) + 0.5 * c0[i, j] : c0[i, j]
                #expect(abs(c[i, j] - expected) < 1e-5, "(\(i),\(j))")
            }
        }
    }

    @Test func threadCountCanBeSet() {
        BLAS.withThreads(2) {                       // no concurrent scope changes it meanwhile
            BLAS.withThreads(2) { #expect(BLAS.threads == 2) }
            #expect(BLAS.threads == 2)
        }
        #expect(!BLAS.coreName.isEmpty)
    }

    /// Scopes asking different counts never overlap: each sees its own count throughout, even while
    /// the other thread keeps asking for another one.
    @Test func threadScopesOfDifferentCountsExclude() {
        let seen = UnsafeMutableBufferPointer<Int>.allocate(capacity: 2)
        seen.initialize(repeating: 0)
        defer { seen.deallocate() }
        parallelFor(2) { t in
            let n = t + 1
            for _ in 0..<50 {
                BLAS.withThreads(n) {
                    for _ in 0..<20 where BLAS.threads != n { seen[t] += 1 }
                    usleep(50)
                }
            }
        }
        #expect(seen[0] == 0 && seen[1] == 0)
    }
}
