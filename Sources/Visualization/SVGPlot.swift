import Foundation

// Small static SVG plots (inline in pages, or files): a frame with axes, ticks and labels, and
// the marks of a histogram or of line series drawn in it. No scripts, no fonts fetched.

/// The plot area: maps data coordinates to pixels of a width × height picture with margins for
/// the tick labels.
struct PlotArea {
    static let width = 520.0, height = 260.0
    static let left = 64.0, right = 16.0, top = 28.0, bottom = 44.0
    var x: ClosedRange<Double>
    var y: ClosedRange<Double>

    init(x: ClosedRange<Double>, y: ClosedRange<Double>) {
        // A degenerate range gets a unit width so that the mapping stays finite.
        self.x = x.upperBound > x.lowerBound ? x : x.lowerBound ... x.lowerBound + 1
        self.y = y.upperBound > y.lowerBound ? y : y.lowerBound ... y.lowerBound + 1
    }

    func px(_ v: Double) -> Double {
        Self.left + (v - x.lowerBound) / (x.upperBound - x.lowerBound) * (Self.width - Self.left - Self.right)
    }
    func py(_ v: Double) -> Double {
        Self.height - Self.bottom - (v - y.lowerBound) / (y.upperBound - y.lowerBound) * (Self.height - Self.top - Self.bottom)
    }
}

/// About `count` round tick values (steps of 1, 2 or 5 × 10^k) inside `range`.
func niceTicks(_ range: ClosedRange<Double>, count: Int = 5) -> [Double] {
    let span = range.upperBound - range.lowerBound
    guard span > 0, span.isFinite else { return [range.lowerBound] }
    let raw = span / Double(count), magnitude = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
    var ticks: [Double] = []
    var t = ceil(range.lowerBound / step) * step
    while t <= range.upperBound + step * 1e-9 { ticks.append(abs(t) < step * 1e-9 ? 0 : t); t += step }
    return ticks
}

/// A tick label: short, without trailing zeros; large and small numbers in exponent form.
func tickLabel(_ v: Double) -> String {
    let a = abs(v)
    if a != 0 && (a >= 1e5 || a < 1e-3) { return String(format: "%.2g", v) }
    return String(format: "%.6g", (v * 1e6).rounded() / 1e6)
}

/// The whole picture: title, axes with ticks and labels around `marks` (SVG elements drawn in `area`).
func svgFigure(_ area: PlotArea, title: String, xLabel: String, yLabel: String, marks: String) -> String {
    let W = PlotArea.width, H = PlotArea.height
    let x0 = PlotArea.left, x1 = W - PlotArea.right, y0 = H - PlotArea.bottom, y1 = PlotArea.top
    var s = ##"<svg xmlns="http://www.w3.org/2000/svg" width="\##(Int(W))" height="\##(Int(H))" viewBox="0 0 \##(Int(W)) \##(Int(H))" font-family="sans-serif" font-size="11">"##
    s += "<title>\(htmlEscape(title))</title>"
    s += ##"<text x="\##(W / 2)" y="16" text-anchor="middle" font-size="13">\##(htmlEscape(title))</text>"##
    s += marks
    s += ##"<g stroke="#444" fill="none"><line x1="\##(x0)" y1="\##(y0)" x2="\##(x1)" y2="\##(y0)"/><line x1="\##(x0)" y1="\##(y0)" x2="\##(x0)" y2="\##(y1)"/></g>"##
    s += ##"<g class="xticks" fill="#333">"##
    for t in niceTicks(area.x) {
        let x = String(format: "%.1f", area.px(t))
        s += ##"<line x1="\##(x)" y1="\##(y0)" x2="\##(x)" y2="\##(y0 + 4)" stroke="#444"/><text x="\##(x)" y="\##(y0 + 16)" text-anchor="middle">\##(tickLabel(t))</text>"##
    }
    s += ##"</g><g class="yticks" fill="#333">"##
    for t in niceTicks(area.y) {
        let y = String(format: "%.1f", area.py(t))
        s += ##"<line x1="\##(x0 - 4)" y1="\##(y)" x2="\##(x0)" y2="\##(y)" stroke="#444"/><text x="\##(x0 - 7)" y="\##(y)" dy="0.35em" text-anchor="end">\##(tickLabel(t))</text>"##
    }
    s += "</g>"
    s += ##"<text x="\##((x0 + x1) / 2)" y="\##(H - 8)" text-anchor="middle">\##(htmlEscape(xLabel))</text>"##
    s += ##"<text transform="translate(14 \##((y0 + y1) / 2)) rotate(-90)" text-anchor="middle">\##(htmlEscape(yLabel))</text>"##
    return s + "</svg>"
}

/// A histogram as bars (each with its range and count on hover).
public func histogramSVG(_ h: Histogram, title: String, xLabel: String, yLabel: String = "count",
                         fill: String = "#e8870e") -> String {
    let area = PlotArea(x: Double(h.lower) ... Double(h.upper), y: 0 ... Double(h.counts.max() ?? 0))
    var marks = ##"<g class="bars" fill="\##(fill)">"##
    for (i, c) in h.counts.enumerated() where c > 0 {
        let lo = Double(h.lower) + Double(i) * Double(h.width), hi = lo + Double(h.width)
        let x = area.px(lo), w = max(area.px(hi) - x - 0.5, 0.5), y = area.py(Double(c))
        marks += String(format: ##"<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f">"##, x, y, w, area.py(0) - y)
        marks += "<title>\(formatValue(lo)) – \(formatValue(hi)): \(c)</title></rect>"
    }
    return svgFigure(area, title: title, xLabel: xLabel, yLabel: yLabel, marks: marks + "</g>")
}

/// One named line of (x, y) points.
public struct PlotSeries: Sendable {
    public var name: String
    public var points: [(x: Double, y: Double)]
    public init(name: String, points: [(x: Double, y: Double)]) { self.name = name; self.points = points }
}

/// Line series, one polyline each (one point per data point), with a legend when there are several.
public func lineChartSVG(_ series: [PlotSeries], title: String, xLabel: String, yLabel: String) -> String {
    let xs = series.flatMap { $0.points.map(\.x) }, ys = series.flatMap { $0.points.map(\.y) }
    let area = PlotArea(x: min(xs.min() ?? 0, 0) ... (xs.max() ?? 1), y: min(ys.min() ?? 0, 0) ... (ys.max() ?? 1))
    let colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    var marks = ""
    for (i, s) in series.enumerated() {
        let colour = colours[i % colours.count]
        let points = s.points.map { String(format: "%.2f,%.2f", area.px($0.x), area.py($0.y)) }.joined(separator: " ")
        marks += ##"<polyline fill="none" stroke="\##(colour)" stroke-width="1.5" points="\##(points)"><title>\##(htmlEscape(s.name))</title></polyline>"##
        if series.count > 1 {
            let y = PlotArea.top + 4 + Double(i) * 14
            marks += ##"<text x="\##(PlotArea.width - PlotArea.right - 4)" y="\##(y)" text-anchor="end" fill="\##(colour)">\##(htmlEscape(s.name))</text>"##
        }
    }
    return svgFigure(area, title: title, xLabel: xLabel, yLabel: yLabel, marks: marks)
}
