import XCTest
import Engine
import NASCore

final class NetworkGraphTests: XCTestCase {
    func testShapesOfSmallCNN() throws {
        var g = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 28, width: 28))
        var x = g.add("conv1", .conv2d(Conv2dAttributes(outChannels: 16, kernel: 3, stride: 2, padding: 1)), g.input)
        let skip = x
        x = g.add("conv2", .conv2d(Conv2dAttributes(outChannels: 16, kernel: 3, padding: 1, groups: 16)), x)
        x = g.add("sum", .add, inputs: [x, skip])
        x = g.add("cat", .concat, inputs: [x, skip])
        x = g.add("pool", .maxPool(PoolAttributes(kernel: 3, stride: 2, padding: 1)), x)
        x = g.add("gap", .globalAvgPool, x)
        x = g.add("fc", .linear(outFeatures: 10, bias: true), x)
        let shapes = try g.inferShapes()
        XCTAssertEqual(shapes[1], FeatureShape(channels: 16, height: 14, width: 14))
        XCTAssertEqual(shapes[4], FeatureShape(channels: 32, height: 14, width: 14))
        XCTAssertEqual(shapes[5], FeatureShape(channels: 32, height: 7, width: 7))
        XCTAssertEqual(shapes.last, FeatureShape(features: 10))
    }

    func testBadGraphsAreReported() {
        var g = NetworkGraph(inputShape: FeatureShape(channels: 3, height: 4, width: 4))
        g.add("conv", .conv2d(Conv2dAttributes(outChannels: 8, kernel: 3, groups: 2)), g.input)
        XCTAssertThrowsError(try g.inferShapes())
        var h = NetworkGraph(inputShape: FeatureShape(channels: 3, height: 4, width: 4))
        h.add("fc", .linear(outFeatures: 2, bias: true), h.input)
        XCTAssertThrowsError(try h.inferShapes())
        var k = NetworkGraph(inputShape: FeatureShape(channels: 3, height: 2, width: 2))
        k.add("conv", .conv2d(Conv2dAttributes(outChannels: 8, kernel: 5)), k.input)
        XCTAssertThrowsError(try k.inferShapes())
    }

    func testArityErrorsNameTheNode() {
        var g = NetworkGraph(inputShape: FeatureShape(channels: 3, height: 4, width: 4))
        g.add("sum", .add, g.input)
        XCTAssertThrowsError(try g.inferShapes()) { error in
            XCTAssertEqual(error as? NetworkGraphError, .invalidInputs(node: "sum", message: "add needs at least 2 inputs"))
        }
    }
}

/// A test-only op, `y = g ⊙ x` with one trainable gain per channel, written the way every shipped
/// op is (attributes, shape rule, cost, latency attributes and layer in one type) to show that
/// adding an op needs only its own definition and a registry entry. Its layer is a depthwise 1×1
/// convolution, built through the public `GraphOp` API.
struct ChannelGain: GraphOp, Hashable {
    static let kind = "testChannelGain"
    var initialGain: Double
    init(initialGain: Double) { self.initialGain = initialGain }
    init(attributes a: OpAttributeReader) throws { initialGain = try a.double("initial_gain") }
    var attributes: OpAttributeList { [("initial_gain", .double(initialGain))] }
    func outputShape(inputs: [FeatureShape]) throws -> FeatureShape { try Self.single(inputs) }
    func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost {
        OpCost(parameters: output.channels, multiplyAccumulates: output.elementCount, nasBench201Flops: output.elementCount)
    }
    func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? {
        let c = context.inputShapes[0].channels
        return try Conv2d(outChannels: c, kernel: 1, groups: c).makeLayer(&context)
    }
}

final class OpRegistryTests: XCTestCase {
    private func scaledGraph() -> NetworkGraph {
        var g = NetworkGraph(inputShape: FeatureShape(features: 4))
        var x = g.add("scale", ChannelGain(initialGain: 2), g.input)
        x = g.add("fc", .linear(outFeatures: 3, bias: true), x)
        return g
    }

    func testUnregisteredOpIsAnErrorNotASilentPassThrough() {
        let g = scaledGraph()
        XCTAssertThrowsError(try g.inferShapes()) { error in
            XCTAssertEqual(error as? NetworkGraphError, .unregisteredOp(node: "scale", kind: "testChannelGain"))
        }
        var rng = SeededGenerator(seed: 1)
        XCTAssertThrowsError(try Network(graph: g, rng: &rng))
    }

