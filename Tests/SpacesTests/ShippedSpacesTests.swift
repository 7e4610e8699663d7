import Foundation
import Engine
import NASCore
import Spaces
import XCTest

final class ShippedSpacesTests: XCTestCase {
    func testAllShippedSpacesLoad() throws {
        for name in shippedSpaceNames {
            let space = try loadSpace(name)
            XCTAssertFalse(space.name.isEmpty)
            XCTAssertEqual(space.decisions.count, Set(space.decisions.map(\.name)).count, "\(name): decision names unique")
        }
        let decisionCounts = ["small": 13, "medium": 57, "large": 27, "nasbench201": 6]
        for (name, count) in decisionCounts { XCTAssertEqual(try loadSpace(name).decisions.count, count, name) }
        XCTAssertTrue(try loadSpace("reference/resnet18").isFixed)
        XCTAssertTrue(try loadSpace("reference/cnn").isFixed)
    }

    func testShippedLookupFromTheWorkingDirectoryAndEnvironment() throws {
        // `swift test` runs in the package root, so the upward search finds SearchSpaces/.
        XCTAssertEqual(try SearchSpace.shipped(named: "small").name, "small")
        XCTAssertEqual(try SearchSpace.shipped(named: "reference/cnn").name, "reference-cnn")
        XCTAssertThrowsError(try SearchSpace.shipped(named: "no-such-space")) { error in
            guard case SpaceError.notFound = error else { return XCTFail("unexpected \(error)") }
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("naslab-spaces-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "name: from-env\nstages:\n  - blocks: {width: 4, op: conv}\n"
            .write(to: directory.appendingPathComponent("small.yaml"), atomically: true, encoding: .utf8)
        setenv(SearchSpace.directoryEnvironmentVariable, directory.path, 1)
        defer { unsetenv(SearchSpace.directoryEnvironmentVariable) }
        XCTAssertEqual(try SearchSpace.shipped(named: "small").name, "from-env")
    }

    func testNASBench201SizeIsExactly15625() throws {
        let space = try loadSpace("nasbench201")
        XCTAssertEqual(space.decisions.count, 6)
        XCTAssertEqual(space.size, BigUnsignedInteger(15_625))
        let all = try XCTUnwrap(space.enumerate())
        XCTAssertEqual(all.count, 15_625)
        XCTAssertEqual(Set(all.map { space.text(of: $0) }).count, 15_625)
    }

    func testSmallSizeMatchesBruteForceEnumeration() throws {
        let space = try loadSpace("small")
        let all = try XCTUnwrap(space.enumerate(), "small must be enumerable")
        // Distinct networks: count distinct decoded graphs on a sample of the enumeration is too
        // slow; distinct canonical texts is the independent check of the closed form.
        XCTAssertEqual(Set(all.map { space.text(of: $0) }).count, all.count)
        XCTAssertEqual(BigUnsignedInteger(all.count), space.size)
        XCTAssertEqual(all.count, 25_088)
        XCTAssertGreaterThanOrEqual(all.count, 1_000)
        XCTAssertLessThanOrEqual(all.count, 100_000)
    }

    func testMediumAndLargeSizesMatchClosedForms() throws {
        // medium: per block 3 kernels × 2 expansions of mbconv + skip = 7 settings.
        func stage(widths: Int, depths: [Int]) -> BigUnsignedInteger {
            depths.reduce(BigUnsignedInteger(0)) { $0 + BigUnsignedInteger(7).power($1) } * BigUnsignedInteger(widths)
        }
        let medium = BigUnsignedInteger(2) /* stem */ * BigUnsignedInteger(2) /* head conv */
            * stage(widths: 2, depths: [1, 2, 3]) * stage(widths: 3, depths: [1, 2, 3])
            * stage(widths: 3, depths: [1, 2, 3, 4]) * stage(widths: 3, depths: [1, 2, 3]) * stage(widths: 2, depths: [1, 2])
        let mediumSpace = try loadSpace("medium")
        XCTAssertEqual(mediumSpace.size, medium)
        XCTAssertEqual(mediumSpace.size.description, "4302773569382400")
        XCTAssertGreaterThanOrEqual(mediumSpace.size.doubleValue, 1e8)

        // large: three cells of 7^6, cell count and width 3×3 per cell stage, 2 reductions × 3 widths, stem 3.
        let cellStage = BigUnsignedInteger(7).power(6) * BigUnsignedInteger(9)
        let large = BigUnsignedInteger(3) * cellStage * cellStage * cellStage * BigUnsignedInteger(9)
        let largeSpace = try loadSpace("large")
        XCTAssertEqual(largeSpace.size, large)
        XCTAssertGreaterThanOrEqual(largeSpace.size.doubleValue, 1e15)
        XCTAssertNil(largeSpace.enumerate(limit: 1_000_000))
    }

    func testEverySampledArchitectureDecodesForAllInputShapes() throws {
        for name in shippedSpaceNames where !name.hasPrefix("reference/") {
            let space = try loadSpace(name)
            var rng = SeededGenerator(seed: 7)
            for _ in 0..<150 {
                let architecture = space.sample(using: &rng)
                for (shape, classes) in inputShapes {
                    let graph = try space.network(for: architecture, inputShape: shape, classCount: classes)
                    let shapes = try graph.inferShapes()
                    XCTAssertEqual(shapes.last, FeatureShape(features: classes), "\(name) \(space.text(of: architecture))")
                }
            }
        }
        for name in shippedSpaceNames where name.hasPrefix("reference/") {
            let space = try loadSpace(name)
            for (shape, classes) in inputShapes {
                let graph = try space.network(for: Architecture(choices: []), inputShape: shape, classCount: classes)
                XCTAssertEqual(try graph.inferShapes().last, FeatureShape(features: classes))
            }
        }
    }

    func testExtremeArchitecturesDecodeOnTinyInputs() throws {
        // All-first and all-last options (deepest, widest) for every space, on a 1×8×8 and a 1×1×1 input.
        for name in ["small", "medium", "large", "nasbench201"] {
            let space = try loadSpace(name)
            let first = space.canonical(Architecture(choices: space.decisions.map { _ in 0 }))
            let last = space.canonical(Architecture(choices: space.decisions.map { $0.options.count - 1 }))
            for architecture in [first, last] {
                for shape in [FeatureShape(channels: 1, height: 8, width: 8), FeatureShape(channels: 2, height: 1, width: 1),
                              FeatureShape(channels: 3, height: 7, width: 7)] {
                    XCTAssertNoThrow(try space.network(for: architecture, inputShape: shape, classCount: 3), "\(name) \(shape)")
                }
            }
        }
    }

    func testLayerNamesAreReadablePaths() throws {
        let medium = try loadSpace("medium")
        let architecture = try medium.parse(
            "stem.width=16 stage2.depth=1 stage2.width=24 stage2.block0.op=mbconv stage2.block0.kernel=5 stage2.block0.expansion=6 "
                + "stage3.depth=1 stage3.width=32 stage3.block0.op=skip stage4.depth=1 stage4.width=64 stage4.block0.op=skip "
                + "stage5.depth=1 stage5.width=96 stage5.block0.op=skip stage6.depth=1 stage6.width=160 stage6.block0.op=skip head.width=256")
        let graph = try medium.network(for: architecture, inputShape: FeatureShape(channels: 3, height: 32, width: 32), classCount: 10)
        let names = Set(graph.nodes.map(\.name))
        for expected in ["stem/conv", "stem/bn", "stem/relu6", "stage1/block0/depthwise/conv", "stage2/block0/expand/conv",
                         "stage2/block0/depthwise/conv", "stage2/block0/project/bn", "stage3/block0/projection/conv",
                         "head/conv", "head/pool", "head/dropout", "head/classifier"] {
            XCTAssertTrue(names.contains(expected), "missing \(expected) in \(names.sorted())")
        }
        guard let depthwise = graph.nodes.first(where: { $0.name == "stage2/block0/depthwise/conv" })!.op as? Conv2d else {
            return XCTFail("depthwise is not a conv")
        }
        XCTAssertEqual(depthwise.kernel, 5)
        XCTAssertEqual(depthwise.groups, 16 * 6)
        XCTAssertEqual(depthwise.stride, 2)

        let nb201 = try loadSpace("nasbench201")
        let cell = try nb201.parse("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|")
        let g = try nb201.network(for: cell, inputShape: FeatureShape(channels: 3, height: 32, width: 32), classCount: 10)
        let nbNames = Set(g.nodes.map(\.name))
        for expected in ["stem/conv", "stem/bn", "stage1/cell0/edge(1<-0)/conv", "stage1/cell4/edge(2<-1)/avgpool",
                         "stage1/cell0/edge(3<-1)/relu", "stage1/cell0/node3", "stage2/conv_a/conv", "stage2/downsample/avgpool",
                         "stage5/cell4/edge(3<-1)/bn", "head/0/bn", "head/1/relu", "head/classifier"] {
            XCTAssertTrue(nbNames.contains(expected), "missing \(expected)")
        }
        XCTAssertFalse(nbNames.contains("stage1/cell0/edge(2<-0)/conv"), "none edges add no layer")
        XCTAssertEqual(g.nodes.filter { $0.name.hasSuffix("/conv") && $0.name.contains("/cell") }.count, 15 * 2)
    }

    func testStrideRuleOnTinyInputs() throws {
        // medium has strides 2 (stem) and four stride-2 stages: 8 → 4 → 2 → 1 → 1 → 1.
        let medium = try loadSpace("medium")
        var rng = SeededGenerator(seed: 3)
        let graph = try medium.network(for: medium.sample(using: &rng), inputShape: FeatureShape(channels: 1, height: 8, width: 8),
                                       classCount: 10)
        let shapes = try graph.inferShapes()
        let beforePool = shapes[graph.nodes.firstIndex { $0.name == "head/pool" }! - 1]
        XCTAssertEqual(beforePool.height, 1)
        for node in graph.nodes { if let c = node.op as? Conv2d { XCTAssertGreaterThanOrEqual(c.stride, 1) } }
    }
}
