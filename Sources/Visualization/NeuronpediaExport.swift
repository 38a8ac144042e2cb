import Foundation

// The Neuronpedia upload format, as SAEDashboard's neuronpedia runner writes it: DIR/batch-<i>.json,
// each {model_id, layer, sae_set, features: [...]} with 128 features per batch (the last may hold
// fewer). Per feature: feature_index; pos_str/pos_values and neg_str/neg_values (top boosted and
// suppressed tokens of W_dec·W_U); frac_nonzero (density); freq_hist_data_bar_values/_heights (bin
// centres and counts of the non-zero activations); logits_hist_data_bar_values/_heights; and
// activations: [{tokens, values, bin_min, bin_max, bin_contains, qualifying_token_index}], the top
// windows first (bin_min −1, bin_max the maximum, bin_contains −1) and then the interval samples
// (bin_contains = the interval's share of the firings). BOS tokens are dropped from the windows,
// as Neuronpedia expects, and qualifying_token_index counts without them.

/// Where the features come from, for the batch headers.
public struct NeuronpediaSource: Sendable {
    public var modelID: String
    public var layer: Int
    public var saeSet: String
    public var dataset: String
    public var promptsTotal: Int
    public var tokensInPrompt: Int
    public init(modelID: String, layer: Int, saeSet: String, dataset: String, promptsTotal: Int, tokensInPrompt: Int) {
        self.modelID = modelID; self.layer = layer; self.saeSet = saeSet; self.dataset = dataset
        self.promptsTotal = promptsTotal; self.tokensInPrompt = tokensInPrompt
    }
}

/// One activation record of a feature (a window without its BOS tokens).
struct NeuronpediaActivation: Encodable {
    var tokens: [String]
    var values: [Float]
    var binMin: Float
    var binMax: Float
    var binContains: Double
    var qualifyingTokenIndex: Int

    init(_ w: ContextWindow, binMin: Float, binMax: Float, binContains: Double, bos: Int, texts: TokenTexts) {
        let kept = w.tokens.indices.filter { Int(w.tokens[$0]) != bos }
        tokens = kept.map { texts.raw[Int(w.tokens[$0])] }
        values = kept.map { w.values[$0] }
        self.binMin = binMin; self.binMax = binMax; self.binContains = binContains
        qualifyingTokenIndex = kept.firstIndex(of: w.peak) ?? 0
    }
}

/// One feature object (Floats encode as their shortest round-trip text, so no binary noise).
struct NeuronpediaFeature: Encodable {
    var featureIndex: Int
    var posStr: [String], posValues: [Float]
    var negStr: [String], negValues: [Float]
    var fracNonzero: Double
    var freqHistDataBarValues: [Float], freqHistDataBarHeights: [Int]
    var logitsHistDataBarValues: [Float], logitsHistDataBarHeights: [Int]
    var nPromptsTotal: Int, nTokensInPrompt: Int, dataset: String
    var activations: [NeuronpediaActivation]

    init(_ f: FeatureDashboard, source: NeuronpediaSource, bos: Int, texts: TokenTexts) {
        featureIndex = f.index
        posStr = f.logits.boosted.map { texts.raw[$0.token] }; posValues = f.logits.boosted.map(\.value)
        negStr = f.logits.suppressed.map { texts.raw[$0.token] }; negValues = f.logits.suppressed.map(\.value)
        fracNonzero = f.density
        freqHistDataBarValues = f.histogram.centres; freqHistDataBarHeights = f.histogram.counts
        logitsHistDataBarValues = f.logits.histogram.centres; logitsHistDataBarHeights = f.logits.histogram.counts
        nPromptsTotal = source.promptsTotal; nTokensInPrompt = source.tokensInPrompt; dataset = source.dataset
        activations = f.top.map { NeuronpediaActivation($0, binMin: -1, binMax: f.maxValue, binContains: -1, bos: bos, texts: texts) }
        for interval in f.intervals.reversed() where interval.count > 0 {
            let share = Double(interval.count) / Double(max(f.fired, 1))
            activations += interval.windows.map {
                NeuronpediaActivation($0, binMin: interval.lower, binMax: interval.upper, binContains: share, bos: bos, texts: texts)
            }
        }
    }
}

struct NeuronpediaBatch: Encodable {
    var modelId: String
    var layer: Int
    var saeSet: String
    var features: [NeuronpediaFeature]
}

/// Writes DIR/batch-0.json, batch-1.json, ... of `batchSize` features each (in the given order).
public func writeNeuronpedia(to directory: String, features: [FeatureDashboard], source: NeuronpediaSource, bos: Int,
                             texts: TokenTexts, batchSize: Int = 128) throws {
    let dir = URL(fileURLWithPath: directory)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase          // featureIndex → feature_index, ...
    encoder.outputFormatting = [.sortedKeys]
    for (b, start) in stride(from: 0, to: features.count, by: batchSize).enumerated() {
        let batch = NeuronpediaBatch(modelId: source.modelID, layer: source.layer, saeSet: source.saeSet,
                                     features: features[start ..< min(features.count, start + batchSize)].map {
                                         NeuronpediaFeature($0, source: source, bos: bos, texts: texts)
                                     })
        try encoder.encode(batch).write(to: dir.appendingPathComponent("batch-\(b).json"))
    }
}
