import Foundation
import Testing
import Tensors

@Suite struct ElementwiseTests {
    let x: Tensor = {
        var rng = Xoshiro256(seed: 3)
        return Tensor.randomNormal(shape: [7, 13], std: 3, rng: &rng)
    }()

    @Test func unaryOpsMatchTheirDefinitions() {
        let t = x.tanh(), s = x.sigmoid(), r = x.relu(), r2 = x.reluSquared()
        for i in 0..<x.count {
            let v = Double(x.storage[i])
            #expect(abs(Double(t.storage[i]) - Foundation.tanh(v)) < 1e-6)
            #expect(abs(Double(s.storage[i]) - 1 / (1 + Foundation.exp(-v))) < 1e-6)
            #expect(r.storage[i] == max(x.storage[i], 0))
            #expect(abs(Double(r2.storage[i]) - pow(max(v, 0), 2)) < 1e-5 * max(1, v * v))
        }
        // Far tails stay finite.
        #expect(Tensors.sigmoid(-1000) == 0 && Tensors.sigmoid(1000) == 1)
    }

    @Test func binaryOpsMatchTheirDefinitions() {
        var rng = Xoshiro256(seed: 4)
        let y = Tensor.randomNormal(shape: x.shape, rng: &rng)
        var sum = x; sum += y
        var axpy = x; axpy.addScaled(y, -0.5)
        var prod = x; prod.multiply(y)
        var scaled = x; scaled *= 3
        for i in 0..<x.count {
            #expect(sum.storage[i] == x.storage[i] + y.storage[i])
            #expect(abs(axpy.storage[i] - (x.storage[i] - 0.5 * y.storage[i])) < 1e-6)
            #expect(prod.storage[i] == x.storage[i] * y.storage[i])
            #expect(scaled.storage[i] == 3 * x.storage[i])
        }
    }

    @Test func rowOpsMatchTheirDefinitions() {
        let n = x.columns
        let normed = x.rmsnorm()
        let sm = x.softmax()
        var biased = x
        let bias = Tensor(shape: [n], storage: (0..<n).map { Float($0) })
        biased.addRowVector(bias)
        for r in 0..<x.rows {
            let row = x.row(r).map(Double.init)
            let rms = (row.map { $0 * $0 }.reduce(0, +) / Double(n) + Double(Float.ulpOfOne)).squareRoot()
            let m = row.max()!
            let z = row.map { Foundation.exp($0 - m) }.reduce(0, +)
            for j in 0..<n {
                #expect(abs(Double(normed[r, j]) - row[j] / rms) < 1e-5)
                #expect(abs(Double(sm[r, j]) - Foundation.exp(row[j] - m) / z) < 1e-6)
                #expect(biased[r, j] == x[r, j] + Float(j))
            }
            #expect(abs(sm.row(r).reduce(0, +) - 1) < 1e-5)
        }
    }

    @Test func softmaxIsStableForLargeInputs() {
        let t = Tensor(shape: [1, 3], storage: [1000, 1000, -1000]).softmax()
        #expect(t.storage == [0.5, 0.5, 0])
    }

    @Test func rngIsReproducibleAndRestorable() {
        var a = Xoshiro256(seed: 42)
        _ = a.next()
        let saved = a.state
        let expected = (0..<5).map { _ in a.next() }
        var b = Xoshiro256(state: saved)
        #expect((0..<5).map { _ in b.next() } == expected)
        var c = Xoshiro256(seed: 42), d = Xoshiro256(seed: 43)
        #expect(c.next() != d.next())
        // Gaussian samples have roughly unit variance.
        var g = Xoshiro256(seed: 1)
        let s = (0..<20000).map { _ in Double(g.nextGaussian()) }
        let mean = s.reduce(0, +) / Double(s.count)
        let variance = s.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(s.count)
        #expect(abs(mean) < 0.03 && abs(variance - 1) < 0.05)
    }
}
