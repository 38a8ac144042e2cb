import Tensors

/// What one pass over the data keeps for one feature, in memory that does not grow with the
/// number of tokens: how often it fired and its largest value, a histogram of its (non-zero)
/// activations, a reservoir of sample windows per activation interval, and its top windows
/// (the largest activations that are the maximum of their own window).
///
/// The histogram and the intervals need the maximum activation, which is known only at the end.
/// So both live on a grid over [0, M) with M = 2^e the smallest power of two above every value
/// seen: when a value reaches M, M doubles and neighbouring bins merge in pairs (bin i ← bins 2i
/// and 2i+1), counts by addition and reservoirs by `Reservoir.merged`, which keeps each a uniform
/// sample of its interval. At the end max ∈ [M/2, M), so at least half of the grid is in use.
public struct FeatureAccumulator: Sendable {
    /// Tokens (BOS left out) on which the feature was > 0.
    public private(set) var fired = 0
    public private(set) var maxValue: Float = 0
    /// log2 of the grid's upper end M; nil before the first firing.
    public private(set) var exponent: Int? = nil
    /// Histogram bins over [0, M).
    public private(set) var bins: [Int]
    /// Sample windows per interval of [0, M), `intervalBins` of them.
    public private(set) var intervals: [Reservoir<ContextWindow>]
    public private(set) var top: TopWindows
    var rng: Xoshiro256

    /// Bins of the histogram grid and of the interval grid (even, so that doubling merges pairs).
    public static let histogramBins = 64, intervalBins = 20

    public init(topCount: Int, samplesPerInterval: Int, seed: UInt64) {
        bins = [Int](repeating: 0, count: Self.histogramBins)
        intervals = Array(repeating: Reservoir(capacity: samplesPerInterval), count: Self.intervalBins)
        top = TopWindows(capacity: topCount)
        rng = Xoshiro256(seed: seed)
    }

    /// M = 2^exponent (0 before the first firing).
    public var gridTop: Float { exponent.map { Float(sign: .plus, exponent: $0, significand: 1) } ?? 0 }

    /// Records one firing with activation `value` > 0; `window` builds its context window, called
    /// at most once and only when a sample or the top list keeps it.
    @inline(__always)
    public mutating func add(_ value: Float, window: () -> ContextWindow) {
        fired += 1
        maxValue = max(maxValue, value)
        if exponent == nil { exponent = value.exponent + 1 }     // 2^(⌊log2 v⌋+1) > v
        while value >= gridTop { double() }
        let m = gridTop
        bins[min(bins.count - 1, Int(value / m * Float(bins.count)))] += 1
        let i = min(intervals.count - 1, Int(value / m * Float(intervals.count)))
        var built: ContextWindow? = nil
        if let slot = intervals[i].admit(rng: &rng) {
            built = window()
            intervals[i].place(built!, at: slot)
        }
        // The top list takes only windows whose qualifying token is their maximum, so a passage
        // where the feature stays high shows once, at its peak, not once per token.
        if top.accepts(value) {
            let w = built ?? window()
            if w.values.allSatisfy({ $0 <= value }) { top.insert(w) }
        }
    }

    /// M ← 2M: bin i takes bins 2i and 2i+1, the upper half starts empty.
    mutating func double() {
        exponent! += 1
        let h = bins.count / 2
        bins = (0..<h).map { bins[2 * $0] + bins[2 * $0 + 1] } + Array(repeating: 0, count: h)
        let r = intervals.count / 2, capacity = intervals[0].capacity
        var merged: [Reservoir<ContextWindow>] = []
        for i in 0..<r { merged.append(Reservoir.merged(intervals[2 * i], intervals[2 * i + 1], rng: &rng)) }
        intervals = merged + Array(repeating: Reservoir(capacity: capacity), count: r)
    }

    /// The histogram of activations up to the bin holding the maximum (width M/64).
    public var histogram: Histogram {
        guard fired > 0 else { return Histogram(lower: 0, width: 0, counts: []) }
        let width = gridTop / Float(bins.count)
        return Histogram(lower: 0, width: width, counts: Array(bins.prefix(min(bins.count, Int(maxValue / width) + 1))))
    }

    /// Interval samples for display: pairs of grid intervals merged, so intervals of width M/10
    /// from 0 up to the one holding the maximum (6 to 10 of them, since max ∈ [M/2, M)).
    public var intervalSamples: [IntervalSamples] {
        guard fired > 0 else { return [] }
        var rng = self.rng
        let width = gridTop / Float(intervals.count / 2)
        let used = min(intervals.count / 2, Int(maxValue / width) + 1)
        return (0..<used).map { i in
            let r = Reservoir.merged(intervals[2 * i], intervals[2 * i + 1], rng: &rng)
            return IntervalSamples(lower: Float(i) * width, upper: Float(i + 1) * width, count: r.seen,
                                   windows: r.items.sorted { $0.value > $1.value })
        }
    }
}

/// Sample windows whose qualifying activation lies in [lower, upper), `count` firings in all.
public struct IntervalSamples: Sendable, Equatable {
    public var lower: Float
    public var upper: Float
    public var count: Int
    public var windows: [ContextWindow]
}
