import SAE
import Tensors
import Testing
@testable import Visualization

/// The one-pass statistics against direct computations on the same values.
@Suite struct FeatureAccumulatorTests {
    @Test func mergedReservoirsAreUniformOverBothStreams() {
        // Streams a = 0..<100 and b = 100..<400, 10 samples each, merged: a's share of a uniform
        // sample of the 400 items is 100/400, and within a every item is equally likely.
        var fromA = 0, firstHalfOfA = 0, total = 0
        for trial in 0..<4000 {
            var rng = Xoshiro256(seed: UInt64(trial))
            var a = Reservoir<Int>(capacity: 10), b = Reservoir<Int>(capacity: 10)
            for i in 0..<100 { a.offer(i, rng: &rng) }
            for i in 100..<400 { b.offer(i, rng: &rng) }
            let m = Reservoir.merged(a, b, rng: &rng)
            #expect(m.seen == 400 && m.items.count == 10 && Set(m.items).count == 10)
            fromA += m.items.filter { $0 < 100 }.count
            firstHalfOfA += m.items.filter { $0 < 50 }.count
            total += m.items.count
        }
        #expect(abs(Double(fromA) / Double(total) - 0.25) < 0.01, "share of a: \(Double(fromA) / Double(total))")
        #expect(abs(Double(firstHalfOfA) / Double(fromA) - 0.5) < 0.03, "first half of a: \(Double(firstHalfOfA) / Double(fromA))")
        // Streams shorter than the capacity are kept whole.
        var rng = Xoshiro256(seed: 1)
        var a = Reservoir<Int>(capacity: 10), b = Reservoir<Int>(capacity: 10)
        for i in 0..<3 { a.offer(i, rng: &rng) }
        for i in 3..<7 { b.offer(i, rng: &rng) }
        #expect(Reservoir.merged(a, b, rng: &rng).items.sorted() == Array(0..<7))
    }

    @Test func histogramAndIntervalsEqualDirectCountsAfterTheGridGrows() throws {
        var rng = Xoshiro256(seed: 7)
        // Values whose scale grows over the stream, so the grid doubles many times.
        let values = (0..<5000).map { i in (rng.nextFloat() + 1e-3) * Float(0.01 + Double(i) / 400) }
        var acc = FeatureAccumulator(topCount: 20, samplesPerInterval: 5, seed: 3)
        for v in values { acc.add(v) { ContextWindow(tokens: [0], values: [v], peak: 0) } }
        let maxValue = try #require(values.max())
        #expect(acc.fired == values.count && acc.maxValue == maxValue)
        let M = Float(sign: .plus, exponent: maxValue.exponent + 1, significand: 1)
        #expect(acc.gridTop == M)
        // Histogram: bins of width M/64 up to the one holding the maximum.
        let h = acc.histogram
        var direct = [Int](repeating: 0, count: Int(maxValue / M * 64) + 1)
        for v in values { direct[Int(v / M * 64)] += 1 }
        #expect(h.width == M / 64 && h.counts == direct)
        // Intervals of width M/10: counts exact, samples inside their interval, up to 5 each.
        let intervals = acc.intervalSamples
        var perInterval = [Int](repeating: 0, count: intervals.count)
        for v in values { perInterval[Int(v / M * 20) / 2] += 1 }
        #expect(intervals.map(\.count) == perInterval)
        for s in intervals {
            #expect(s.windows.count == min(5, s.count))
            #expect(s.windows.allSatisfy { $0.value >= s.lower && $0.value < s.upper })
        }
        // The top list is the 20 largest values (single-token windows are their own peak).
        #expect(acc.top.sorted.map(\.value) == Array(values.sorted(by: >).prefix(20)))
    }

    @Test func topListKeepsOnlyWindowPeaks() {
        var acc = FeatureAccumulator(topCount: 2, samplesPerInterval: 1, seed: 0)
        acc.add(5) { ContextWindow(tokens: [1, 2], values: [5, 6], peak: 0) }     // a neighbour is higher
        acc.add(6) { ContextWindow(tokens: [1, 2], values: [5, 6], peak: 1) }
        acc.add(1) { ContextWindow(tokens: [3], values: [1], peak: 0) }
        acc.add(3) { ContextWindow(tokens: [4], values: [3], peak: 0) }
        #expect(acc.top.sorted.map(\.value) == [6, 3] && acc.fired == 4)
    }

    @Test func scanLeavesBOSOutAndClipsWindowsToTheRow() {
        var settings = ScanSettings()
        settings.window = WindowShape(before: 2, after: 1)
        var scan = FeatureScan(features: 2, settings: settings)
        let bos = 9
        // Two rows of 4 tokens, BOS first; feature 0 fires everywhere (BOS too), feature 1 at one token.
        let rows = [[bos, 1, 2, 3], [bos, 4, 5, 6]]
        var f = Tensor(shape: [8, 2])
        for p in 0..<8 { f.storage[2 * p] = Float(p + 1) }
        f.storage[2 * 5 + 1] = 2.5
        scan.add(rows: rows, activations: SparseFeatures(dense: f), bos: bos)
        #expect(scan.tokens == 6 && scan.rows == 2)
        #expect(scan.features[0].fired == 6 && scan.features[0].maxValue == 8)
        #expect(scan.features[1].fired == 1)
        let w = scan.features[1].top.sorted[0]
        // Position 5 is row 1's second token: the window starts at the row's BOS, whose value is 0.
        #expect(w.tokens == [Int32(bos), 4, 5] && w.values == [0, 2.5, 0] && w.peak == 1)
        let top0 = scan.features[0].top.sorted
        #expect(top0.first?.tokens == [4, 5, 6] && top0.first?.value == 8)
    }
}
