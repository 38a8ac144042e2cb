import Distributed
import Foundation
import Testing

/// PairwiseSum adds its items in the tree of adjacent pairs, whatever order of carries that takes.
@Suite struct PairwiseSumTests {
    /// Values whose sums round differently in different orders.
    static func item(_ i: Int, _ n: Int) -> [Float] {
        (0..<n).map { j in Float(sin(Double(i * 31 + j) * 1.7)) * pow(10, Float((i + j) % 7) - 3) }
    }

    static func tree(_ items: ArraySlice<[Float]>) -> [Float] {
        if items.count == 1 { return items.first! }
        let mid = items.startIndex + items.count / 2
        return zip(tree(items[..<mid]), tree(items[mid...])).map { $0 + $1 }
    }

    @Test(arguments: [1, 2, 4, 8, 32])
    func sumsInTheTreeOfAdjacentPairs(items: Int) {
        let n = 37
        var sum = PairwiseSum(items: items, count: n)
        for round in 0..<2 {                    // a second sum reuses the buffers
            let all = (0..<items).map { Self.item($0 + 100 * round, n) }
            var x: [Float] = []
            for i in 0..<items { x = all[i]; sum.add(&x) }
            #expect(x == Self.tree(all[...]), "items \(items), round \(round)")
        }
        if items >= 4 {
            // The tree's bits are not those of a left-to-right sum (so the test can tell them apart).
            let all = (0..<items).map { Self.item($0, n) }
            let serial = all.dropFirst().reduce(all[0]) { zip($0, $1).map { $0 + $1 } }
            #expect(serial != Self.tree(all[...]))
        }
    }
}
