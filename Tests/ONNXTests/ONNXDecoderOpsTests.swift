import Datasets
import Engine
import Foundation
import NASCore
import ONNX
import XCTest

/// The decoder ops in ONNX: `upsample` → `Resize` (nearest: asymmetric + floor; bilinear: linear +
/// half_pixel) and `convTranspose2d` → `ConvTranspose` (with output_padding), checked by onnx's
/// checker and onnxruntime against the engine on a small segmentation decoder whose per-pixel
/// logits are the model's output, kept `N×C×H×W` (a spatial output is not flattened).
final class ONNXDecoderOpsTests: XCTestCase {
    /// conv (s2) → relu → convTranspose2d (k3 s2 p1 op1, bias) → bilinear ×3, concatenated with the
    /// input upsampled (nearest ×3) and a k2 s2 transposed convolution upsampled (bilinear ×2) → conv.
    static func segmentationGraph() -> NetworkGraph {
        var g = NetworkGraph(inputShape: FeatureShape(channels: 3, height: 8, width: 8))
        let enc = g.add("enc", Conv2d(outChannels: 6, kernel: 3, stride: 2, padding: 1, bias: true), g.input)          // 6×4×4
        let relu = g.add("relu", Activation(.relu), enc)
        let dec = g.add("dec", ConvTranspose2d(outChannels: 4, kernel: 3, stride: 2, padding: 1, outputPadding: 1, bias: true), relu) // 4×8×8
        let up = g.add("up", Upsample(scale: 3, mode: .bilinear), dec)                                               // 4×24×24
        let skip = g.add("skip", Upsample(scale: 3, mode: .nearest), g.input)                                        // 3×24×24
        let pair = g.add("pair", ConvTranspose2d(outChannels: 2, kernel: 2, stride: 2), relu)                        // 2×8×8
        let pairUp = g.add("pair_up", Upsample(scale: 3, mode: .bilinear), pair)                                     // 2×24×24
        let cat = g.add("cat", Concat(), up, skip, pairUp)                                                           // 9×24×24
        g.add("head", Conv2d(outChannels: 2, kernel: 3, padding: 1, bias: true), cat)                                // 2×24×24
        return g
    }

    func testDecoderOpsMatchOnnxRuntime() throws {
        _ = try pythonWithONNXRuntime()
        let graph = Self.segmentationGraph()
        XCTAssertEqual(try graph.inferShapes().last, FeatureShape(channels: 2, height: 24, width: 24))
        let s = graph.inputShape
        let (images, _) = try digitsImages(3, channels: 3, size: 8)
        let normalization = Normalization(mean: [4, 6, 9], std: [5, 3, 8])
        var standardized = images
        normalization.apply(to: &standardized, sampleShape: s)
        let n = images.count / s.elementCount
        let x = Tensor(shape: [n, s.channels, s.height, s.width], values: standardized)
        var cases = [ONNXCase]()
        for opset in [13, 17, 19, 21] {
            var rng = SeededGenerator(seed: 11)
            let network = try Network(graph: graph, rng: &rng)
            try randomizeWeights(network, calibration: x, seed: 12)
            let y = try network.forward(x, training: false)
            XCTAssertEqual(y.shape, [n, 2, 24, 24])
            let data = try ONNXExporter(opset: opset).serialized(ONNXNetwork(
                graph: graph, tensors: network.namedTensors(), input: .floats(mean: normalization.mean, std: normalization.std)))
            let model = try Onnx_ModelProto(serializedBytes: data)
            let types = model.graph.node.map(\.opType)
            XCTAssertEqual(types.filter { $0 == "Resize" }.count, 3, "opset \(opset)")
            XCTAssertEqual(types.filter { $0 == "ConvTranspose" }.count, 2, "opset \(opset)")
            cases.append(ONNXCase(name: "decoder ops, opset \(opset)", onnx: data, floatInput: images, tokenInput: nil,
                                  inputShape: [n, s.channels, s.height, s.width], expected: y.values, expectedShape: [n, 2, 24, 24]))
        }
        let results = try runONNXRuntime(cases)
        assertMatches(results, cases)
        for c in cases { XCTAssertEqual(results[c.name]?.opset, Int(c.name.split(separator: " ").last!), c.name) }
        print(cases.map { String(format: "%@: max |Δ| %.2e (max |output| %.2f)", $0.name, results[$0.name]?.maxAbsDiff ?? .nan,
                                 results[$0.name]?.maxAbsExpected ?? .nan) }.joined(separator: "\n"))
    }

    /// The exported attributes are the ones that reproduce PyTorch's semantics.
    func testResizeAndConvTransposeAttributes() throws {
        let graph = Self.segmentationGraph()
        var rng = SeededGenerator(seed: 1)
        let network = try Network(graph: graph, rng: &rng)
        let model = try ONNXExporter().model(ONNXNetwork(graph: graph, tensors: network.namedTensors(), input: .floats(mean: nil, std: nil)))
        func attributes(_ name: String) throws -> [String: Onnx_AttributeProto] {
            let node = try XCTUnwrap(model.graph.node.first { $0.name == name }, name)
            return Dictionary(uniqueKeysWithValues: node.attribute.map { ($0.name, $0) })
        }
        func text(_ a: Onnx_AttributeProto?) -> String? { a.map { String(decoding: $0.s, as: UTF8.self) } }
        let nearest = try attributes("skip")
        XCTAssertEqual(text(nearest["mode"]), "nearest")
        XCTAssertEqual(text(nearest["coordinate_transformation_mode"]), "asymmetric")
        XCTAssertEqual(text(nearest["nearest_mode"]), "floor")
        let bilinear = try attributes("up")
        XCTAssertEqual(text(bilinear["mode"]), "linear")
        XCTAssertEqual(text(bilinear["coordinate_transformation_mode"]), "half_pixel")
        let resize = try XCTUnwrap(model.graph.node.first { $0.name == "up" })
        XCTAssertEqual(resize.input.count, 3)
        XCTAssertEqual(resize.input[1], "", "no roi")
        let scales = try XCTUnwrap(model.graph.initializer.first { $0.name == resize.input[2] })
        XCTAssertEqual(scales.dims, [4])
        let deconv = try attributes("dec")
        XCTAssertEqual(deconv["kernel_shape"]?.ints, [3, 3])
        XCTAssertEqual(deconv["strides"]?.ints, [2, 2])
        XCTAssertEqual(deconv["pads"]?.ints, [1, 1, 1, 1])
        XCTAssertEqual(deconv["output_padding"]?.ints, [1, 1])
        let node = try XCTUnwrap(model.graph.node.first { $0.name == "dec" })
        XCTAssertEqual(node.opType, "ConvTranspose")
        XCTAssertEqual(node.input.count, 3, "input, weight [in, out, k, k], bias")
        let weight = try XCTUnwrap(model.graph.initializer.first { $0.name == node.input[1] })
        XCTAssertEqual(weight.dims, [6, 4, 3, 3])
        XCTAssertEqual(try XCTUnwrap(model.graph.node.first { $0.name == "pair" }).input.count, 2, "no bias")
    }
}
