import Datasets
import Engine
import Foundation
import NASCore
import Spaces

/// An architecture drawn as an SVG graph (`naslab draw`, and `best-architecture.svg` of
/// `naslab analyze --plot`): one box per node of the decoded network — its op with the
/// attributes that matter (kernel, width, stride …) and its output shape — arrows for the data
/// flow, and each block or cell (the nodes sharing a `stage/block` name prefix) framed as a
/// labelled cluster.
///
/// Layout: nodes are placed in layers by their longest path from the input (so a residual or a
/// cell edge skips layers and is drawn as a curve beside the boxes), left to right within a layer
/// in graph order. The SVG is plain (no scripts, no external fonts) and carries classes (`node`,
/// `edge`, `cluster`) and `data-` attributes for tools and tests.
public enum ArchitectureDiagram {
    static let boxWidth = 250.0, boxHeight = 40.0, rowGap = 34.0, columnGap = 36.0, margin = 40.0, titleHeight = 36.0

    /// The cluster a node belongs to: the first two components of its name (`stage1/block0`,
    /// `stage2/cell3`), or `nil` for top-level nodes (`input`, `stem/…` with one level, `head/…`).
    static func cluster(of name: String) -> String? {
        let parts = name.split(separator: "/")
        guard parts.count >= 3 else { return nil }
        return parts.prefix(2).joined(separator: "/")
    }

    /// The first line of a node's box: the op kind and its attributes.
    static func label(_ op: any GraphOp) -> String {
        let kind = type(of: op).kind
        let attributes = op.attributes.map { "\($0.name) \($0.value)" }
        return attributes.isEmpty ? kind : kind + " · " + attributes.joined(separator: ", ")
    }

