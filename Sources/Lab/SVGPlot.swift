import Foundation

/// A minimal SVG chart writer for `naslab analyze --plot`: scatter and step-line series on
/// linear or log axes, with ticks and labels. No dependencies; the output opens in any browser.
public struct SVGPlot {
    public struct Series {
        public var label: String
        public var points: [(x: Double, y: Double)]
        public var color: String
        /// Draw as a connected (step) line instead of dots.
        public var line: Bool
        public var radius: Double

        public init(label: String, points: [(x: Double, y: Double)], color: String, line: Bool = false, radius: Double = 3) {
            self.label = label
            self.points = points
            self.color = color
            self.line = line
            self.radius = radius
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

    /// Renders the chart as an SVG document.
    public func render() -> String {
        let left = 70.0, right = 20.0, top = 40.0, bottom = 55.0
        let plotW = width - left - right, plotH = height - top - bottom
        let xs = series.flatMap { $0.points.map { logX ? log10(max($0.x, 1e-12)) : $0.x } }.filter(\.isFinite)
        let ys = series.flatMap { $0.points.map(\.y) }.filter(\.isFinite)
        var (x0, x1) = (xs.min() ?? 0, xs.max() ?? 1)
        var (y0, y1) = (ys.min() ?? 0, ys.max() ?? 1)
        if x1 - x0 < 1e-12 { x0 -= 0.5; x1 += 0.5 }
        if y1 - y0 < 1e-12 { y0 -= 0.5; y1 += 0.5 }
        let padX = (x1 - x0) * 0.04, padY = (y1 - y0) * 0.06
        x0 -= padX; x1 += padX; y0 -= padY; y1 += padY
        func px(_ x: Double) -> Double { left + ((logX ? log10(max(x, 1e-12)) : x) - x0) / (x1 - x0) * plotW }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * plotH }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;")
        }
        func tickLabel(_ v: Double) -> String {
            if abs(v) >= 1e4 || (abs(v) < 1e-2 && v != 0) { return String(format: "%.2g", v) }
            return String(format: abs(v) < 10 ? "%.2f" : "%.1f", v)
        }
        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(f(width))" height="\(f(height))" viewBox="0 0 \(f(width)) \(f(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(f(width / 2))" y="22" text-anchor="middle" font-size="15">\(esc(title))</text>
        <rect x="\(f(left))" y="\(f(top))" width="\(f(plotW))" height="\(f(plotH))" fill="none" stroke="#444"/>

        """
        for i in 0...5 {
            let t = Double(i) / 5
            let xv = x0 + t * (x1 - x0), yv = y0 + t * (y1 - y0)
            let gx = left + t * plotW, gy = top + (1 - t) * plotH
            out += "<line x1=\"\(f(gx))\" y1=\"\(f(top))\" x2=\"\(f(gx))\" y2=\"\(f(top + plotH))\" stroke=\"#ddd\"/>\n"
            out += "<line x1=\"\(f(left))\" y1=\"\(f(gy))\" x2=\"\(f(left + plotW))\" y2=\"\(f(gy))\" stroke=\"#ddd\"/>\n"
            out += "<text x=\"\(f(gx))\" y=\"\(f(top + plotH + 18))\" text-anchor=\"middle\">\(tickLabel(logX ? pow(10, xv) : xv))</text>\n"
            out += "<text x=\"\(f(left - 6))\" y=\"\(f(gy + 4))\" text-anchor=\"end\">\(tickLabel(yv))</text>\n"
        }
        out += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 12))\" text-anchor=\"middle\">\(esc(xLabel))</text>\n"
        out += "<text transform=\"translate(16 \(f(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">\(esc(yLabel))</text>\n"
        for (k, s) in series.enumerated() {
            let pts = s.points.filter { $0.x.isFinite && $0.y.isFinite }
            if s.line, !pts.isEmpty {
                var d = "M\(f(px(pts[0].x))),\(f(py(pts[0].y)))"
                for p in pts.dropFirst() { d += " L\(f(px(p.x))),\(f(py(p.y)))" }
                out += "<path d=\"\(d)\" fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\"/>\n"
            } else {
                for p in pts {
                    out += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"\(f(s.radius))\" fill=\"\(s.color)\" fill-opacity=\"0.75\"/>\n"
                }
            }
            let ly = top + 14 + Double(k) * 16
            out += "<rect x=\"\(f(left + plotW - 150))\" y=\"\(f(ly - 9))\" width=\"10\" height=\"10\" fill=\"\(s.color)\"/>"
            out += "<text x=\"\(f(left + plotW - 135))\" y=\"\(f(ly))\">\(esc(s.label))</text>\n"
        }
        out += "</svg>\n"
        return out
    }
}
