import Foundation
import TestSupport
import Testing

/// `sae-viz --neuronpedia DIR` against the schema in neuronpedia-batch.schema.json (written from
/// SAEDashboard's field list), with a small checker of the JSON Schema subset it uses.
@Suite struct NeuronpediaExportTests {
    static let schemaPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("neuronpedia-batch.schema.json")

    /// Problems of `value` against `schema` (type, required, properties, items, minimum, maximum,
    /// x-equal-lengths), each with the JSON path where it is.
    static func violations(_ value: Any, _ schema: [String: Any], at path: String = "$") -> [String] {
        var out: [String] = []
        if let expected = schema["type"] as? String {
            let ok: Bool
            switch expected {
            case "object": ok = value is [String: Any]
            case "array": ok = value is [Any]
            case "string": ok = value is String
            case "integer": ok = (value as? NSNumber).map { $0.doubleValue == $0.doubleValue.rounded() } ?? false
            case "number": ok = value is NSNumber
            default: ok = false
            }
            if !ok { return ["\(path): expected \(expected), got \(type(of: value)) \(value)"] }
        }
        if let n = (value as? NSNumber)?.doubleValue {
            if let lo = (schema["minimum"] as? NSNumber)?.doubleValue, n < lo { out.append("\(path): \(n) < minimum \(lo)") }
            if let hi = (schema["maximum"] as? NSNumber)?.doubleValue, n > hi { out.append("\(path): \(n) > maximum \(hi)") }
        }
        if let object = value as? [String: Any] {
            for key in schema["required"] as? [String] ?? [] where object[key] == nil { out.append("\(path): missing \(key)") }
            for (key, sub) in schema["properties"] as? [String: [String: Any]] ?? [:] {
                if let v = object[key] { out += violations(v, sub, at: "\(path).\(key)") }
            }
            for pair in schema["x-equal-lengths"] as? [[String]] ?? [] {
                let counts = pair.map { (object[$0] as? [Any])?.count ?? -1 }
                if Set(counts).count != 1 { out.append("\(path): lengths of \(pair) differ: \(counts)") }
            }
        }
        if let array = value as? [Any], let items = schema["items"] as? [String: Any] {
            for (i, v) in array.enumerated() { out += violations(v, items, at: "\(path)[\(i)]") }
        }
        return out
    }

    @Test func checkerRejectsWhatTheSchemaForbids() throws {
        let schema = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: Self.schemaPath)) as? [String: Any])
        // Built here, then read back through JSONSerialization so the values have the types a file gives.
        let literal: [String: Any] = ["model_id": "m", "layer": 1, "sae_set": "s", "features": [[
            "feature_index": 0, "neg_str": ["a"], "neg_values": [-1.5], "pos_str": ["b"], "pos_values": [2.5], "frac_nonzero": 0.5,
            "freq_hist_data_bar_values": [0.5], "freq_hist_data_bar_heights": [3], "logits_hist_data_bar_values": [0.1],
            "logits_hist_data_bar_heights": [7], "activations": [["tokens": ["x"], "values": [1.0], "bin_min": -1, "bin_max": 1,
                                                                   "bin_contains": -1, "qualifying_token_index": 0]]]]]
        let good = try #require(try JSONSerialization.jsonObject(with: JSONSerialization.data(withJSONObject: literal)) as? [String: Any])
        #expect(Self.violations(good, schema).isEmpty, "\(Self.violations(good, schema))")
        var bad = good
        var feature = (good["features"] as! [[String: Any]])[0]
        feature["pos_values"] = [2.5, 1.0]                     // lengths differ from pos_str
        feature["frac_nonzero"] = "0.5"                        // a string
        feature.removeValue(forKey: "activations")
        bad["features"] = [feature]
        let found = Self.violations(try JSONSerialization.jsonObject(with: JSONSerialization.data(withJSONObject: bad)), schema)
        #expect(found.count == 3, "\(found)")
    }

    @Test func batchesMatchTheSchema() throws {
        let schema = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: Self.schemaPath)) as? [String: Any])
        let dir = VizRun.output.neuronpedia
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        let expected = (VizRun.features + 127) / 128
        #expect(files == (0..<expected).map { "batch-\($0).json" }.sorted(), "\(files)")
        var indices: [Int] = []
        for b in 0..<expected {
            let batch = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/batch-\(b).json")))
            let problems = Self.violations(batch, schema)
            #expect(problems.isEmpty, "batch-\(b).json: \(problems.prefix(5))")
            let features = (batch as? [String: Any])?["features"] as? [[String: Any]] ?? []
            // 128 per batch except the last.
            #expect(features.count == (b < expected - 1 ? 128 : VizRun.features - 128 * (expected - 1)))
            indices += features.compactMap { $0["feature_index"] as? Int }
            for f in features {
                let activations = f["activations"] as? [[String: Any]] ?? []
                #expect(!activations.isEmpty, "feature \(f["feature_index"]!) has no activations")
                for a in activations {
                    let tokens = a["tokens"] as? [String] ?? [], q = a["qualifying_token_index"] as? Int ?? -1
                    let values = a["values"] as? [Double] ?? []
                    #expect(q >= 0 && q < tokens.count && !tokens.contains("<|bos|>"), "\(a)")
                    // The qualifying token is the one the bin is about: within the bin, or the maximum of a top window.
                    if let lo = a["bin_min"] as? Double, let hi = a["bin_max"] as? Double, q < values.count {
                        if lo >= 0 { #expect(values[q] >= lo * (1 - 1e-5) && values[q] <= hi * (1 + 1e-5), "\(values[q]) outside [\(lo), \(hi)]") }
                        else { #expect(values.allSatisfy { $0 <= values[q] }) }
                    }
                }
                let density = f["frac_nonzero"] as? Double ?? -1, heights = f["freq_hist_data_bar_heights"] as? [Int] ?? []
                #expect(density > 0 && heights.reduce(0, +) > 0)
            }
        }
        #expect(indices == indices.sorted() && Set(indices).count == VizRun.features)
    }

    @Test func sameDataAndSeedGiveIdenticalFiles() throws {
        // Features are split over threads and sampled with per-feature generators, so the output
        // depends on the data and the seed only.
        var outputs: [[Data]] = []
        for run in 0..<2 {
            let dir = try TestPaths.temporaryDirectory("viz-seed\(run)").path
            let r = try runShell("exec \(D4Fixture.exe("sae-viz")) --sae \(shellQuote(D4Fixture.topKSAE)) --model \(shellQuote(D4Fixture.model)) --data \(shellQuote(D4Fixture.data)) --tokens 1024 --context 128 --all --seed 5 --out \(shellQuote(dir + "/html")) --neuronpedia \(shellQuote(dir + "/np"))")
            #expect(r.status == 0, "\(r.stderr)")
            outputs.append(try (0..<8).map { try Data(contentsOf: URL(fileURLWithPath: "\(dir)/np/batch-\($0).json")) })
        }
        #expect(outputs[0] == outputs[1])
    }
}
