import Engine
import Foundation
import NASCore
import XCTest

/// The decoder ops of segmentation networks, `upsample` (nearest, bilinear) and
/// `convTranspose2d`: gradients against finite differences, forward values and gradients against
/// PyTorch 2.13 (`Fixtures/decoder_ops.json`, written by `make_fixtures.py decoder`), threading,
/// shapes, costs and attributes.
final class DecoderOpsTests: XCTestCase {
    /// Every test runs with 2 compute threads (its own ``ComputeContext``).
    override func invokeTest() { ComputeContext(threads: 2).run { super.invokeTest() } }

    private func single(_ op: any GraphOp, _ shape: FeatureShape, prefix: [any GraphOp] = []) -> NetworkGraph {
        var g = NetworkGraph(inputShape: shape)
        var x = g.input
        for (i, p) in prefix.enumerated() { x = g.addNode("pre\(i)", p, inputs: [x]) }
        g.addNode("op", op, inputs: [x])
        return g
    }

    /// Mirrors `Decoder` in make_fixtures.py: conv → relu → convTranspose2d → bilinear ×2, concatenated
    /// with the encoder upsampled (nearest ×4) and the input upsampled (bilinear ×2) → conv (per-pixel logits).
    static func decoderGraph() -> NetworkGraph {
        var g = NetworkGraph(inputShape: FeatureShape(channels: 3, height: 6, width: 6))
        let enc = g.add("enc", .conv2d(Conv2dAttributes(outChannels: 6, kernel: 3, stride: 2, padding: 1, bias: true)), g.input)
        let relu = g.add("relu", .activation(.relu), enc)
        let dec = g.add("dec", .convTranspose2d(outChannels: 4, kernel: 3, stride: 2, padding: 1, outputPadding: 1, bias: true), relu)
        let up = g.add("up", .upsample(scale: 2, mode: .bilinear), dec)
        let skip = g.add("skip", .upsample(scale: 4, mode: .nearest), relu)
        let skipInput = g.add("skip_input", .upsample(scale: 2, mode: .bilinear), g.input)
        let cat = g.add("cat", .concat, up, skip, skipInput)
        g.add("head", .conv2d(Conv2dAttributes(outChannels: 3, kernel: 3, padding: 1, bias: true)), cat)
        return g
    }

    // MARK: - Finite differences

    func testUpsampleGradients() throws {
        let shape = FeatureShape(channels: 2, height: 3, width: 4)
        for (i, mode) in UpsampleMode.allCases.enumerated() {
            for scale in [1, 2, 3] {
                try checkGradients(single(.upsample(scale: scale, mode: mode), shape), batch: 3, seed: UInt64(10 * i + scale))
            }
            // After a convolution (its weights see the upsampled gradient), on a non-square map.
            try checkGradients(single(Upsample(scale: 2, mode: mode), FeatureShape(channels: 3, height: 5, width: 3),
                                      prefix: [Conv2d(outChannels: 2, kernel: 3, padding: 1, bias: true)]),
                               batch: 2, seed: UInt64(30 + i))
        }
        // Both modes read one tensor (fan-out: the second gradient accumulates) and are summed.
        var g = NetworkGraph(inputShape: FeatureShape(channels: 2, height: 4, width: 3))
        let c = g.add("conv", .conv2d(Conv2dAttributes(outChannels: 3, kernel: 3, padding: 1)), g.input)
        let a = g.add("nearest", .upsample(scale: 3, mode: .nearest), c)
        let b = g.add("bilinear", .upsample(scale: 3, mode: .bilinear), c)
        g.add("sum", .add, a, b)
        try checkGradients(g, batch: 2, seed: 40)
    }

