import Foundation

// The static dashboard: HTMLDIR/index.html (a table of the features, sortable by a few lines of
// inline JS) and HTMLDIR/features/<f>.html per feature. Plain HTML, CSS and inline SVG: it works
// from file:// with no network. Every token's text is HTML-escaped; a token's background alpha is
// its activation over the feature's maximum, and its value shows on hover (title attribute).

/// What the pages say about where the numbers come from.
public struct DashboardInfo: Sendable {
    public var hook: String
    public var saePath: String
    public var dSAE: Int
    /// Tokens read (BOS left out) and features that fired on at least one of them.
    public var tokens: Int
    public var firedFeatures: Int
    public init(hook: String, saePath: String, dSAE: Int, tokens: Int, firedFeatures: Int) {
        self.hook = hook; self.saePath = saePath; self.dSAE = dSAE; self.tokens = tokens; self.firedFeatures = firedFeatures
    }
}

let pageStyle = """
    body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 74em; color: #222; padding: 0 1em; }
    h1 { margin-bottom: .2em; } .meta { color: #555; }
    .ctx { font: 13px/1.9 ui-monospace, monospace; border-bottom: 1px solid #eee; white-space: nowrap; overflow: hidden; }
    .ctx .v { display: inline-block; width: 5.5em; color: #777; text-align: right; margin-right: .8em; }
    .ctx span span { white-space: pre; border-radius: 2px; }
    .ctx .pk { outline: 1px solid #333; font-weight: bold; }
    .ctx .bos { color: #aaa; }
    .plots { display: flex; flex-wrap: wrap; gap: 1em; }
    table { border-collapse: collapse; } td, th { padding: 2px 8px; text-align: left; vertical-align: top; }
    th[data-col] { cursor: pointer; text-decoration: underline dotted; }
    .logits { display: flex; gap: 3em; } .logits td:last-child { text-align: right; font-variant-numeric: tabular-nums; }
    .logits code, td code { white-space: pre; background: #f4f4f4; }
    code.ex { display: block; max-width: 34em; overflow: hidden; }
    """

func pageHead(_ title: String) -> String {
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>\(htmlEscape(title))</title><style>\n\(pageStyle)\n</style></head>\n<body>\n"
}

/// One window as a line of tokens; activations scaled by `scale` (the feature's maximum).
func contextHTML(_ w: ContextWindow, scale: Float, bos: Int, texts: TokenTexts) -> String {
    var s = "<div class=\"ctx\"><span class=\"v\">\(formatValue(Double(w.value)))</span><span>"
    for (i, (t, a)) in zip(w.tokens, w.values).enumerated() {
        let text = texts.html[Int(t)]
        let cls = i == w.peak ? " class=\"pk\"" : Int(t) == bos ? " class=\"bos\"" : ""
        if a > 0 {
            let alpha = scale > 0 ? min(1, a / scale) : 0
            // Float's shortest round-trip text for the value; alpha in thousandths.
            let permille = Int((alpha * 1000).rounded())
            s += "<span\(cls) title=\"\(a)\" style=\"background:rgba(232,135,14,\(permille / 1000).\(String(permille % 1000 + 1000).dropFirst()))\">\(text)</span>"
        } else {
            s += "<span\(cls) title=\"0\">\(text)</span>"
        }
    }
    return s + "</span></div>\n"
}

/// A feature's page.
public func featurePageHTML(_ f: FeatureDashboard, info: DashboardInfo, bos: Int, texts: TokenTexts) -> String {
    var s = pageHead("Feature \(f.index) · \(info.hook)")
    s += "<p><a href=\"../index.html\">← all features</a></p>\n<h1>Feature \(f.index)</h1>\n"
    s += "<p class=\"meta\">\(htmlEscape(info.hook)) · density <b id=\"density\">\(formatValue(100 * f.density))%</b> "
        + "(\(f.fired) of \(f.tokens) tokens) · max activation <b id=\"max\">\(formatValue(Double(f.maxValue)))</b></p>\n"
    s += "<div class=\"plots\">\n" + histogramSVG(f.histogram, title: "Activations (non-zero)", xLabel: "activation")
    s += "\n" + histogramSVG(f.logits.histogram, title: "Logit effect W_dec·W_U over the vocabulary", xLabel: "logit effect",
                            fill: "#4c78a8") + "\n</div>\n"
    func tokenTable(_ id: String, _ title: String, _ rows: [(token: Int, value: Float)]) -> String {
        var t = "<table id=\"\(id)\"><tr><th>\(title)</th><th></th></tr>"
        for r in rows {
            t += "<tr><td><code>\(texts.html[r.token])</code></td><td>\(String(format: "%+.4g", r.value))</td></tr>"
        }
        return t + "</table>"
    }
    s += "<div class=\"logits\">" + tokenTable("boosted", "Boosted tokens", f.logits.boosted)
        + tokenTable("suppressed", "Suppressed tokens", f.logits.suppressed) + "</div>\n"
    s += "<h2>Top activations</h2>\n<div id=\"top\">\n"
    for w in f.top { s += contextHTML(w, scale: f.maxValue, bos: bos, texts: texts) }
    s += "</div>\n<h2>Samples by activation interval</h2>\n"
    for interval in f.intervals.reversed() where interval.count > 0 {
        let share = f.fired > 0 ? 100 * Double(interval.count) / Double(f.fired) : 0
        s += "<section class=\"interval\" data-lower=\"\(interval.lower)\" data-upper=\"\(interval.upper)\"><h3>\(formatValue(Double(interval.lower))) – \(formatValue(Double(interval.upper))): "
            + "\(interval.count) firings (\(formatValue(share))%)</h3>\n"
        for w in interval.windows { s += contextHTML(w, scale: f.maxValue, bos: bos, texts: texts) }
        s += "</section>\n"
    }
    return s + "</body></html>\n"
}