    func testARegisteredNewOpWorksEndToEnd() throws {
        let registry = OpRegistry.standard.registering(ChannelGain.self)
        let g = scaledGraph()
        let shapes = try g.inferShapes(registry: registry)
        XCTAssertEqual(shapes[1], FeatureShape(features: 4))
        XCTAssertEqual(g.nodes[1].op.cost(inputs: [shapes[0]], output: shapes[1]).parameters, 4)
        XCTAssertEqual(g.nodes[1].op.latencySignature, "testChannelGain(initial_gain:2.0)")
        var rng = SeededGenerator(seed: 1)
        let network = try Network(graph: g, registry: registry, rng: &rng)
        XCTAssertEqual(network.parameterCount, 4 + 4 * 3 + 3)
        network.tensor(named: "scale/weight")!.values = [2, 2, 2, 2]
        let x = Tensor(shape: [2, 4], values: [1, 2, 3, 4, -1, 0, 1, 0.5])
        let y = try network.forward(x, training: false)
        // The same network without the scale op, fed 2·x, gives the same logits.
        var plain = NetworkGraph(inputShape: FeatureShape(features: 4))
        plain.add("fc", .linear(outFeatures: 3, bias: true), plain.input)
        var rng2 = SeededGenerator(seed: 1)
        let reference = try Network(graph: plain, rng: &rng2)
        try reference.load(namedTensors: network.namedTensors().filter { $0.name.hasPrefix("fc/") })
        let expected = try reference.forward(Tensor(shape: [2, 4], values: x.values.map { 2 * $0 }), training: false)
        for (a, b) in zip(y.values, expected.values) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        // Its gains get gradients: the network trains through it.
        _ = try network.lossAndGradients(input: x, labels: [0, 2])
        XCTAssertTrue(network.tensor(named: "scale/weight")!.gradient.contains { $0 != 0 })
    }

    func testEveryStandardOpRoundTripsThroughGraphJSON() throws {
        var g = NetworkGraph(inputShape: FeatureShape(channels: 4, height: 8, width: 8))
        var x = g.add("conv", .conv2d(Conv2dAttributes(outChannels: 4, kernel: 3, stride: 1, padding: 2, dilation: 2, groups: 2, bias: true)), g.input)
        x = g.add("bn", .batchNorm(affine: false), x)
        x = g.add("act", .activation(.hardSwish), x)
        let m = g.add("max", .maxPool(PoolAttributes(kernel: 3, stride: 1, padding: 1)), x)
        let a = g.add("avg", .avgPool(PoolAttributes(kernel: 3, stride: 1, padding: 1, countIncludePadding: false)), x)
        let i = g.add("id", .identity, x)
        let z = g.add("zero", .zero(stride: 1), x)
        let deconv = g.add("deconv", .convTranspose2d(outChannels: 4, kernel: 3, stride: 2, padding: 1, outputPadding: 1, bias: true), m)
        let up = g.add("up", .upsample(scale: 2, mode: .bilinear), a)
        let decoded = g.add("down", .maxPool(PoolAttributes(kernel: 2, stride: 2)), g.add("dec_sum", .add, deconv, up))
        x = g.add("sum", .add, inputs: [m, a, i, z, decoded])
        x = g.add("cat", .concat, inputs: [x, m])
        x = g.add("drop", .dropout(rate: 0.25), x)
        let gap = g.add("gap", .globalAvgPool, x)
        let flat = g.add("flat", .flatten, x)
        x = g.add("fc1", .linear(outFeatures: 8, bias: false), flat)
        x = g.add("both", .concat, inputs: [x, gap])
        x = g.add("fc", .linear(outFeatures: 3, bias: true), x)
        let data = try JSONEncoder().encode(g)
        let back = try JSONDecoder().decode(NetworkGraph.self, from: data)
        XCTAssertEqual(back, g)
        XCTAssertEqual(try back.inferShapes(), try g.inferShapes())
        // Every registered kind is used above (except the input, which is implicit).
        let used = Set(g.nodes.map(\.op.kind))
        let standardImageOps = Set(["input", "conv2d", "batchNorm", "activation", "maxPool", "avgPool", "globalAvgPool",
                                    "linear", "add", "concat", "dropout", "flatten", "zero", "identity",
                                    "upsample", "convTranspose2d"])
        XCTAssertEqual(used, standardImageOps)
        XCTAssertTrue(standardImageOps.isSubset(of: Set(OpRegistry.standard.types.map { $0.kind })))
    }

    func testUnknownKindInJSONIsAnError() {
        let json = #"{"input_shape":[1,2,2],"nodes":[{"name":"input","op":"input","inputs":[]},{"name":"x","op":"mystery","inputs":[0]}]}"#
        XCTAssertThrowsError(try JSONDecoder().decode(NetworkGraph.self, from: Data(json.utf8)))
    }
}
