import Foundation
import Formats

// Plots of a training run: OUT/metrics.jsonl (one JSON object per logged step and hook, written by
// sae-train) → OUT/loss.svg, fvu.svg, l0.svg, dead_fraction.svg, each over tokens trained, one line
// per hook with one point per logged step.

/// The metrics that get a plot, with their axis labels.
public let plottedMetrics: [(key: String, label: String)] = [
    ("loss", "loss"), ("fvu", "FVU (fraction of variance unexplained)"), ("l0", "L0 (active latents per token)"),
    ("dead_fraction", "dead fraction"),
]

/// One line of metrics.jsonl: its hook (empty if the line has none), tokens and plotted values.
public struct MetricsRecord: Sendable, Equatable {
    public var hook: String
    public var tokens: Double
    public var values: [String: Double]
}

/// Reads metrics.jsonl, checking that every line is an object with numeric `tokens` and
/// plotted metrics; an error names the file, line and field.
public func readMetrics(path: String) throws -> [MetricsRecord] {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw FormatError.io(file: path, detail: "cannot read it (expected a run directory with metrics.jsonl)")
    }
    var records: [MetricsRecord] = []
    for (n, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated()
    where !line.trimmingCharacters(in: .whitespaces).isEmpty {
        let place = "\(path) line \(n + 1)"
        guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
            throw FormatError.invalid(file: place, detail: "expected one JSON object")
        }
        func number(_ key: String) throws -> Double {
            guard let v = object[key] as? NSNumber, v.doubleValue.isFinite else {
                throw FormatError.invalid(file: place, detail: "field \(key): expected a finite number")
            }
            return v.doubleValue
        }
        var values: [String: Double] = [:]
        for (key, _) in plottedMetrics { values[key] = try number(key) }
        records.append(MetricsRecord(hook: object["hook"] as? String ?? "", tokens: try number("tokens"), values: values))
    }
    guard !records.isEmpty else { throw FormatError.invalid(file: path, detail: "no metrics lines") }
    return records
}

/// Writes the four plots into `run` (the directory holding metrics.jsonl); returns their paths.
@discardableResult
public func writeTrainingPlots(run: String) throws -> [String] {
    let dir = URL(fileURLWithPath: run)
    let records = try readMetrics(path: dir.appendingPathComponent("metrics.jsonl").path)
    var hooks: [String] = []
    for r in records where !hooks.contains(r.hook) { hooks.append(r.hook) }
    var written: [String] = []
    for (key, label) in plottedMetrics {
        let series = hooks.map { hook in
            PlotSeries(name: hook.isEmpty ? key : hook,
                       points: records.filter { $0.hook == hook }.map { (x: $0.tokens, y: $0.values[key]!) })
        }
        let file = dir.appendingPathComponent("\(key).svg")
        try Data(lineChartSVG(series, title: label, xLabel: "tokens", yLabel: key).utf8).write(to: file)
        written.append(file.path)
    }
    return written
}