    func testConvTranspose2dGradients() throws {
        let cases: [(FeatureShape, ConvTranspose2d)] = [
            (FeatureShape(channels: 3, height: 4, width: 5), ConvTranspose2d(outChannels: 4, kernel: 2, stride: 2)),
            (FeatureShape(channels: 3, height: 4, width: 5), ConvTranspose2d(outChannels: 2, kernel: 3, stride: 2, padding: 1, outputPadding: 1)),
            (FeatureShape(channels: 2, height: 3, width: 4), ConvTranspose2d(outChannels: 3, kernel: 3, stride: 2, padding: 1, outputPadding: 1, bias: true)),
            (FeatureShape(channels: 2, height: 2, width: 3), ConvTranspose2d(outChannels: 3, kernel: 2, stride: 2, bias: true)),
            (FeatureShape(channels: 4, height: 3, width: 3), ConvTranspose2d(outChannels: 3, kernel: 4, stride: 2, padding: 1, bias: true)),
            (FeatureShape(channels: 2, height: 3, width: 3), ConvTranspose2d(outChannels: 2, kernel: 3, stride: 1, padding: 1)),
            (FeatureShape(channels: 3, height: 3, width: 2), ConvTranspose2d(outChannels: 2, kernel: 3, stride: 3, padding: 2, outputPadding: 2, bias: true)),
            (FeatureShape(channels: 3, height: 4, width: 4), ConvTranspose2d(outChannels: 5, kernel: 1)),
        ]
        for (i, (shape, op)) in cases.enumerated() {
            try checkGradients(single(op, shape), batch: 3, seed: UInt64(100 + i))
        }
        // In a decoder: conv → convTranspose2d (k3 s2 p1 op1, bias) → bilinear ×2, and the full fixture graph.
        try checkGradients(single(Upsample(scale: 2, mode: .bilinear), FeatureShape(channels: 2, height: 6, width: 6),
                                  prefix: [Conv2d(outChannels: 3, kernel: 3, stride: 2, padding: 1),
                                           ConvTranspose2d(outChannels: 2, kernel: 3, stride: 2, padding: 1, outputPadding: 1, bias: true)]),
                           batch: 2, seed: 120)
        try checkGradients(Self.decoderGraph(), batch: 2, seed: 121, samplesPerTensor: 16)
    }

    /// Large enough that the convolution splits the batch and the upsampling splits its planes.
    func testTwoThreadsMatchOneThread() throws {
        var g = NetworkGraph(inputShape: FeatureShape(channels: 16, height: 16, width: 16))
        var x = g.add("ct", .convTranspose2d(outChannels: 16, kernel: 3, stride: 2, padding: 1, outputPadding: 1, bias: true), g.input)
        let n = g.add("nearest", .upsample(scale: 2, mode: .nearest), g.input)
        x = g.add("ct2", .convTranspose2d(outChannels: 8, kernel: 3, stride: 1, padding: 1), x)
        let b = g.add("bilinear", .upsample(scale: 2, mode: .bilinear), g.input)
        x = g.add("cat", .concat, x, n, b)
        g.add("up", .upsample(scale: 2, mode: .bilinear), x)
        var results = [(Tensor, Tensor, [[Float]])]()
        for threads in [1, 2] {
            try ComputeContext(threads: threads).run {
                var rng = SeededGenerator(seed: 5)
                let network = try Network(graph: g, rng: &rng)
                let input = Tensor(shape: [4, 16, 16, 16], values: randomNormal(4 * 16 * 256, &rng))
                let y = try network.forward(input, training: true)
                let probe = Tensor(shape: y.shape, values: randomNormal(y.elementCount, &rng))
                let dx = try XCTUnwrap(network.backward(outputGradient: probe, computeInputGradient: true))
                results.append((y, dx, network.parameters.map(\.gradient)))
            }
        }
        assertClose(results[1].0.values, results[0].0.values, rtol: 1e-5, atol: 1e-6, "output")
        assertClose(results[1].1.values, results[0].1.values, rtol: 1e-5, atol: 1e-5, "input gradient")
        for (a, b) in zip(results[1].2, results[0].2) { assertClose(a, b, rtol: 1e-4, atol: 1e-4, "parameter gradient") }
    }

    // MARK: - PyTorch

    struct Packed: Decodable {
        var shape: [Int]
        var values: [Float]
    }

    struct OpCase: Decodable {
        var name: String
        var graph: NetworkGraph
        var input: Packed
        var initial: [String: Packed]
        var output: Packed
        var probe: Packed
        var input_gradient: Packed
        var gradients: [String: Packed]
    }

