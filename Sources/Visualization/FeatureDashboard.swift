/// Everything a feature's page (and its Neuronpedia record) shows, assembled after the pass.
public struct FeatureDashboard: Sendable {
    public var index: Int
    /// Tokens it fired on, and tokens seen (BOS left out).
    public var fired: Int
    public var tokens: Int
    public var maxValue: Float
    /// Top activating windows, largest first.
    public var top: [ContextWindow]
    public var intervals: [IntervalSamples]
    /// Histogram of the non-zero activations.
    public var histogram: Histogram
    public var logits: LogitEffects

    /// Fraction of tokens on which the feature fired.
    public var density: Double { tokens > 0 ? Double(fired) / Double(tokens) : 0 }
}

extension FeatureScan {
    /// The dashboard of feature `f` with its logit effects.
    public func dashboard(_ f: Int, logits: LogitEffects) -> FeatureDashboard {
        let a = features[f]
        return FeatureDashboard(index: f, fired: a.fired, tokens: tokens, maxValue: a.maxValue, top: a.top.sorted,
                                intervals: a.intervalSamples, histogram: a.histogram, logits: logits)
    }

    /// The features to show: every one with `all`, otherwise those that fired, by index, at most `limit`.
    public func selectFeatures(limit: Int, all: Bool) -> [Int] {
        all ? Array(features.indices) : Array(features.indices.filter { features[$0].fired > 0 }.prefix(limit))
    }
}
