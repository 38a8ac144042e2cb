import Foundation
import Formats
import Nanochat
import SAE
import Tensors
import TestSupport
import Testing
@testable import Visualization

/// The pages `sae-viz` writes, read back as a browser renders them.
@Suite(.serialized) struct DashboardPageTests {
    static let chromiumHint = "headless Chromium is needed for this test: apt-get install chromium (launch/setup.sh installs it)"

    /// Token spans of a context row: (class, activation from the title, background alpha or nil, text).
    static var span: Regex<AnyRegexOutput> { try! Regex(#"<span(?: class="(pk|bos)")? title="([^"]*)"(?: style="background:rgba\(232,135,14,([0-9.]+)\)")?>([^<]*)</span>"#) }

    /// The context rows inside `html` (a fragment), each as its token spans.
    static func contextRows(_ html: String) -> [[(cls: String, value: Double, alpha: Double?, text: String)]] {
        html.components(separatedBy: #"<div class="ctx">"#).dropFirst().map { row in
            row.matches(of: span).map {
                (String($0.output[1].substring ?? ""), Double($0.output[2].substring ?? "") ?? -1,
                 $0.output[3].substring.flatMap { Double($0) }, String($0.output[4].substring ?? ""))
            }
        }
    }

    /// The text between the first `start` and the next `end` after it.
    static func section(_ s: String, from start: String, to end: String) -> String {
        guard let a = s.range(of: start) else { return "" }
        let rest = s[a.upperBound...]
        return String(rest[..<(rest.range(of: end)?.lowerBound ?? rest.endIndex)])
    }

    @Test func featurePageShowsTopContextsColouredByActivation() throws {
        let index = try String(contentsOfFile: VizRun.output.html + "/index.html", encoding: .utf8)
        let first = try #require(index.firstMatch(of: try Regex(#"href="features/(\d+)\.html""#))?.output[1].substring)
        let dom = try #require(try VizRun.renderedDOM("file://\(VizRun.output.html)/features/\(first).html"), "\(Self.chromiumHint)")
        let max = try #require(Double(Self.section(dom, from: #"<b id="max">"#, to: "<")), "no max activation in \(dom.prefix(1500))")
        let rows = Self.contextRows(Self.section(dom, from: #"<div id="top">"#, to: "<h2>"))
        #expect(rows.count >= 2 && rows.count <= 20, "\(rows.count) top context rows")
        for (r, row) in rows.enumerated() {
            let peaks = row.filter { $0.cls == "pk" }
            try #require(peaks.count == 1 && row.count > 1, "row \(r): \(row)")
            // The peak is the row's largest activation; the first row's peak is the feature's maximum.
            #expect(row.allSatisfy { $0.value <= peaks[0].value }, "row \(r): \(row)")
            if r == 0 { #expect(abs(peaks[0].value - max) <= 1e-3 * max) }
            // Background alpha = activation / max; tokens that did not fire have none.
            for t in row {
                if t.value > 0 {
                    let alpha = try #require(t.alpha, "row \(r) token \(t.text) without a colour")
                    #expect(abs(alpha - t.value / max) < 2e-3, "row \(r): alpha \(alpha) for \(t.value) / \(max)")
                } else {
                    #expect(t.alpha == nil && t.value == 0)
                }
            }
        }
        // Rows are in decreasing order of their peaks.
        let peakValues = rows.map { $0.first { $0.cls == "pk" }!.value }
        #expect(peakValues == peakValues.sorted(by: >))
        // Interval samples: each sample's qualifying activation lies in its interval.
        let intervals = dom.components(separatedBy: #"<section class="interval""#).dropFirst()
        #expect(!intervals.isEmpty)
        for section in intervals {
            let lower = try #require(Double(Self.section(section, from: #"data-lower=""#, to: "\"")))
            let upper = try #require(Double(Self.section(section, from: #"data-upper=""#, to: "\"")))
            for row in Self.contextRows(section) {
                let peak = try #require(row.first { $0.cls == "pk" })
                #expect(peak.value >= lower * (1 - 1e-3) && peak.value < upper * (1 + 1e-3), "\(peak.value) outside [\(lower), \(upper))")
            }
        }
        #expect(dom.contains("<svg") && dom.contains(#"<table id="boosted">"#))
    }

    @Test func indexListsTheFeaturesAndSortsByMaxActivation() throws {
        let html = VizRun.output.html
        let index = try String(contentsOfFile: html + "/index.html", encoding: .utf8)
        let links = index.matches(of: try Regex(#"href="features/(\d+)\.html""#)).compactMap { Int($0.output[1].substring ?? "") }
        #expect(links.count == VizRun.features && links == links.sorted())
        for f in links { #expect(FileManager.default.fileExists(atPath: "\(html)/features/\(f).html")) }
        // The inline script sorts the table when the page is opened with #sort=max.
        let dom = try #require(try VizRun.renderedDOM("file://\(html)/index.html#sort=max"), "\(Self.chromiumHint)")
        let maxima = dom.matches(of: try Regex(#"<tr><td><a href="features/\d+\.html">\d+</a></td><td data-v="[^"]*">[^<]*</td><td data-v="([^"]*)">"#))
            .compactMap { Double($0.output[1].substring ?? "") }
        #expect(maxima.count == VizRun.features)
        #expect(maxima == maxima.sorted(by: >) && maxima.first! > maxima.last!, "not sorted by max: \(maxima.prefix(8))")
    }

    @Test func boostedTokensAreDecoderRowTimesUnembedding() throws {
        let batch = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: VizRun.output.neuronpedia + "/batch-0.json"))) as? [String: Any]
        let feature = try #require((batch?["features"] as? [[String: Any]])?.first)
        let f = try #require(feature["feature_index"] as? Int)
        // Direct computation in Double: W_dec[f] · W_U[v] for every token v < V.
        let sae = try SAE.loadSAELens(from: D4Fixture.topKSAE)
        let model = try NanochatModel(location: try ModelLocation.resolve(model: D4Fixture.model))
        let W_U = try #require(model.parameter("lm_head.weight")), d = sae.config.dIn, V = model.config.vocabSize
        let row = sae.params[sae.layout.W_dec.lowerBound + f * d ..< sae.layout.W_dec.lowerBound + (f + 1) * d].map(Double.init)
        let logits = (0..<V).map { v in (0..<d).reduce(0.0) { $0 + row[$1] * Double(W_U.storage[v * d + $1]) } }
        let order = logits.indices.sorted { logits[$0] > logits[$1] }
        let tok = try Tokenizer(path: D4Fixture.path + "/tokenizer/tokenizer.pkl")
        let values = try #require(feature["pos_values"] as? [Double]), strings = try #require(feature["pos_str"] as? [String])
        #expect(values.count == 10 && strings == order.prefix(10).map { tok.tokenText($0) }, "\(strings)")
        for (v, i) in zip(values, order.prefix(10)) { #expect(abs(v - logits[i]) <= 1e-4 * max(1, abs(logits[i]))) }
        let negative = try #require(feature["neg_values"] as? [Double])
        #expect(abs(negative[0] - logits[order.last!]) <= 1e-4 * max(1, abs(logits[order.last!])))
        // The page's boosted table lists the same tokens, escaped.
        let page = try String(contentsOfFile: "\(VizRun.output.html)/features/\(f).html", encoding: .utf8)
        let table = Self.section(page, from: #"<table id="boosted">"#, to: "</table>")
        let shown = table.matches(of: try Regex("<code>([^<]*)</code>")).map { String($0.output[1].substring ?? "") }
        #expect(shown == strings.map { htmlEscape(visibleToken($0)) })
    }

    @Test func tokenTextIsEscaped() {
        #expect(htmlEscape(#"<b>"x" & 'y'"#) == "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;")
        #expect(visibleToken("a\nb\tc\u{1}") == "a↵b⇥c\u{FFFD}")
        let w = ContextWindow(tokens: [1, 2], values: [0, 2], peak: 1)
        let html = featurePageHTML(
            FeatureDashboard(index: 3, fired: 1, tokens: 10, maxValue: 2, top: [w], intervals: [],
                             histogram: Histogram(lower: 0, width: 1, counts: [1, 1]),
                             logits: LogitEffects(boosted: [(1, 0.5)], suppressed: [(2, -0.5)], histogram: Histogram(of: [0.5, -0.5], bins: 2))),
            info: DashboardInfo(hook: "blocks.0.hook_resid_post", saePath: "<sae>", dSAE: 4, tokens: 10, firedFeatures: 1), bos: 0,
            texts: TokenTexts(count: 3) { $0 == 1 ? "<script>alert(1)</script>" : " & more" })
        #expect(!html.contains("<script>alert") && html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && html.contains("&amp; more"))
    }
}
