import Foundation
import Engine
import NASCore
import Spaces
import XCTest
import Estimators

/// The repository root, found from this file's path (Tests/EstimatorsTests/CountingTests.swift).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

func loadSpace(_ name: String) throws -> SearchSpace {
    try SearchSpace.load(path: repositoryRoot.appendingPathComponent("SearchSpaces/\(name).yaml").path)
}

func assertWithin(_ value: Double, _ reference: Double, relative: Double, _ message: String = "",
                  file: StaticString = #filePath, line: UInt = #line) {
    let error = abs(value - reference) / abs(reference)
    XCTAssertLessThanOrEqual(error, relative, "\(message): \(value) vs \(reference) (relative error \(error))", file: file, line: line)
}

final class CountingTests: XCTestCase {
    let imageNet = FeatureShape(channels: 3, height: 224, width: 224)

    func testResNet18MatchesTorchvision() throws {
        let space = try loadSpace("reference/resnet18")
        XCTAssertTrue(space.isFixed)
        let graph = try space.network(for: Architecture(choices: []), inputShape: imageNet, classCount: 1000)
        let cost = try graph.cost()
        XCTAssertEqual(cost.parameters, 11_689_512)
        assertWithin(Double(cost.multiplyAccumulates), 1.814e9, relative: 0.01, "ResNet-18 MACs")
        XCTAssertEqual(cost.flops, 2 * cost.multiplyAccumulates)
    }

    func testMobileNetV2MatchesTorchvision() throws {
        let space = try loadSpace("reference/mobilenet_v2")
        let graph = try space.network(for: Architecture(choices: []), inputShape: imageNet, classCount: 1000)
        let cost = try graph.cost()
        XCTAssertEqual(cost.parameters, 3_504_872)
        assertWithin(Double(cost.multiplyAccumulates), 0.3008e9, relative: 0.01, "MobileNetV2 MACs")
    }

    func testReferenceCNNCountsByHand() throws {
        let space = try loadSpace("reference/cnn")
        let graph = try space.network(for: Architecture(choices: []), inputShape: FeatureShape(channels: 1, height: 8, width: 8),
                                      classCount: 10)
        let cost = try graph.cost()
        // conv 1->16 3x3: 144, BN 32; conv 16->32 3x3: 4608, BN 64; linear 32*10+10 = 330.
        XCTAssertEqual(cost.parameters, 144 + 32 + 4608 + 64 + 330)
        // MACs: 16·8·8·9 + 32·4·4·144 + 320.
        XCTAssertEqual(cost.multiplyAccumulates, 16 * 64 * 9 + 32 * 16 * 144 + 320)
        XCTAssertEqual(cost.layers.first { $0.name == "stage1/block0/conv" }?.outputShape, FeatureShape(channels: 32, height: 4, width: 4))
    }

    func testPeakActivationMemoryOfAChain() throws {
        var graph = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 4, width: 4))
        var x = graph.add("conv", .conv2d(Conv2dAttributes(outChannels: 8, kernel: 3, padding: 1)), graph.input)  // 128
        x = graph.add("relu", .activation(.relu), x)  // 128
        x = graph.add("gap", .globalAvgPool, x)  // 8
        graph.add("fc", .linear(outFeatures: 2, bias: true), x)
        // Largest moment: conv output and relu output both alive (128 + 128), input already freed.
        XCTAssertEqual(try graph.cost().peakActivationBytes, 256 * 4)
        var residual = NetworkGraph(inputShape: FeatureShape(channels: 2, height: 2, width: 2))
        let a = residual.add("a", .activation(.relu), residual.input)
        let b = residual.add("b", .activation(.relu), a)
        let c = residual.add("c", .add, residual.input, b)
        residual.add("gap", .globalAvgPool, c)
        // At node c: input (8), b (8), c (8) alive; a was freed after b.
        XCTAssertEqual(try residual.cost().peakActivationBytes, 24 * 4)
    }
}

/// NAS-Bench-201 params and FLOPs against the numbers NASLib stored from NB201.
final class NASBench201CountingTests: XCTestCase {
    static let dataPath = repositoryRoot.deletingLastPathComponent()
        .appendingPathComponent("shared/benchmarks/nasbench201/naslib_zc_nasbench201_subset.json").path

    /// NASLib op tuple → NB201 string. NASLib ops: [skip_connect, none, nor_conv_3x3, nor_conv_1x1, avg_pool_3x3];
    /// edges (1,2) (1,3) (1,4) (2,3) (2,4) (3,4) with nodes numbered from 1.
    static func nasBench201String(naslibKey: String) -> String? {
        let ops = ["skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3"]
        let digits = naslibKey.filter(\.isNumber).compactMap { $0.wholeNumberValue }
        guard digits.count == 6, digits.allSatisfy({ $0 < ops.count }) else { return nil }
        let o = digits.map { ops[$0] }
        return "|\(o[0])~0|+|\(o[1])~0|\(o[3])~1|+|\(o[2])~0|\(o[4])~1|\(o[5])~2|"
    }

    func testParamsAndFlopsMatchNASBench201() throws {
        guard FileManager.default.fileExists(atPath: Self.dataPath) else {
            throw XCTSkip("NAS-Bench-201 data not found at \(Self.dataPath)")
        }
        // Some zero-cost scores are written as (-)Infinity, which strict JSON readers reject.
        let raw = try String(contentsOfFile: Self.dataPath, encoding: .utf8)
        let data = Data(raw.replacingOccurrences(of: "-Infinity", with: "null")
            .replacingOccurrences(of: "Infinity", with: "null").utf8)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: [String: [String: Any]]])
        let space = try loadSpace("nasbench201")
        let datasets: [(String, FeatureShape, Int)] = [
            ("cifar10", FeatureShape(channels: 3, height: 32, width: 32), 10),
            ("cifar100", FeatureShape(channels: 3, height: 32, width: 32), 100),
            ("ImageNet16-120", FeatureShape(channels: 3, height: 16, width: 16), 120),
        ]
        var checked = 0
        var worstParams = 0.0
        var worstFlops = 0.0
        for (dataset, shape, classes) in datasets {
            let entries = try XCTUnwrap(json[dataset], "dataset \(dataset) missing")
            XCTAssertGreaterThan(entries.count, 700)
            for (key, entry) in entries {
                let text = try XCTUnwrap(Self.nasBench201String(naslibKey: key), "bad key \(key)")
                let architecture = try space.parse(text)
                XCTAssertEqual(space.text(of: architecture), text)
                let cost = try space.network(for: architecture, inputShape: shape, classCount: classes).cost()
                let params = try XCTUnwrap((entry["params"] as? [String: Any])?["score"] as? Double)
                let flops = try XCTUnwrap((entry["flops"] as? [String: Any])?["score"] as? Double)
                let paramsError = abs(Double(cost.parameters) / 1e6 - params) / params
                let flopsError = abs(Double(cost.nasBench201Flops) / 1e6 - flops) / flops
                worstParams = max(worstParams, paramsError)
                worstFlops = max(worstFlops, flopsError)
                XCTAssertLessThanOrEqual(paramsError, 0.001, "\(dataset) \(text): params \(cost.parameters) vs \(params)M")
                XCTAssertLessThanOrEqual(flopsError, 0.01, "\(dataset) \(text): FLOPs \(cost.nasBench201Flops) vs \(flops)M")
                checked += 1
            }
        }
        XCTAssertEqual(checked, 725 + 725 + 724)
        print("NB201: checked \(checked) architectures; worst relative error params \(worstParams), FLOPs \(worstFlops)")
    }
}
