import Foundation
import NASCore
import Spaces
import XCTest

/// Malformed search-space files: each must fail with `file:line:column: message` pointing at
/// the offending node. In each snippet, `»` marks the expected position (it is removed before
/// loading), and the expected line:column is also written out so that both must agree.
final class MalformedSpaceTests: XCTestCase {
    struct Case {
        var yaml: String
        var position: String
        var message: String
    }

    static let cases: [Case] = [
        Case(yaml: "name: x\n»stagez: []\n", position: "2:1", message: "unknown key 'stagez' in the search space (expected one of: name, description, task, activation, stem, cell, stages, decoder, head)"),
        Case(yaml: "name: x\nstages:\n  - blocks: {width: 8, op: [conv, »convolution]}\n", position: "3:35",
             message: "unknown block op 'convolution' (expected one of: conv, dsconv, mbconv, resblock, skip, maxpool, avgpool, conv1d, dilated, attention, multi_conv1d, dense, dense_bn)"),
        Case(yaml: "name: x\nstages:\n  - blocks:\n      width: »wide\n      op: conv\n", position: "4:14",
             message: "width must be an integer, got 'wide'"),
        Case(yaml: "name: x\nstages:\n  - blocks:\n      width: 8\n      op: conv\n      kernel: »[]\n", position: "6:15",
             message: "empty choice list for 'kernel'"),
        Case(yaml: "name: x\nstages:\n  - blocks: {width: 8, op: conv, kernel: [3, »4]}\n", position: "3:46",
             message: "kernel must be odd (padding is kernel/2), got 4"),
        Case(yaml: "name: x\nstages:\n  - blocks: »{depth: 2, op: conv}\n", position: "3:13",
             message: "missing key 'width' in stage 1 blocks"),
        Case(yaml: """
             name: x
             cell:
               nodes: 4
               ops: [none, skip_connect]
               edges: [[0, 1], »[1, 2], [2, 1], [2, 3]]
             stages:
               - cells: {width: 8}

             """, position: "5:19", message: "edge [1, 2] is on a cycle among cell nodes 1, 2, 3"),
        Case(yaml: "name: x\ncell:\n  nodes: 3\n  ops: [none, »conv_7x7]\nstages:\n  - cells: {width: 8}\n", position: "4:15",
             message: "unknown cell op 'conv_7x7' (expected one of: none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3, max_pool_3x3, sep_conv_3x3, dil_conv_3x3)"),
        Case(yaml: "name: x\nstages:\n  - blocks: {width: [16, »16], op: conv}\n", position: "3:26",
             message: "duplicate choice '16' for 'width'"),
        Case(yaml: "name: x\nstages:\n  - blocks: {width: »0, op: conv}\n", position: "3:21", message: "width must be at least 1, got 0"),
        Case(yaml: "name: x\nstages:\n  - »cells: {width: 8}\n", position: "3:5",
             message: "stage 1 uses cells but the space defines no 'cell'"),
        Case(yaml: "name: x\nactivation: »swish\nstages:\n  - blocks: {width: 8, op: conv}\n", position: "2:13",
             message: "unknown activation 'swish' for activation (expected one of: relu, relu6, hardswish, sigmoid, gelu)"),
        Case(yaml: "name: x\nstem:\n  - {op: maxpool, »width: 3}\nstages:\n  - blocks: {width: 8, op: conv}\n", position: "3:19",
             message: "unknown key 'width' in stem layer 0 (maxpool) (expected one of: op, kernel, stride)"),
        Case(yaml: "name: x\nstages: »{blocks: 1}\n", position: "2:9", message: "stages must be a list, got a mapping"),
        Case(yaml: "name: x\nstages:\n  - blocks: {width: 8, op: conv}\nhead:\n  dropout: »1.5\n", position: "5:12",
             message: "dropout must be in [0, 1), got 1.5"),
        Case(yaml: "name: x\nstages:\n  - blocks: {width: 8, op: conv, expansion: »[3, 6]}\n", position: "3:45",
             message: "expansion choices have no effect: no op among [\"conv\"] uses an expansion ratio"),
        Case(yaml: "name: x\ncell:\n  nodes: 3\n  ops: [none]\n  edges: [[0, 1], »[1, 1], [1, 2]]\nstages:\n  - cells: {width: 8}\n",
             position: "5:19", message: "edge [1, 1] is a self-loop"),
        Case(yaml: "»stages:\n  - blocks: {width: 8, op: conv}\n", position: "1:1", message: "missing key 'name' in the search space"),
        Case(yaml: "»", position: "1:1", message: "empty search-space file"),
        Case(yaml: "name: x\nstages:\n  - blocks: {width: 8, op: conv}\n  - »blocks: {width: 8, op: conv}\n    cells: {width: 8}\n",
             position: "4:5", message: "stage 2 must have exactly one of the keys blocks, cells, reduction"),
        Case(yaml: "name: x\nstages:\n  - blocks: {width: 8, op: conv, »width: 9}\n", position: "3:34",
             message: "duplicate key 'width' in stage 1 blocks"),
        Case(yaml: "name: x\ncell:\n  nodes: 4\n  ops: [none, skip_connect]\n  edges: »[[0, 1], [1, 3]]\nstages:\n  - cells: {width: 8}\n",
             position: "5:10", message: "cell node 2 has no incoming edge"),
        Case(yaml: "name: x\nstages:\n  - blocks: {width: 8, op: conv, depth: [1, »[2, 3]]}\n", position: "3:45",
             message: "nested lists are not allowed in the choices of 'depth'"),
        Case(yaml: "name: x\nstages:\n  - blocks: {name: a, width: 8, op: conv}\n  - »blocks: {name: a, width: 8, op: conv}\n",
             position: "4:5", message: "duplicate stage name 'a'"),
    ]

