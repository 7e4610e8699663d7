import Engine
import Foundation
import Lab
import NASCore
import Spaces
import TestSupport
import XCTest
#if canImport(FoundationXML)
import FoundationXML
#endif

/// The SVG of `naslab draw` / `analyze --plot`, checked by structure (parsed as XML), not pixels.
final class ArchitectureDiagramTests: XCTestCase {
    /// Elements of the SVG: nodes (index, op, shape), edges (from, to, path), clusters (name).
    final class Structure: NSObject, XMLParserDelegate {
        var nodes = [(index: Int, op: String, shape: String, name: String)]()
        var edges = [(from: Int, to: Int, path: String)]()
        var clusters = [String]()
        var legendEntries = 0
        var tickLabelsY = [String]()
        private var inTickY = false

        func parser(_ parser: XMLParser, didStartElement element: String, namespaceURI: String?, qualifiedName: String?,
                    attributes a: [String: String] = [:]) {
            switch a["class"] {
            case "node": nodes.append((Int(a["data-index"]!)!, a["data-op"]!, a["data-shape"]!, a["data-name"]!))
            case "edge": edges.append((Int(a["data-from"]!)!, Int(a["data-to"]!)!, a["d"]!))
            case "cluster": clusters.append(a["data-name"]!)
            case "legend-entry": legendEntries += 1
            case "tick-label-y": inTickY = true
            default: break
            }
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if inTickY { tickLabelsY.append(string) }
        }
        func parser(_ parser: XMLParser, didEndElement element: String, namespaceURI: String?, qualifiedName: String?) {
            inTickY = false
        }

        static func parse(_ svg: String) throws -> Structure {
            let structure = Structure()
            let parser = XMLParser(data: Data(svg.utf8))
            parser.delegate = structure
            guard parser.parse() else { throw parser.parserError ?? NSError(domain: "xml", code: 1) }
            return structure
        }
    }

    func graph(_ space: String, _ arch: String?, _ shape: FeatureShape) throws -> NetworkGraph {
        let s = try SpaceReference.resolve(space).space
        return try s.network(for: try s.parse(arch ?? SearchSpace.fixedArchitectureText), inputShape: shape, inputKind: .image,
                             classCount: 10)
    }

    func testResNet18IsDrawnNodeForNodeWithResidualsAndBlocks() throws {
        let shape = FeatureShape(channels: 3, height: 224, width: 224)
        let g = try graph("reference/resnet18", nil, shape)
        let svg = try ArchitectureDiagram.svg(space: "reference/resnet18", architecture: nil, inputShape: shape, classCount: 10)
        let s = try Structure.parse(svg)
        let shapes = try g.inferShapes()
        XCTAssertEqual(s.nodes.count, g.nodes.count)
        for node in s.nodes {
            XCTAssertEqual(node.name, g.nodes[node.index].name)
            XCTAssertEqual(node.op, type(of: g.nodes[node.index].op).kind)
            let expected = shapes[node.index]
            XCTAssertEqual(node.shape, "\(expected.channels)×\(expected.height)×\(expected.width)")
        }
        XCTAssertEqual(s.edges.count, g.nodes.map(\.inputs.count).reduce(0, +), "one arrow per input")
        XCTAssertTrue(s.edges.allSatisfy { g.nodes[$0.to].inputs.contains($0.from) })
        let skips = s.edges.filter { $0.path.contains("C") }
        XCTAssertGreaterThanOrEqual(skips.count, 8, "ResNet-18's 8 residual connections are drawn beside the boxes")
        let expectedClusters = Set(g.nodes.compactMap { n -> String? in
            let parts = n.name.split(separator: "/")
            return parts.count >= 3 ? parts.prefix(2).joined(separator: "/") : nil
        })
        XCTAssertEqual(Set(s.clusters), expectedClusters)
        XCTAssertEqual(s.clusters.count, expectedClusters.count, "each block framed once")
        XCTAssertGreaterThanOrEqual(s.clusters.count, 8)
        XCTAssertTrue(svg.contains("kernel 3") || svg.contains("kernel 7"), "op attributes are in the labels")
    }

    /// A snapshot of the structure for one small-space architecture: every node's op and shape, in order.
    func testSmallArchitectureSnapshot() throws {
        let arch = "stem.width=8 stage1.depth=1 stage1.width=16 stage1.block0.op=conv stage1.block0.kernel=3 "
            + "stage2.depth=1 stage2.width=32 stage2.block0.op=conv stage2.block0.kernel=3"
        let svg = try ArchitectureDiagram.svg(space: "small", architecture: arch, inputShape: FeatureShape(channels: 1, height: 8, width: 8),
                                              classCount: 10)
        let s = try Structure.parse(svg)
        let summary = s.nodes.map { "\($0.op) \($0.shape)" }
        let g = try graph("small", arch, FeatureShape(channels: 1, height: 8, width: 8))
        XCTAssertEqual(summary.first, "input 1×8×8")
        XCTAssertEqual(summary.last, "\(type(of: g.nodes.last!.op).kind) 10×1×1")
        XCTAssertEqual(summary, Self.smallSnapshot, summary.joined(separator: "\n"))
        XCTAssertEqual(s.edges.count, g.nodes.count - 1, "a chain: one arrow per node after the input")
    }

    static let smallSnapshot = [
        "input 1×8×8", "conv2d 8×8×8", "batchNorm 8×8×8", "activation 8×8×8",
        "conv2d 16×8×8", "batchNorm 16×8×8", "activation 16×8×8",
        "conv2d 32×4×4", "batchNorm 32×4×4", "activation 32×4×4",
        "globalAvgPool 32×1×1", "linear 10×1×1",
    ]

    func testPlotsHaveNiceTicksAndOneLegendEntryPerSeries() throws {
        XCTAssertEqual(SVGPlot.niceTicks(-0.0036, 5.05), [-2, 0, 2, 4, 6], "1/2/5 × 10^k, not the raw limits")
        XCTAssertEqual(SVGPlot.niceTicks(0.8312, 0.9547), [0.8, 0.85, 0.9, 0.95, 1.0])
        XCTAssertEqual(SVGPlot.niceTicks(1, 24.9), [0, 5, 10, 15, 20, 25])
        XCTAssertEqual(SVGPlot.logTicks(830, 412_000), [100, 1000, 10_000, 100_000, 1_000_000])
        var plot = SVGPlot(title: "t", xLabel: "x", yLabel: "y")
        plot.series.append(.init(label: "accepted", points: [(1, 0.8312), (2, 0.9547)], color: "#1f77b4"))
        plot.series.append(.init(label: "Pareto front", points: [(1, 0.8312), (2, 0.9547)], color: "#d62728", line: true, markers: true))
        let s = try Structure.parse(plot.render())
        XCTAssertEqual(s.legendEntries, 2, "one entry per series")
        XCTAssertEqual(s.tickLabelsY, ["0.80", "0.85", "0.90", "0.95", "1.00"])
    }
}
