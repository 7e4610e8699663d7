import Engine
import Estimators
import NASCore
import Spaces
import XCTest

/// Text and tabular spaces: their task, decoding with token / feature inputs, and the checks
/// that keep ops and inputs of different tasks apart.
final class TaskSpacesTests: XCTestCase {
    let tokens = FeatureShape(channels: 1, height: 1, width: 32)

    func testTextSpacesDecodeEveryBlockKindForTokenInputs() throws {
        for name in ["text-small", "text-medium", "text-large", "reference/text-cnn"] {
            let space = try loadSpace(name)
            XCTAssertEqual(space.task, .textClassification, name)
            var rng = SeededGenerator(seed: 11)
            var kinds = Set<String>()
            for _ in 0..<40 {
                let a = space.sample(using: &rng)
                let graph = try space.network(for: a, inputShape: tokens, inputKind: .tokens(vocabularySize: 500), classCount: 7)
                let shapes = try graph.inferShapes()
                XCTAssertEqual(shapes.last, FeatureShape(features: 7), name)
                XCTAssertEqual(graph.nodes[1].op.kind, "embedding", name)
                kinds.formUnion(graph.nodes.map(\.op.kind))
                // The estimators count every op (no silent zero): the embedding alone has V·D parameters.
                let cost = try graph.cost()
                let embedding = graph.nodes[1].op as! Embedding
                XCTAssertGreaterThan(cost.parameters, 500 * embedding.dimension)
                XCTAssertNotNil(try LatencyKey.keys(for: graph)[1])
            }
            if name != "reference/text-cnn" {
                XCTAssertTrue(kinds.isSuperset(of: ["conv1d", "selfAttention", "layerNorm", "sequenceMaxPool", "sequenceMeanPool"]),
                              "\(name): \(kinds.sorted())")
            }
        }
    }

    func testKimCNNHasItsPublishedShape() throws {
        let space = try loadSpace("reference/text-cnn")
        XCTAssertTrue(space.isFixed)
        let graph = try space.network(for: try space.parse(SearchSpace.fixedArchitectureText), inputShape: tokens,
                                      inputKind: .tokens(vocabularySize: 1000), classCount: 5)
        // Embedding 1000×128; three conv1d branches (k = 3, 5, 7) of 100 maps with bias; linear 300 → 5.
        let expected = 1000 * 128 + (128 * 3 + 128 * 5 + 128 * 7) * 100 + 300 + 300 * 5 + 5
        XCTAssertEqual(try graph.cost().parameters, expected)
        XCTAssertEqual(try graph.inferShapes()[graph.nodes.firstIndex { $0.name == "head/pool" }!], FeatureShape(features: 300))
    }

    func testTabularSpaceIsAnMLPOnFeatures() throws {
        let space = try loadSpace("tabular-small")
        XCTAssertEqual(space.task, .tabularClassification)
        // width 3 × activation 2 × dropout 3 × (depth 1: 2 ops + depth 2: 2² + depth 3: 2³) = 18 × 14.
        XCTAssertEqual(space.size.description, "252")
        var rng = SeededGenerator(seed: 2)
        for _ in 0..<20 {
            let graph = try space.network(for: space.sample(using: &rng), inputShape: FeatureShape(features: 13),
                                          inputKind: .features, classCount: 3)
            XCTAssertEqual(try graph.inferShapes().last, FeatureShape(features: 3))
            XCTAssertTrue(graph.nodes.dropFirst().allSatisfy { ["linear", "batchNorm", "activation", "dropout"].contains($0.op.kind) },
                          graph.nodes.map(\.op.kind).description)
        }
    }

    func testInputsOfTheWrongTaskAreRefused() throws {
        let text = try loadSpace("text-small")
        var rng = SeededGenerator(seed: 1)
        let a = text.sample(using: &rng)
        XCTAssertThrowsError(try text.network(for: a, inputShape: FeatureShape(channels: 1, height: 8, width: 8), classCount: 10)) {
            XCTAssertTrue("\($0)".contains("token sequences"), "\($0)")
        }
        let small = try loadSpace("small")
        XCTAssertThrowsError(try small.network(for: small.sample(using: &rng), inputShape: tokens,
                                               inputKind: .tokens(vocabularySize: 100), classCount: 2)) {
            XCTAssertTrue("\($0)".contains("cannot take token inputs"), "\($0)")
        }
    }

    func testOpsOfAnotherTaskAreErrorsWithPositions() {
        let cases: [(String, String)] = [
            ("name: t\ntask: text_classification\nstem:\n  - {op: embedding, width: 8}\nstages:\n  - blocks: {width: 8, op: [conv1d, mbconv]}\n",
             "t.yaml:6:37: block op 'mbconv' does not work for text_classification (use one of: skip, conv1d, dilated, attention, multi_conv1d)"),
            ("name: t\nstages:\n  - blocks: {width: 8, op: attention}\n",
             "t.yaml:3:28: block op 'attention' does not work for image_classification (use one of: conv, dsconv, mbconv, resblock, skip, maxpool, avgpool)"),
            ("name: t\ntask: text_classification\nstages:\n  - blocks: {width: 8, op: conv1d}\n",
             "t.yaml:1:1: a text_classification space needs exactly one stem layer {op: embedding, width: …}, and first"),
            ("name: t\nstem:\n  - {op: embedding, width: 8}\nstages:\n  - blocks: {width: 8, op: conv}\n",
             "t.yaml:3:3: 'embedding' layers are for text_classification spaces (this space's task is image_classification)"),
            ("name: t\ntask: tabular_classification\nstages:\n  - blocks: {width: 8, op: dense}\nhead: {pool: max}\n",
             "t.yaml:5:14: head pool 'max' does not work for tabular_classification (use one of: none)"),
            ("name: t\ntask: speech\nstages:\n  - blocks: {width: 8, op: dense}\n",
             "t.yaml:2:7: unknown task 'speech' (expected one of: image_classification, text_classification, tabular_classification, segmentation, detection)"),
        ]
        for (yaml, message) in cases {
            XCTAssertThrowsError(try SearchSpace.load(yaml: yaml, fileName: "t.yaml")) { XCTAssertEqual("\($0)", message) }
        }
    }

    func testHeadPoolAndDropoutAreDecisions() throws {
        let space = try loadSpace("text-small")
        let names = space.decisions.map(\.name)
        XCTAssertTrue(names.contains("head.pool"), "\(names)")
        XCTAssertTrue(names.contains("head.dropout"), "\(names)")
        var rng = SeededGenerator(seed: 5)
        var pools = Set<String>()
        for _ in 0..<20 {
            let g = try space.network(for: space.sample(using: &rng), inputShape: tokens, inputKind: .tokens(vocabularySize: 50), classCount: 2)
            pools.insert(g.nodes.first { $0.name == "head/pool" }!.op.kind)
        }
        XCTAssertEqual(pools, ["sequenceMaxPool", "sequenceMeanPool"])
    }
}