    /// Draws `graph` (shapes inferred with the standard registry).
    /// - Throws: `NetworkGraphError` when the graph's shapes do not fit.
    public static func svg(_ graph: NetworkGraph, title: String) throws -> String {
        let shapes = try graph.inferShapes()
        let nodes = graph.nodes
        var layer = [Int](repeating: 0, count: nodes.count)
        for (i, node) in nodes.enumerated() where !node.inputs.isEmpty {
            layer[i] = 1 + (node.inputs.map { layer[$0] }.max() ?? 0)
        }
        let layers = (layer.max() ?? 0) + 1
        var members = [[Int]](repeating: [], count: layers)
        for i in nodes.indices { members[layer[i]].append(i) }
        let widest = members.map(\.count).max() ?? 1
        let width = 2 * margin + Double(widest) * boxWidth + Double(widest - 1) * columnGap + 120
        let height = titleHeight + 2 * margin + Double(layers) * boxHeight + Double(layers - 1) * rowGap
        var position = [(x: Double, y: Double)](repeating: (0, 0), count: nodes.count)
        for (l, row) in members.enumerated() {
            let rowWidth = Double(row.count) * boxWidth + Double(row.count - 1) * columnGap
            for (k, i) in row.enumerated() {
                position[i] = (x: (width - 120 - rowWidth) / 2 + Double(k) * (boxWidth + columnGap),
                               y: titleHeight + margin + Double(l) * (boxHeight + rowGap))
            }
        }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(f(width))" height="\(f(height))" viewBox="0 0 \(f(width)) \(f(height))" font-family="sans-serif" font-size="11">
        <defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(f(width / 2))" y="24" text-anchor="middle" font-size="15">\(esc(title))</text>

        """
        // Clusters first (behind the boxes).
        var clusters = [String: [Int]]()
        var clusterOrder = [String]()
        for (i, node) in nodes.enumerated() {
            guard let c = cluster(of: node.name) else { continue }
            if clusters[c] == nil { clusterOrder.append(c) }
            clusters[c, default: []].append(i)
        }
        for c in clusterOrder {
            let ids = clusters[c]!
            let x0 = ids.map { position[$0].x }.min()! - 12, x1 = ids.map { position[$0].x }.max()! + boxWidth + 12
            let y0 = ids.map { position[$0].y }.min()! - 16, y1 = ids.map { position[$0].y }.max()! + boxHeight + 8
            out += "<g class=\"cluster\" data-name=\"\(esc(c))\"><rect x=\"\(f(x0))\" y=\"\(f(y0))\" width=\"\(f(x1 - x0))\" height=\"\(f(y1 - y0))\" rx=\"8\" fill=\"#f4f7fb\" stroke=\"#9aa7b8\" stroke-dasharray=\"4 3\"/>"
            out += "<text x=\"\(f(x0 + 6))\" y=\"\(f(y0 + 11))\" font-size=\"10\" fill=\"#556\">\(esc(c))</text></g>\n"
        }
        // Edges: straight between adjacent layers, curved beside the boxes when skipping layers.
        for (i, node) in nodes.enumerated() {
            for j in node.inputs {
                let sx = position[j].x + boxWidth / 2, sy = position[j].y + boxHeight
                let tx = position[i].x + boxWidth / 2, ty = position[i].y
                let d: String
                if layer[i] - layer[j] <= 1 {
                    d = "M\(f(sx)),\(f(sy)) L\(f(tx)),\(f(ty))"
                } else {
                    let side = max(position[i].x, position[j].x) + boxWidth + 30 + Double((layer[i] - layer[j]) % 3) * 12
                    d = "M\(f(sx)),\(f(sy)) C\(f(side)),\(f(sy + rowGap)) \(f(side)),\(f(ty - rowGap)) \(f(tx)),\(f(ty))"
                }
                out += "<path class=\"edge\" data-from=\"\(j)\" data-to=\"\(i)\" d=\"\(d)\" fill=\"none\" stroke=\"#555\" stroke-width=\"1.2\" marker-end=\"url(#arrow)\"/>\n"
            }
        }
        for (i, node) in nodes.enumerated() {
            let (x, y) = position[i]
            let kind = type(of: node.op).kind
            let fill = kind == "input" ? "#e8f4e8" : (i == graph.output ? "#fdeaea" : "#ffffff")
            let shape = shapes[i]
            let shapeText = "\(shape.channels)×\(shape.height)×\(shape.width)"
            out += "<g class=\"node\" data-index=\"\(i)\" data-name=\"\(esc(node.name))\" data-op=\"\(esc(kind))\" data-shape=\"\(shapeText)\">"
            out += "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(boxWidth))\" height=\"\(f(boxHeight))\" rx=\"5\" fill=\"\(fill)\" stroke=\"#333\"/>"
            out += "<text x=\"\(f(x + 8))\" y=\"\(f(y + 16))\" font-weight=\"bold\">\(esc(String(label(node.op).prefix(44))))</text>"
            out += "<text x=\"\(f(x + 8))\" y=\"\(f(y + 31))\" fill=\"#555\">\(esc(String(node.name.split(separator: "/").last ?? "")))  →  \(shapeText)</text></g>\n"
        }
        out += "</svg>\n"
        return out
    }

    /// Draws an architecture of a space (a fixed space's network when `architecture` is `nil`).
    /// - Parameters:
    ///   - inputShape: `nil`: the space's task's default (`CostEstimate.defaultInputShape(for:)`).
    public static func svg(space name: String, architecture: String?, inputShape: FeatureShape?,
                           classCount: Int) throws -> String {
        let space = try SpaceReference.resolve(name).space
        let parsed: Architecture
        if let architecture {
            parsed = try space.parse(architecture)
        } else if space.isFixed {
            parsed = try space.parse(SearchSpace.fixedArchitectureText)
        } else {
            throw LabError.invalid("space '\(space.name)' has decisions: pass --arch TEXT")
        }
        let shape = inputShape ?? CostEstimate.defaultInputShape(for: space.task)
        let graph = try space.network(for: parsed, inputShape: shape, inputKind: CostEstimate.defaultInputKind(for: space.task),
                                      classCount: classCount)
        let text = space.text(of: parsed)
        return try svg(graph, title: "\(space.name): \(text.count > 90 ? String(text.prefix(89)) + "…" : text)")
    }
}