/// The index: one row per feature, sortable by clicking density or max activation (or by
/// opening it with #sort=density or #sort=max).
public func indexPageHTML(_ features: [FeatureDashboard], info: DashboardInfo, texts: TokenTexts) -> String {
    var s = pageHead("SAE features · \(info.hook)")
    s += "<h1>SAE features</h1>\n<p class=\"meta\">\(htmlEscape(info.hook)) · \(htmlEscape(info.saePath)) · d_sae \(info.dSAE) · "
        + "\(info.tokens) tokens · \(info.firedFeatures) features fired · \(features.count) pages</p>\n"
    s += "<table id=\"features\"><thead><tr><th>feature</th><th data-col=\"1\" data-key=\"density\">density</th>"
        + "<th data-col=\"2\" data-key=\"max\">max activation</th><th>top boosted tokens</th><th>top context</th></tr></thead><tbody>\n"
    for f in features {
        let boosted = f.logits.boosted.prefix(3).map { "<code>" + texts.html[$0.token] + "</code>" }.joined(separator: " ")
        var example = ""
        if let w = f.top.first {
            example = w.tokens.enumerated().map { i, t in
                let text = texts.html[Int(t)]
                return i == w.peak ? "<b>\(text)</b>" : text
            }.joined()
        }
        s += "<tr><td><a href=\"features/\(f.index).html\">\(f.index)</a></td>"
            + "<td data-v=\"\(f.density)\">\(formatValue(100 * f.density))%</td><td data-v=\"\(f.maxValue)\">\(formatValue(Double(f.maxValue)))</td>"
            + "<td>\(boosted)</td><td><code class=\"ex\">\(example)</code></td></tr>\n"
    }
    s += """
        </tbody></table>
        <script>
        // Sort the rows by a numeric column (data-v), descending first, ascending on a second click.
        function sortBy(th) {
          const col = +th.dataset.col, body = document.querySelector("#features tbody");
          const desc = th.dataset.dir !== "desc";
          th.dataset.dir = desc ? "desc" : "asc";
          [...body.rows].sort((a, b) => (+a.cells[col].dataset.v - +b.cells[col].dataset.v) * (desc ? -1 : 1))
            .forEach(r => body.appendChild(r));
        }
        document.querySelectorAll("th[data-col]").forEach(th => th.addEventListener("click", () => sortBy(th)));
        const m = location.hash.match(/^#sort=(\\w+)$/);
        if (m) { const th = document.querySelector(`th[data-key="${m[1]}"]`); if (th) sortBy(th); }
        </script>
        </body></html>

        """
    return s
}

/// Writes index.html and features/<f>.html into `directory` (created if needed).
public func writeDashboard(to directory: String, features: [FeatureDashboard], info: DashboardInfo, bos: Int,
                           texts: TokenTexts) throws {
    let pages = URL(fileURLWithPath: directory).appendingPathComponent("features")
    try FileManager.default.createDirectory(at: pages, withIntermediateDirectories: true)
    for f in features {
        try Data(featurePageHTML(f, info: info, bos: bos, texts: texts).utf8)
            .write(to: pages.appendingPathComponent("\(f.index).html"))
    }
    try Data(indexPageHTML(features, info: info, texts: texts).utf8)
        .write(to: URL(fileURLWithPath: directory).appendingPathComponent("index.html"))
}