    struct NetworkCase: Decodable {
        var graph: NetworkGraph
        var input: Packed
        var labels: [Int]
        var initial: [String: Packed]
        var output: Packed
        var loss: Double
        var input_gradient: Packed
        var gradients: [String: Packed]
    }

    struct Fixture: Decodable {
        var ops: [OpCase]
        var network: NetworkCase
    }

    private func loadFixture() throws -> Fixture {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "decoder_ops", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    private func makeNetwork(_ graph: NetworkGraph, _ initial: [String: Packed]) throws -> Network {
        var rng = SeededGenerator(seed: 0)
        let network = try Network(graph: graph, rng: &rng)
        try network.load(namedTensors: initial.map { (name: $0.key, shape: $0.value.shape, values: $0.value.values) })
        return network
    }

    func testSingleOpsMatchPyTorch() throws {
        let f = try loadFixture()
        XCTAssertEqual(f.ops.count, 12)
        var kinds = Set<String>()
        for c in f.ops {
            kinds.insert(c.graph.nodes[1].op.description)
            let network = try makeNetwork(c.graph, c.initial)
            let y = try network.forward(Tensor(shape: c.input.shape, values: c.input.values), training: true)
            XCTAssertEqual(y.shape, c.output.shape, c.name)
            assertClose(y.values, c.output.values, rtol: 1e-4, atol: 1e-5, "\(c.name) output")
            let dx = try XCTUnwrap(network.backward(outputGradient: Tensor(shape: c.probe.shape, values: c.probe.values),
                                                    computeInputGradient: true))
            assertClose(dx.values, c.input_gradient.values, rtol: 1e-4, atol: 1e-5, "\(c.name) input gradient")
            XCTAssertEqual(Set(network.parameters.map(\.name)), Set(c.gradients.keys), c.name)
            for p in network.parameters {
                let e = try XCTUnwrap(c.gradients[p.name], p.name)
                XCTAssertEqual(p.shape, e.shape, "\(c.name) \(p.name)")
                assertClose(p.gradient, e.values, rtol: 1e-4, atol: 1e-5, "\(c.name) gradient \(p.name)")
            }
        }
        XCTAssertTrue(kinds.contains("upsample(scale:3,mode:bilinear)"), "\(kinds)")
        XCTAssertTrue(kinds.contains("convTranspose2d(out:2,kernel:3,stride:2,padding:1,output_padding:1,bias:true)"), "\(kinds)")
    }

    /// Per-pixel softmax cross-entropy (mean over samples and pixels, PyTorch's `F.cross_entropy`
    /// on N×C×H×W logits) and its gradient, in Double.
    private func pixelCrossEntropy(_ logits: Tensor, labels: [Int]) -> (loss: Double, gradient: [Float]) {
        let n = logits.shape[0], c = logits.shape[1], hw = logits.shape[2] * logits.shape[3]
        var loss = 0.0
        var gradient = [Float](repeating: 0, count: logits.values.count)
        let count = Double(n * hw)
        for s in 0..<n {
            for p in 0..<hw {
                let row = (0..<c).map { Double(logits.values[(s * c + $0) * hw + p]) }
                let top = row.max()!
                let exps = row.map { exp($0 - top) }
                let total = exps.reduce(0, +)
                let label = labels[s * hw + p]
                loss += top + log(total) - row[label]
                for k in 0..<c {
                    gradient[(s * c + k) * hw + p] = Float((exps[k] / total - (k == label ? 1 : 0)) / count)
                }
            }
        }
        return (loss / count, gradient)
    }

    func testDecoderNetworkMatchesPyTorch() throws {
        let f = try loadFixture().network
        XCTAssertEqual(f.graph, Self.decoderGraph(), "the fixture's graph JSON decodes to decoderGraph()")
        let network = try makeNetwork(f.graph, f.initial)
        let logits = try network.forward(Tensor(shape: f.input.shape, values: f.input.values), training: true)
        XCTAssertEqual(logits.shape, [2, 3, 12, 12])
        assertClose(logits.values, f.output.values, rtol: 1e-4, atol: 1e-5, "logits")
        let (loss, gradient) = pixelCrossEntropy(logits, labels: f.labels)
        XCTAssertEqual(loss, f.loss, accuracy: 1e-4 * abs(f.loss))
        let dx = try XCTUnwrap(network.backward(outputGradient: Tensor(shape: logits.shape, values: gradient), computeInputGradient: true))
        assertClose(dx.values, f.input_gradient.values, rtol: 1e-4, atol: 2e-6, "input gradient")
        XCTAssertEqual(Set(network.parameters.map(\.name)), Set(f.gradients.keys))
        for p in network.parameters {
            assertClose(p.gradient, try XCTUnwrap(f.gradients[p.name]).values, rtol: 1e-4, atol: 2e-6, "gradient \(p.name)")
        }
    }

    // MARK: - Shapes, costs, attributes

    func testShapesAndShapeErrors() throws {
        let image = FeatureShape(channels: 3, height: 4, width: 5)
        XCTAssertEqual(try Upsample(scale: 3, mode: .bilinear).outputShape(inputs: [image]), FeatureShape(channels: 3, height: 12, width: 15))
        XCTAssertEqual(try Upsample(scale: 1).outputShape(inputs: [image]), image)
        // (H − 1)·s − 2p + k + op.
        XCTAssertEqual(try ConvTranspose2d(outChannels: 4, kernel: 2, stride: 2).outputShape(inputs: [image]),
                       FeatureShape(channels: 4, height: 8, width: 10))
        XCTAssertEqual(try ConvTranspose2d(outChannels: 2, kernel: 3, stride: 2, padding: 1, outputPadding: 1).outputShape(inputs: [image]),
                       FeatureShape(channels: 2, height: 8, width: 10))
        XCTAssertEqual(try ConvTranspose2d(outChannels: 2, kernel: 3, stride: 2, padding: 1).outputShape(inputs: [image]),
                       FeatureShape(channels: 2, height: 7, width: 9))
        XCTAssertEqual(try ConvTranspose2d(outChannels: 1, kernel: 3, padding: 1).outputShape(inputs: [image]),
                       FeatureShape(channels: 1, height: 4, width: 5))

        func fails(_ op: any GraphOp, _ inputs: [FeatureShape], arity: Bool = false, _ message: String,
                   file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try op.outputShape(inputs: inputs), message, file: file, line: line) { error in
                guard let e = error as? OpShapeError else { return XCTFail("\(error)", file: file, line: line) }
                XCTAssertEqual(e.isArity, arity, "\(message): \(e.message)", file: file, line: line)
                XCTAssertFalse(e.message.isEmpty, file: file, line: line)
            }
        }
        fails(Upsample(scale: 0), [image], "scale 0")
        fails(Upsample(scale: -2, mode: .bilinear), [image], "negative scale")
        fails(Upsample(scale: 2), [image, image], arity: true, "two inputs")
        fails(Upsample(scale: 2), [], arity: true, "no input")
        fails(ConvTranspose2d(outChannels: 0, kernel: 3), [image], "no outputs")
        fails(ConvTranspose2d(outChannels: 2, kernel: 0), [image], "kernel 0")
        fails(ConvTranspose2d(outChannels: 2, kernel: 3, stride: 0), [image], "stride 0")
        fails(ConvTranspose2d(outChannels: 2, kernel: 3, padding: -1), [image], "negative padding")
        fails(ConvTranspose2d(outChannels: 2, kernel: 3, stride: 2, outputPadding: 2), [image], "output_padding = stride")
        fails(ConvTranspose2d(outChannels: 2, kernel: 3, outputPadding: 1), [image], "output_padding with stride 1")
        fails(ConvTranspose2d(outChannels: 2, kernel: 1, padding: 1), [FeatureShape(channels: 3, height: 1, width: 1)], "empty output")
        fails(ConvTranspose2d(outChannels: 2, kernel: 2, stride: 2), [image, image], arity: true, "two inputs")
        // Through a graph: the error names the node.
        var g = NetworkGraph(inputShape: image)
        let u = g.add("up", .upsample(scale: 2, mode: .nearest), g.input)
        g.add("deconv", .convTranspose2d(outChannels: 2, kernel: 3, stride: 2, outputPadding: 3), u)
        XCTAssertThrowsError(try g.inferShapes()) { error in
            guard case let .invalidShape(node, _)? = error as? NetworkGraphError else { return XCTFail("\(error)") }
            XCTAssertEqual(node, "deconv")
        }
        // Concat needs equal spatial sizes: an upsampled skip fits, the raw one does not.
        var h = NetworkGraph(inputShape: image)
        let d = h.add("deconv", .convTranspose2d(outChannels: 2, kernel: 2, stride: 2), h.input)
        h.add("cat", .concat, d, h.input)
        XCTAssertThrowsError(try h.inferShapes())
    }

