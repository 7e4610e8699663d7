import Foundation

/// A minimal SVG chart writer for `naslab analyze --plot`: scatter and line series on linear or
/// log axes, with "nice" ticks (1, 2 or 5 × 10^k; powers of ten on log axes) and one legend entry
/// per series. No dependencies; the output opens in any browser.
public struct SVGPlot {
    public struct Series {
        public var label: String
        public var points: [(x: Double, y: Double)]
        public var color: String
        /// Draw as a connected line instead of dots.
        public var line: Bool
        public var radius: Double
        /// Also mark the points of a line (one series, one legend entry).
        public var markers: Bool

        public init(label: String, points: [(x: Double, y: Double)], color: String, line: Bool = false, radius: Double = 3,
                    markers: Bool = false) {
            self.label = label
            self.points = points
            self.color = color
            self.line = line
            self.radius = radius
            self.markers = markers
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var logX: Bool = false
    public var series: [Series] = []
    public var width: Double = 720
    public var height: Double = 480

    public init(title: String, xLabel: String, yLabel: String, logX: Bool = false) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.logX = logX
    }

    /// Ticks at 1, 2 or 5 × 10^k covering `[low, high]` with about `count` intervals: the returned
    /// ticks start at or below `low` and end at or above `high` (the axis is widened to them).
    public static func niceTicks(_ low: Double, _ high: Double, count: Int = 5) -> [Double] {
        guard low.isFinite, high.isFinite else { return [0, 1] }
        var (a, b) = (min(low, high), max(low, high))
        if b - a < 1e-12 * max(1, abs(a)) { a -= 0.5 * max(1, abs(a) * 0.1); b += 0.5 * max(1, abs(b) * 0.1) }
        let raw = (b - a) / Double(max(1, count))
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw * 0.999 } ?? 10 * magnitude
        let first = (a / step).rounded(.down), last = (b / step).rounded(.up)
        return stride(from: first, through: last, by: 1).map { ($0 * step * 1e12).rounded() / 1e12 }
    }

    /// Powers of ten covering `[low, high]` (both > 0), for log axes.
    public static func logTicks(_ low: Double, _ high: Double) -> [Double] {
        let a = log10(max(low, 1e-12)).rounded(.down), b = log10(max(high, 1e-12)).rounded(.up)
        return stride(from: a, through: max(b, a + 1), by: 1).map { pow(10, $0) }
    }

    /// A tick value as text: as few digits as the tick step needs (`0.02`, `5`, `25`, `1e+06`).
    static func tickLabel(_ value: Double, step: Double) -> String {
        if value == 0 { return "0" }
        if abs(value) >= 1e5 || abs(value) < 1e-3 { return String(format: "%g", value) }
        let decimals = max(0, Int((-log10(step)).rounded(.up)))
        return String(format: "%.\(decimals)f", value)
    }

    /// Renders the chart as an SVG document.
    public func render() -> String {
        let left = 70.0, right = 20.0, top = 40.0, bottom = 55.0
        let plotW = width - left - right, plotH = height - top - bottom
        let xs = series.flatMap { $0.points.map(\.x) }.filter { $0.isFinite && (!logX || $0 > 0) }
        let ys = series.flatMap { $0.points.map(\.y) }.filter(\.isFinite)
        let xTicks = logX ? Self.logTicks(xs.min() ?? 1, xs.max() ?? 10) : Self.niceTicks(xs.min() ?? 0, xs.max() ?? 1)
        let yTicks = Self.niceTicks(ys.min() ?? 0, ys.max() ?? 1)
        let xAxis = logX ? (log10(xTicks.first!), log10(xTicks.last!)) : (xTicks.first!, xTicks.last!)
        let (y0, y1) = (yTicks.first!, yTicks.last!)
        func px(_ x: Double) -> Double { left + ((logX ? log10(max(x, 1e-12)) : x) - xAxis.0) / (xAxis.1 - xAxis.0) * plotW }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * plotH }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;")
        }
        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(f(width))" height="\(f(height))" viewBox="0 0 \(f(width)) \(f(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(f(width / 2))" y="22" text-anchor="middle" font-size="15">\(esc(title))</text>
        <rect x="\(f(left))" y="\(f(top))" width="\(f(plotW))" height="\(f(plotH))" fill="none" stroke="#444"/>

        """
        let xStep = xTicks.count > 1 ? xTicks[1] - xTicks[0] : 1, yStep = yTicks.count > 1 ? yTicks[1] - yTicks[0] : 1
        for x in xTicks {
            let gx = px(x)
            out += "<line class=\"tick-x\" x1=\"\(f(gx))\" y1=\"\(f(top))\" x2=\"\(f(gx))\" y2=\"\(f(top + plotH))\" stroke=\"#ddd\"/>\n"
            let label = logX ? String(format: "%g", x) : Self.tickLabel(x, step: xStep)
            out += "<text class=\"tick-label-x\" x=\"\(f(gx))\" y=\"\(f(top + plotH + 18))\" text-anchor=\"middle\">\(label)</text>\n"
        }
        for y in yTicks {
            let gy = py(y)
            out += "<line class=\"tick-y\" x1=\"\(f(left))\" y1=\"\(f(gy))\" x2=\"\(f(left + plotW))\" y2=\"\(f(gy))\" stroke=\"#ddd\"/>\n"
            out += "<text class=\"tick-label-y\" x=\"\(f(left - 6))\" y=\"\(f(gy + 4))\" text-anchor=\"end\">\(Self.tickLabel(y, step: yStep))</text>\n"
        }
        out += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 12))\" text-anchor=\"middle\">\(esc(xLabel))</text>\n"
        out += "<text transform=\"translate(16 \(f(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">\(esc(yLabel))</text>\n"
        for (k, s) in series.enumerated() {
            let pts = s.points.filter { $0.x.isFinite && $0.y.isFinite && (!logX || $0.x > 0) }
            if s.line, !pts.isEmpty {
                var d = "M\(f(px(pts[0].x))),\(f(py(pts[0].y)))"
                for p in pts.dropFirst() { d += " L\(f(px(p.x))),\(f(py(p.y)))" }
                out += "<path d=\"\(d)\" fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\"/>\n"
            }
            if !s.line || s.markers {
                for p in pts {
                    out += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"\(f(s.radius))\" fill=\"\(s.color)\" fill-opacity=\"0.75\"/>\n"
                }
            }
            // One legend entry per series, drawn in the series' style.
            let ly = top + 14 + Double(k) * 16, lx = left + plotW - 160
            out += "<g class=\"legend-entry\">"
            if s.line {
                out += "<line x1=\"\(f(lx))\" y1=\"\(f(ly - 4))\" x2=\"\(f(lx + 18))\" y2=\"\(f(ly - 4))\" stroke=\"\(s.color)\" stroke-width=\"2\"/>"
            }
            if !s.line || s.markers {
                out += "<circle cx=\"\(f(lx + 9))\" cy=\"\(f(ly - 4))\" r=\"\(f(min(s.radius, 5)))\" fill=\"\(s.color)\"/>"
            }
            out += "<text x=\"\(f(lx + 24))\" y=\"\(f(ly))\">\(esc(s.label))</text></g>\n"
        }
        out += "</svg>\n"
        return out
    }
}