    func testMalformedFilesReportPositionAndMessage() {
        XCTAssertGreaterThanOrEqual(Self.cases.count, 12)
        for (index, c) in Self.cases.enumerated() {
            // The marker and the written position must agree (guards the test data itself).
            let lines = c.yaml.components(separatedBy: "\n")
            let markerLine = lines.firstIndex { $0.contains("»") }!
            let markerColumn = lines[markerLine].distance(from: lines[markerLine].startIndex, to: lines[markerLine].firstIndex(of: "»")!) + 1
            XCTAssertEqual("\(markerLine + 1):\(markerColumn)", c.position, "case \(index): marker and position disagree")
            let yaml = c.yaml.replacingOccurrences(of: "»", with: "")
            XCTAssertThrowsError(try SearchSpace.load(yaml: yaml, fileName: "case\(index).yaml"), "case \(index)") { error in
                XCTAssertEqual("\(error)", "case\(index).yaml:\(c.position): \(c.message)", "case \(index)")
            }
        }
    }

    func testYAMLSyntaxErrorsArePositioned() {
        XCTAssertThrowsError(try SearchSpace.load(yaml: "name: x\nstages: [\n  - a\n", fileName: "syntax.yaml")) { error in
            guard case let SpaceError.invalid(file, line, _, message) = error else { return XCTFail("unexpected \(error)") }
            XCTAssertEqual(file, "syntax.yaml")
            XCTAssertGreaterThanOrEqual(line, 2)
            XCTAssertTrue(message.hasPrefix("YAML syntax error"), message)
        }
    }

    func testUnreadableFile() {
        XCTAssertThrowsError(try SearchSpace.load(path: "/nonexistent/space.yaml")) { error in
            guard case SpaceError.unreadable = error else { return XCTFail("unexpected \(error)") }
        }
    }

    /// Random single-character edits of the shipped files must load or fail with a `SpaceError`,
    /// never crash; whatever loads must decode its samples or fail with a `SpaceError`.
    func testRandomlyCorruptedFilesNeverCrash() throws {
        var rng = SeededGenerator(seed: 99)
        let alphabet = Array("abc xyz019-[]{}:,#\n\"'|*&!%@`")
        var loaded = 0
        var rejected = 0
        for name in ["small", "medium", "large", "nasbench201", "reference/mobilenet_v2"] {
            let original = Array(try String(contentsOfFile: repositoryRoot.appendingPathComponent("SearchSpaces/\(name).yaml").path,
                                            encoding: .utf8))
            for _ in 0..<150 {
                var text = original
                for _ in 0..<(1 + rng.nextInt(below: 3)) {
                    let position = rng.nextInt(below: text.count)
                    switch rng.nextInt(below: 3) {
                    case 0: text.remove(at: position)
                    case 1: text[position] = alphabet[rng.nextInt(below: alphabet.count)]
                    default: text.insert(alphabet[rng.nextInt(below: alphabet.count)], at: position)
                    }
                }
                do {
                    let space = try SearchSpace.load(yaml: String(text), fileName: "fuzz.yaml")
                    loaded += 1
                    var sampler = SeededGenerator(seed: 1)
                    let a = space.sample(using: &sampler)
                    XCTAssertEqual(try space.parse(space.text(of: a)), a)
                    do {
                        _ = try space.network(for: a, inputShape: FeatureShape(channels: 1, height: 8, width: 8), classCount: 10)
                    } catch is SpaceError {}
                } catch is SpaceError {
                    rejected += 1
                }
            }
        }
        XCTAssertGreaterThan(rejected, 100)
        XCTAssertGreaterThan(loaded, 10)
    }
}