    func testCosts() throws {
        func cost(_ op: any GraphOp, _ input: FeatureShape) throws -> OpCost {
            op.cost(inputs: [input], output: try op.outputShape(inputs: [input]))
        }
        let image = FeatureShape(channels: 3, height: 4, width: 5)
        XCTAssertEqual(try cost(Upsample(scale: 2, mode: .nearest), image), .free)
        XCTAssertEqual(try cost(Upsample(scale: 3, mode: .bilinear), image), .free)
        // 3→4, k3: 108 weights + 4 biases; MACs 108 · 4·5 = 2160; output 4×8×10 = 320 bias adds.
        XCTAssertEqual(try cost(ConvTranspose2d(outChannels: 4, kernel: 3, stride: 2, padding: 1, outputPadding: 1, bias: true), image),
                       OpCost(parameters: 112, multiplyAccumulates: 2160, nasBench201Flops: 2480))
        XCTAssertEqual(try cost(ConvTranspose2d(outChannels: 4, kernel: 2, stride: 2), image),
                       OpCost(parameters: 48, multiplyAccumulates: 960, nasBench201Flops: 960))
        // The layer owns exactly the parameters its cost counts, with PyTorch's weight layout.
        var rng = SeededGenerator(seed: 1)
        for op in [ConvTranspose2d(outChannels: 4, kernel: 3, stride: 2, padding: 1, outputPadding: 1, bias: true),
                   ConvTranspose2d(outChannels: 5, kernel: 2, stride: 2)] {
            let network = try Network(graph: single(op, image), rng: &rng)
            XCTAssertEqual(network.parameterCount, try cost(op, image).parameters, "\(op)")
            XCTAssertEqual(network.tensor(named: "op/weight")?.shape, [3, op.outChannels, op.kernel, op.kernel])
            XCTAssertEqual(network.tensor(named: "op/bias")?.shape, op.bias ? [op.outChannels] : nil)
            // PyTorch's default initialisation: uniform(±1/√fan_in), fan_in = out·k² (weight dimension 1 · k²).
            let bound = 1 / Float(op.outChannels * op.kernel * op.kernel).squareRoot()
            let weights = try XCTUnwrap(network.tensor(named: "op/weight")).values
            XCTAssertLessThanOrEqual(weights.map(abs).max()!, bound)
            XCTAssertGreaterThan(weights.map(abs).max()!, 0.8 * bound)
        }
        XCTAssertEqual(try Network(graph: single(Upsample(scale: 2, mode: .bilinear), image), rng: &rng).parameterCount, 0)
    }

