import Engine
import NASCore
import Spaces
import XCTest

/// Segmentation and detection spaces: the shipped ones decode to the task's output shape, the
/// decoder section's errors carry file:line:column, the decoder's skips and target resolution.
/// (`naslab spaces --json` is checked in LabTests/DenseSearchRecordTests, next to the CLI.)
final class DenseSpacesTests: XCTestCase {
    static let segmentationSpaces = ["segmentation-small", "segmentation-medium", "segmentation-large", "reference/unet"]
    static let detectionSpaces = ["detection-small", "detection-medium", "detection-large", "reference/centernet"]
    let scene = FeatureShape(channels: 1, height: 64, width: 64)

    func testShippedDenseSpacesDecodeToTheirTasksOutputs() throws {
        for (task, names, output) in [(TaskKind.segmentation, Self.segmentationSpaces, FeatureShape(channels: 11, height: 64, width: 64)),
                                      (TaskKind.detection, Self.detectionSpaces, FeatureShape(channels: 14, height: 16, width: 16))] {
            for name in names {
                let space = try loadSpace(name)
                XCTAssertEqual(space.task, task, name)
                XCTAssertEqual(space.isFixed, name.hasPrefix("reference/"), name)
                var rng = SeededGenerator(seed: 17)
                var upsampling = Set<String>()
                for _ in 0..<20 {
                    let a = space.sample(using: &rng)
                    let graph = try space.network(for: a, inputShape: scene, classCount: 10)
                    XCTAssertEqual(try graph.inferShapes().last, output, "\(name): \(space.text(of: a))")
                    // Also 32×32 (sides divisible by the encoder's stride, 8 or 16); not 28×28 (docs: "the stride rule").
                    let small = try space.network(for: a, inputShape: FeatureShape(channels: 1, height: 32, width: 32), classCount: 10)
                    XCTAssertEqual(try small.inferShapes().last, FeatureShape(channels: output.channels, height: output.height / 2,
                                                                              width: output.width / 2), name)
                    XCTAssertThrowsError(try space.network(for: a, inputShape: FeatureShape(channels: 1, height: 28, width: 28),
                                                           classCount: 10), name)
                    XCTAssertEqual(graph.nodes.last?.name, "head/classifier", name)
                    for node in graph.nodes where node.name.hasPrefix("decoder/level1/") { upsampling.insert(node.op.kind) }
                    XCTAssertNotNil(Objective(task: task).description)
                    try Objective(task: task).checkOutput(try graph.inferShapes().last!, input: scene, classCount: 10)
                }
                if !space.isFixed {
                    // The searched spaces offer every upsampling mode (nearest / bilinear: upsample op; transposed: convTranspose2d).
                    XCTAssertTrue(upsampling.isSuperset(of: ["upsample", "convTranspose2d"]), "\(name): \(upsampling.sorted())")
                    let names = space.decisions.map(\.name)
                    for d in ["decoder.upsample", "decoder.level1.skip", "decoder.level1.width", "decoder.level1.depth"] {
                        XCTAssertTrue(names.contains(d), "\(name): \(names)")
                    }
                    XCTAssertEqual(names.contains("decoder.head_width"), task == .detection, "\(name): \(names)")
                }
            }
        }
    }

    func testReferenceNetworksHaveTheirPublishedDecoders() throws {
        let unet = try loadSpace("reference/unet")
        let u = try unet.network(for: try unet.parse(SearchSpace.fixedArchitectureText), inputShape: scene, classCount: 10)
        // Three levels, each bilinear ×2 + skip concat + two conv blocks.
        XCTAssertEqual(u.nodes.filter { $0.name.hasSuffix("/upsample") }.count, 3)
        XCTAssertEqual(u.nodes.filter { $0.name.hasSuffix("/concat") }.count, 3)
        let centernet = try loadSpace("reference/centernet")
        let c = try centernet.network(for: try centernet.parse(SearchSpace.fixedArchitectureText), inputShape: scene, classCount: 10)
        XCTAssertEqual(c.nodes.filter { $0.op.kind == "convTranspose2d" }.count, 2)
        // The CenterNet head: conv 3×3 (head width 64, bias) → 1×1 to K + 4.
        let shapes = try c.inferShapes()
        let headConv = try XCTUnwrap(c.nodes.firstIndex { $0.name.hasPrefix("head/conv") && $0.op.kind == "conv2d" })
        XCTAssertEqual(shapes[headConv], FeatureShape(channels: 64, height: 16, width: 16))
    }

