import Foundation
import TestSupport
import Testing

/// `sae-viz --run OUT`: the four SVG plots of a training run's metrics.jsonl.
@Suite struct TrainingPlotsTests {
    static let metrics = ["loss", "fvu", "l0", "dead_fraction"]

    /// The points of every polyline in an SVG file, per polyline.
    static func polylines(_ path: String) throws -> [[(Double, Double)]] {
        let svg = try String(contentsOfFile: path, encoding: .utf8)
        return svg.matches(of: try Regex(#"<polyline [^>]*points="([^"]*)""#)).map { m in
            String(m.output[1].substring ?? "").split(separator: " ").map { pair in
                let xy = pair.split(separator: ",").compactMap { Double($0) }
                return (xy.first ?? .nan, xy.last ?? .nan)
            }
        }
    }

    @Test func plotsOfARealRunHaveOnePointPerMetricsLine() throws {
        // A copy of the trained run's metrics, so the shared run directory is left as it is.
        let dir = try TestPaths.temporaryDirectory("plots").path
        try FileManager.default.copyItem(atPath: D4Fixture.topKRun + "/metrics.jsonl", toPath: dir + "/metrics.jsonl")
        let lines = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let r = try runShell("exec \(D4Fixture.exe("sae-viz")) --run \(shellQuote(dir))")
        #expect(r.status == 0, "\(r.stderr)")
        // sae-train wrote the same plots into the run itself at its end.
        for key in Self.metrics {
            #expect(try Self.polylines("\(D4Fixture.topKRun)/\(key).svg").map(\.count) == [lines.count], "sae-train's \(key).svg")
        }
        for key in Self.metrics {
            let lines3 = try Self.polylines("\(dir)/\(key).svg")
            #expect(lines3.count == 1 && lines3[0].count == lines.count, "\(key).svg: \(lines3.map(\.count)) points for \(lines.count) lines")
            // Tokens grow along the x axis, and the plot has tick labels.
            #expect(lines3[0].map(\.0) == lines3[0].map(\.0).sorted())
            let svg = try String(contentsOfFile: "\(dir)/\(key).svg", encoding: .utf8)
            #expect(svg.contains(#"class="xticks""#) && svg.contains(">tokens</text>"))
        }
    }

    @Test func severalHooksGiveOneLineEachAndBadLinesExitTwo() throws {
        let dir = try TestPaths.temporaryDirectory("plots2").path
        var text = ""
        for step in 1...5 {
            for hook in ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"] {
                text += #"{"step": \#(step), "tokens": \#(step * 100), "hook": "\#(hook)", "loss": \#(10.0 / Double(step)), "fvu": 0.5, "l0": 8, "dead_fraction": 0, "lr": 0.001, "tokens_per_s": 1}"# + "\n"
            }
        }
        try text.write(toFile: dir + "/metrics.jsonl", atomically: true, encoding: .utf8)
        let r = try runShell("exec \(D4Fixture.exe("sae-viz")) --run \(shellQuote(dir))")
        #expect(r.status == 0, "\(r.stderr)")
        let loss = try Self.polylines(dir + "/loss.svg")
        #expect(loss.map(\.count) == [5, 5])
        // Loss falls, so y in pixels grows (the y axis points down in SVG).
        #expect(loss[0].map(\.1) == loss[0].map(\.1).sorted())

        try (text + #"{"step": 6, "tokens": 600, "loss": 1}"# + "\n").write(toFile: dir + "/metrics.jsonl", atomically: true, encoding: .utf8)
        let bad = try runShell("exec \(D4Fixture.exe("sae-viz")) --run \(shellQuote(dir))")
        #expect(bad.status == 2 && bad.stderr.split(separator: "\n").count == 1, "\(bad.stderr)")
        #expect(bad.stderr.contains("metrics.jsonl line 11") && bad.stderr.contains("fvu"), "\(bad.stderr)")
        let missing = try runShell("exec \(D4Fixture.exe("sae-viz")) --run /nonexistent/run")
        #expect(missing.status == 2 && missing.stderr.contains("/nonexistent/run/metrics.jsonl"), "\(missing.stderr)")
    }
}