    func testAttributesDescriptionsAndJSON() throws {
        let ops: [any GraphOp] = [
            Upsample(scale: 2, mode: .nearest), Upsample(scale: 3, mode: .bilinear),
            ConvTranspose2d(outChannels: 4, kernel: 3, stride: 2, padding: 1, outputPadding: 1, bias: true),
            ConvTranspose2d(outChannels: 8, kernel: 2, stride: 2),
        ]
        for op in ops {
            XCTAssertTrue(OpRegistry.standard.contains(op), op.kind)
            let values = Dictionary(uniqueKeysWithValues: op.attributes.map { ($0.name, $0.value) })
            let back = try type(of: op).init(attributes: OpAttributeReader(kind: op.kind, values: values))
            XCTAssertTrue(back.isSame(as: op), "\(back) vs \(op)")
            XCTAssertEqual(op.latencySignature, op.description)
        }
        XCTAssertEqual(Upsample(scale: 3, mode: .bilinear).description, "upsample(scale:3,mode:bilinear)")
        XCTAssertEqual(Upsample(scale: 2).description, "upsample(scale:2,mode:nearest)")
        XCTAssertEqual(ConvTranspose2d(outChannels: 4, kernel: 3, stride: 2, padding: 1, outputPadding: 1, bias: true).description,
                       "convTranspose2d(out:4,kernel:3,stride:2,padding:1,output_padding:1,bias:true)")
        XCTAssertTrue(OpRegistry.standard.type(ofKind: "upsample") == Upsample.self)
        XCTAssertTrue(OpRegistry.standard.type(ofKind: "convTranspose2d") == ConvTranspose2d.self)
        // A whole decoder graph through JSON.
        let g = Self.decoderGraph()
        let decoded = try JSONDecoder().decode(NetworkGraph.self, from: try JSONEncoder().encode(g))
        XCTAssertEqual(decoded, g)
        XCTAssertEqual(try decoded.inferShapes(), try g.inferShapes())
        XCTAssertEqual(try g.inferShapes().last, FeatureShape(channels: 3, height: 12, width: 12))
        // Unknown modes, missing and mistyped attributes are reported.
        XCTAssertThrowsError(try Upsample(attributes: OpAttributeReader(kind: "upsample", values: ["scale": .int(2), "mode": .string("bicubic")]))) { error in
            guard case .invalidAttributes(kind: "upsample", _)? = error as? NetworkGraphError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try Upsample(attributes: OpAttributeReader(kind: "upsample", values: ["mode": .string("nearest")])))
        XCTAssertThrowsError(try ConvTranspose2d(attributes: OpAttributeReader(kind: "convTranspose2d", values: [
            "out": .int(2), "kernel": .int(2), "stride": .int(2), "padding": .int(0), "bias": .bool(false),
        ])))
        XCTAssertThrowsError(try ConvTranspose2d(attributes: OpAttributeReader(kind: "convTranspose2d", values: [
            "out": .int(2), "kernel": .int(2), "stride": .int(2), "padding": .int(0), "output_padding": .int(0), "bias": .int(1),
        ])))
    }

