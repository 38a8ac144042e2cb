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

/// A float as a JSON number with 6 significant digits (Float's precision, without binary noise).
func jsonNumber(_ v: Float) -> Double { Double(String(format: "%.6g", v)) ?? 0 }

/// One activation record: the window without its BOS tokens.
func neuronpediaActivation(_ w: ContextWindow, binMin: Float, binMax: Float, binContains: Double, bos: Int,
                           tokenText: (Int) -> String) -> [String: Any] {
    let kept = w.tokens.indices.filter { Int(w.tokens[$0]) != bos }
    return ["tokens": kept.map { tokenText(Int(w.tokens[$0])) }, "values": kept.map { jsonNumber(w.values[$0]) },
            "bin_min": jsonNumber(binMin), "bin_max": jsonNumber(binMax), "bin_contains": binContains,
            "qualifying_token_index": kept.firstIndex(of: w.peak) ?? 0]
}

/// One feature object.
public func neuronpediaFeature(_ f: FeatureDashboard, source: NeuronpediaSource, bos: Int,
                               tokenText: (Int) -> String) -> [String: Any] {
    var activations = f.top.map {
        neuronpediaActivation($0, binMin: -1, binMax: f.maxValue, binContains: -1, bos: bos, tokenText: tokenText)
    }
    for interval in f.intervals.reversed() where interval.count > 0 {
        let share = Double(interval.count) / Double(max(f.fired, 1))
        activations += interval.windows.map {
            neuronpediaActivation($0, binMin: interval.lower, binMax: interval.upper, binContains: share, bos: bos, tokenText: tokenText)
        }
    }
    return [
        "feature_index": f.index,
        "pos_str": f.logits.boosted.map { tokenText($0.token) }, "pos_values": f.logits.boosted.map { jsonNumber($0.value) },
        "neg_str": f.logits.suppressed.map { tokenText($0.token) }, "neg_values": f.logits.suppressed.map { jsonNumber($0.value) },
        "frac_nonzero": f.density,
        "freq_hist_data_bar_values": f.histogram.centres.map(jsonNumber), "freq_hist_data_bar_heights": f.histogram.counts,
        "logits_hist_data_bar_values": f.logits.histogram.centres.map(jsonNumber),
        "logits_hist_data_bar_heights": f.logits.histogram.counts,
        "n_prompts_total": source.promptsTotal, "n_tokens_in_prompt": source.tokensInPrompt, "dataset": source.dataset,
        "activations": activations,
    ]
}

/// Writes DIR/batch-0.json, batch-1.json, ... of `batchSize` features each (in the given order).
public func writeNeuronpedia(to directory: String, features: [FeatureDashboard], source: NeuronpediaSource, bos: Int,
                             tokenText: (Int) -> String, batchSize: Int = 128) throws {
    let dir = URL(fileURLWithPath: directory)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    for (b, start) in stride(from: 0, to: features.count, by: batchSize).enumerated() {
        let batch: [String: Any] = [
            "model_id": source.modelID, "layer": source.layer, "sae_set": source.saeSet,
            "features": features[start ..< min(features.count, start + batchSize)].map {
                neuronpediaFeature($0, source: source, bos: bos, tokenText: tokenText)
            },
        ]
        try JSONSerialization.data(withJSONObject: batch, options: [.sortedKeys])
            .write(to: dir.appendingPathComponent("batch-\(b).json"))
    }
}