    /// A level's skip takes the latest encoder feature map of twice the level's input resolution
    /// (here: stage1's output, not the stem's of the same 32×32 size), and without a skip there is
    /// no concatenation.
    func testSkipTakesTheLatestEncoderMapOfTheLevelsOutputResolution() throws {
        let yaml = """
            name: skips
            task: segmentation
            stem:
              - {op: conv, width: 8, kernel: 3, stride: 2}
            stages:
              - blocks: {width: 12, op: conv}
              - blocks: {width: 16, op: conv, stride: 2}
            decoder:
              upsample: nearest
              levels:
                - {skip: [true, false], width: 8}
                - {skip: false, width: 8}
            """
        let space = try SearchSpace.load(yaml: yaml, fileName: "skips.yaml")
        XCTAssertEqual(space.decisions.map(\.name), ["decoder.level1.skip"])
        let input = FeatureShape(channels: 1, height: 64, width: 64)
        let on = try space.network(for: try space.parse("decoder.level1.skip=true"), inputShape: input, classCount: 3)
        let concat = try XCTUnwrap(on.nodes.first { $0.name == "decoder/level1/concat" })
        let shapes = try on.inferShapes()
        let skip = on.nodes[concat.inputs[1]]
        XCTAssertTrue(skip.name.hasPrefix("stage1/"), skip.name)
        XCTAssertEqual(shapes[concat.inputs[1]], FeatureShape(channels: 12, height: 32, width: 32))
        XCTAssertEqual(shapes[on.nodes.firstIndex { $0.name == "decoder/level1/concat" }!], FeatureShape(channels: 28, height: 32, width: 32))
        XCTAssertEqual(shapes.last, FeatureShape(channels: 4, height: 64, width: 64))
        let off = try space.network(for: try space.parse("decoder.level1.skip=false"), inputShape: input, classCount: 3)
        XCTAssertFalse(off.nodes.contains { $0.op.kind == "concat" })
    }

    func testMalformedDecodersAreErrorsWithPositions() {
        let encoder = "stages:\n  - blocks: {width: 8, op: conv, stride: 2}\n"
        let cases: [(String, String)] = [
            ("name: t\ntask: segmentation\n" + encoder + "decoder:\n  upsample: cubic\n  levels:\n    - {width: 8}\n",
             "t.yaml:6:13: unknown upsampling 'cubic' (expected one of: nearest, bilinear, transposed)"),
            ("name: t\ntask: segmentation\n" + encoder + "decoder:\n  upsample: [nearest, cubic]\n  levels:\n    - {width: 8}\n",
             "t.yaml:6:23: unknown upsampling 'cubic' (expected one of: nearest, bilinear, transposed)"),
            ("name: t\n" + encoder + "decoder:\n  levels:\n    - {width: 8}\n",
             "t.yaml:5:3: a decoder is for segmentation and detection spaces (this space's task is image_classification)"),
            ("name: t\ntask: segmentation\n" + encoder,
             "t.yaml:1:1: a segmentation space needs a 'decoder' (levels of upsampling back to the input resolution)"),
            ("name: t\ntask: detection\n" + encoder,
             "t.yaml:1:1: a detection space needs a 'decoder' (levels of upsampling back to the stride-4 resolution)"),
            ("name: t\ntask: segmentation\n" + encoder + "decoder:\n  head_width: 16\n  levels:\n    - {width: 8}\n",
             "t.yaml:6:15: head_width is for detection spaces (the CenterNet head's 3×3 convolution)"),
            ("name: t\ntask: detection\n" + encoder + "decoder:\n  levels:\n    - {width: 8}\nhead: {dropout: 0.1}\n",
             "t.yaml:8:7: the head of a detection space is fixed by its task (\(TaskKind.detection.head)): shape the decoder instead"),
            ("name: t\ntask: segmentation\n" + encoder + "decoder:\n  levels:\n    - {width: 8}\nhead: {pool: avg}\n",
             "t.yaml:8:7: the head of a segmentation space is fixed by its task (\(TaskKind.segmentation.head)): shape the decoder instead"),
            ("name: t\ntask: segmentation\n" + encoder + "decoder:\n  levels:\n    - {skip: maybe, width: 8}\n",
             "t.yaml:7:14: skip must be true or false, got 'maybe'"),
            ("name: t\ntask: segmentation\n" + encoder + "decoder:\n  levels:\n    - {skip: [true, 2], width: 8}\n",
             "t.yaml:7:21: skip must be true or false, got '2'"),
            ("name: t\ntask: segmentation\n" + encoder + "decoder:\n  levels: []\n",
             "t.yaml:6:11: decoder levels must not be empty"),
            ("name: t\ntask: segmentation\n" + encoder + "decoder:\n  levels:\n    - {skip: true}\n",
             "t.yaml:7:7: missing key 'width' in decoder level 1"),
            ("name: t\ntask: segmentation\n" + encoder + "decoder:\n  levels:\n    - {width: 8, kernel: 3}\n",
             "t.yaml:7:18: unknown key 'kernel' in decoder level 1 (expected one of: skip, width, depth)"),
        ]
        for (yaml, message) in cases {
            XCTAssertThrowsError(try SearchSpace.load(yaml: yaml, fileName: "t.yaml"), yaml) { XCTAssertEqual("\($0)", message, yaml) }
        }
    }