    /// Values by hand: nearest repeats, bilinear weights ¼ and ¾ (PyTorch's half-pixel grid), and a
    /// stride-2 transposed convolution of a single pixel places the kernel.
    func testValuesByHand() throws {
        var rng = SeededGenerator(seed: 1)
        var g = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 2, width: 2))
        let n = g.add("nearest", .upsample(scale: 2, mode: .nearest), g.input)
        let b = g.add("bilinear", .upsample(scale: 2, mode: .bilinear), g.input)
        g.add("cat", .concat, n, b)
        let y = try Network(graph: g, rng: &rng).forward(Tensor(shape: [1, 1, 2, 2], values: [0, 4, 8, 12]), training: false)
        XCTAssertEqual(Array(y.values[0..<16]), [0, 0, 4, 4, 0, 0, 4, 4, 8, 8, 12, 12, 8, 8, 12, 12])
        XCTAssertEqual(Array(y.values[16..<32]), [0, 1, 3, 4, 2, 3, 5, 6, 6, 7, 9, 10, 8, 9, 11, 12])

        var h = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 2, width: 1))
        h.add("deconv", .convTranspose2d(outChannels: 1, kernel: 2, stride: 2, bias: true), h.input)
        let network = try Network(graph: h, rng: &rng)
        network.tensor(named: "deconv/weight")!.values = [1, 2, 3, 4]
        network.tensor(named: "deconv/bias")!.values = [0.5]
        let z = try network.forward(Tensor(shape: [1, 1, 2, 1], values: [1, -1]), training: false)
        XCTAssertEqual(z.shape, [1, 1, 4, 2])
        XCTAssertEqual(z.values, [1.5, 2.5, 3.5, 4.5, -0.5, -1.5, -2.5, -3.5])
    }
}
