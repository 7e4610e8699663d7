import Foundation
import NASCore
import Search
import XCTest

/// A space of independent decisions named d0, d1, … with options "0", "1", …; text "1-0-2".
struct GridSpace: ArchitectureSpace {
    var name: String
    var decisions: [Decision]

    init(name: String = "grid", optionCounts: [Int]) {
        self.name = name
        decisions = optionCounts.enumerated().map { index, count in
            Decision(name: "d\(index)", options: (0..<count).map(String.init))
        }
    }

    func text(of architecture: Architecture) -> String {
        architecture.choices.map(String.init).joined(separator: "-")
    }

    func parse(_ text: String) throws -> Architecture {
        Architecture(choices: text.split(separator: "-").map { Int($0)! })
    }

    /// Every architecture, in lexicographic order.
    var all: [Architecture] {
        var result = [Architecture(choices: [])]
        for decision in decisions {
            result = result.flatMap { a in decision.options.indices.map { Architecture(choices: a.choices + [$0]) } }
        }
        return result
    }
}

/// NAS-Bench-201's cell space: 6 edges × 5 operations, standard NB201 text, canonical = identity.
struct NASBench201TestSpace: ArchitectureSpace {
    static let operations = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
    /// (to, from) in NB201's string order.
    static let edges = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]
    struct ParseError: Error { var text: String }

    var name: String { "nasbench201-test" }
    var decisions: [Decision] {
        Self.edges.map { Decision(name: "edge(\($0.0)<-\($0.1))", options: Self.operations) }
    }

    func text(of architecture: Architecture) -> String {
        var text = "|"
        for (index, edge) in Self.edges.enumerated() {
            if index == 1 || index == 3 { text += "+|" }
            text += "\(Self.operations[architecture.choices[index]])~\(edge.1)|"
        }
        return text
    }

    func parse(_ text: String) throws -> Architecture {
        let tokens = text.split(separator: "|").filter { $0 != "+" }
        guard tokens.count == 6 else { throw ParseError(text: text) }
        return Architecture(choices: try tokens.map { token in
            guard let op = token.split(separator: "~").first,
                  let index = Self.operations.firstIndex(of: String(op)) else { throw ParseError(text: text) }
            return index
        })
    }
}

/// The NAS-Bench-201 CSV next to the repository, or a skip.
func nasBench201TableURL(file: StaticString = #filePath) throws -> URL {
    let root = URL(fileURLWithPath: "\(file)").deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let url = root.deletingLastPathComponent()
        .appendingPathComponent("shared/benchmarks/nasbench201/nats_bench_tss_200ep.csv")
    guard FileManager.default.fileExists(atPath: url.path) else {
        throw XCTSkip("NAS-Bench-201 table not found at \(url.path) (expected ../shared/benchmarks/nasbench201/ from the repository root); skipping")
    }
    return url
}