    func testDecoderThatMissesTheTargetResolutionIsUndecodable() throws {
        let segmentation = """
            name: short
            task: segmentation
            stages:
              - blocks: {width: 8, op: conv, stride: 2}
              - blocks: {width: 8, op: conv, stride: 2}
            decoder:
              levels:
                - {skip: false, width: 8}
            """
        let space = try SearchSpace.load(yaml: segmentation, fileName: "short.yaml")
        let a = try space.parse(SearchSpace.fixedArchitectureText)
        XCTAssertThrowsError(try space.network(for: a, inputShape: scene, classCount: 10)) {
            XCTAssertEqual("\($0)", "cannot decode architecture: the decoder of space 'short' ends at 32x32 but segmentation of 64x64 "
                + "inputs needs 64x64 (stride 1): the encoder's stride must be 2^(decoder levels) × 1")
        }
        // For detection (stride 4) the same encoder and decoder overshoot: 64×64 → 16×16 → 32×32, not 16×16…
        let detection = segmentation.replacingOccurrences(of: "task: segmentation", with: "task: detection")
            .replacingOccurrences(of: "name: short", with: "name: deep")
        let d = try SearchSpace.load(yaml: detection, fileName: "deep.yaml")
        XCTAssertThrowsError(try d.network(for: a, inputShape: scene, classCount: 10)) {
            XCTAssertEqual("\($0)", "cannot decode architecture: the decoder of space 'deep' ends at 32x32 but detection of 64x64 "
                + "inputs needs 16x16 (stride 4): the encoder's stride must be 2^(decoder levels) × 4")
        }
        // … and on 32×32 inputs: 8×8 → 16×16, not 8×8.
        XCTAssertThrowsError(try d.network(for: a, inputShape: FeatureShape(channels: 1, height: 32, width: 32), classCount: 10)) {
            XCTAssertTrue("\($0)".contains("ends at 16x16 but detection of 32x32 inputs needs 8x8"), "\($0)")
        }
        // Detection inputs must be divisible by the stride.
        XCTAssertThrowsError(try d.network(for: a, inputShape: FeatureShape(channels: 1, height: 30, width: 30), classCount: 10)) {
            XCTAssertTrue("\($0)".contains("divisible by 4"), "\($0)")
        }
        // A skip needs an encoder map of the level's output resolution.
        let noMap = """
            name: nomap
            task: segmentation
            stages:
              - blocks: {width: 8, op: conv, stride: 2}
            decoder:
              levels:
                - {skip: true, width: 8}
            """
        let n = try SearchSpace.load(yaml: noMap, fileName: "nomap.yaml")
        XCTAssertThrowsError(try n.network(for: try n.parse(SearchSpace.fixedArchitectureText), inputShape: scene, classCount: 10)) {
            XCTAssertTrue("\($0)".contains("decoder.level1 has a skip connection but the encoder has no feature map of 64x64"), "\($0)")
        }
    }
}
