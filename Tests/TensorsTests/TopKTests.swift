import Testing
import Tensors

/// Per-row top-k against a full sort with the same tie rule (larger value first, then lower index).
@Suite struct TopKTests {
    func reference(_ row: ArraySlice<Float>, _ k: Int) -> [(Float, Int32)] {
        let base = row.startIndex
        var pairs: [(Float, Int32)] = row.indices.map { (row[$0], Int32($0 - base)) }
        pairs.sort { (a: (Float, Int32), b: (Float, Int32)) -> Bool in
            a.0 > b.0 || (a.0 == b.0 && a.1 < b.1)
        }
        return Array(pairs.prefix(k))
    }

    func check(_ x: Tensor, _ k: Int) {
        let (v, ix) = x.topK(k)
        #expect(v.shape == [x.rows, k])
        for r in 0..<x.rows {
            let ref = reference(x.row(r), k)
            for j in 0..<k {
                #expect(v[r, j] == ref[j].0 && ix[r * k + j] == ref[j].1,
                        "row \(r) slot \(j): got (\(v[r, j]), \(ix[r * k + j])) want \(ref[j])")
            }
        }
    }

    @Test(arguments: [(1, 1, 1), (5, 37, 1), (5, 37, 8), (3, 64, 64), (9, 1001, 32), (2, 33, 33)])
    func matchesSortOnRandomRows(shape: (Int, Int, Int)) {
        let (rows, n, k) = shape
        var rng = Xoshiro256(seed: UInt64(rows * n * k))
        check(Tensor.randomNormal(shape: [rows, n], rng: &rng), k)
    }

    @Test func tiesGoToTheLowerIndex() {
        // Many equal values: the selection and the order must be deterministic.
        let x = Tensor(shape: [2, 8], storage: [1, 3, 3, 2, 3, 1, 3, 0,
                                                 5, 5, 5, 5, 5, 5, 5, 5])
        check(x, 3)
        let (v, ix) = x.topK(3)
        #expect(Array(ix[0..<3]) == [1, 2, 4] && Array(v.row(0)) == [3, 3, 3])
        #expect(Array(ix[3..<6]) == [0, 1, 2])
        check(x, 8)  // k = m: a full descending order
    }

    @Test func largeInputsUseThreadsAndStayExact() {
        var rng = Xoshiro256(seed: 11)
        let x = Tensor.randomNormal(shape: [256, 2048], rng: &rng)  // above the threading threshold
        check(x, 32)
    }
}
