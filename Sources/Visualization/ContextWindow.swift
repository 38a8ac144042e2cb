/// A window of tokens around one position of a row (the "qualifying" token, e.g. a feature's peak),
/// with one feature's activation at every token of the window. BOS tokens keep activation 0: they
/// are left out of every statistic.
public struct ContextWindow: Sendable, Equatable {
    /// Token ids of the window, in order.
    public var tokens: [Int32]
    /// The feature's activation at each token.
    public var values: [Float]
    /// Index in the window of the qualifying token.
    public var peak: Int

    public init(tokens: [Int32], values: [Float], peak: Int) {
        precondition(tokens.count == values.count && values.indices.contains(peak), "window of \(tokens.count) tokens, peak \(peak)")
        self.tokens = tokens; self.values = values; self.peak = peak
    }

    /// The activation at the qualifying token.
    public var value: Float { values[peak] }
}

/// How far a window reaches around its qualifying token.
public struct WindowShape: Sendable, Equatable {
    public var before: Int
    public var after: Int
    public init(before: Int = 12, after: Int = 4) { self.before = before; self.after = after }
}
