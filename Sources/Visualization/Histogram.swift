/// Counts in equal-width bins: bin i covers [lower + i·width, lower + (i+1)·width).
public struct Histogram: Sendable, Equatable {
    public var lower: Float
    public var width: Float
    public var counts: [Int]

    public init(lower: Float, width: Float, counts: [Int]) {
        self.lower = lower; self.width = width; self.counts = counts
    }

    /// Histogram of `values` in `bins` equal bins from their minimum to their maximum.
    public init(of values: some Collection<Float>, bins: Int) {
        precondition(bins >= 1)
        let lo = values.min() ?? 0, hi = values.max() ?? 0
        let width = hi > lo ? (hi - lo) / Float(bins) : 1
        var counts = [Int](repeating: 0, count: bins)
        for v in values { counts[min(bins - 1, max(0, Int((v - lo) / width)))] += 1 }
        self.init(lower: lo, width: width, counts: counts)
    }

    /// Centre of each bin.
    public var centres: [Float] { counts.indices.map { lower + (Float($0) + 0.5) * width } }
    /// The upper end of the last bin.
    public var upper: Float { lower + Float(counts.count) * width }
}
