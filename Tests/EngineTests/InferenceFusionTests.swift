import Engine
import NASCore
import XCTest

/// Inference runs conv → batch norm → activation chains as one kernel and splits a single
/// image's convolutions among threads: the outputs must be those of the plain layer-by-layer
/// pass, and batch-1 results must not depend on the thread count beyond float rounding.
final class InferenceFusionTests: XCTestCase {
    /// A network with every chain shape the engine fuses (conv+BN+act, conv+BN, conv(bias)+act,
    /// depthwise+BN+act, pointwise+BN), a residual add (a conv read twice is not fused), and layers
    /// large enough at batch 1 for the intra-image split (≥ `1 << 22` MACs): a pointwise conv and a
    /// strided conv split along positions, small spatial with many channels along output channels,
    /// a 512→8192 classifier along its features.
    static func graph() -> NetworkGraph {
        var g = NetworkGraph(inputShape: FeatureShape(channels: 3, height: 32, width: 32))
        var x = g.add("stem", .conv2d(Conv2d(outChannels: 64, kernel: 3, padding: 1)), g.input)
        x = g.add("stem/bn", .batchNorm(affine: true), x)
        x = g.add("stem/relu", .activation(.relu), x)
        let skip = x
        x = g.add("dw", .conv2d(Conv2d(outChannels: 64, kernel: 3, padding: 1, groups: 64)), x)
        x = g.add("dw/bn", .batchNorm(affine: true), x)
        x = g.add("dw/relu6", .activation(.relu6), x)
        x = g.add("pw", .conv2d(Conv2d(outChannels: 64, kernel: 1)), x)
        x = g.add("pw/bn", .batchNorm(affine: true), x)
        x = g.add("add", .add, x, skip)
        x = g.add("down", .conv2d(Conv2d(outChannels: 64, kernel: 3, stride: 2, padding: 1, bias: true)), x)
        x = g.add("down/hswish", .activation(.hardSwish), x)
        x = g.add("down2", .conv2d(Conv2d(outChannels: 128, kernel: 3, stride: 2, padding: 1)), x)
        x = g.add("down2/bn", .batchNorm(affine: false), x)
        x = g.add("down2/relu", .activation(.relu), x)
        x = g.add("wide", .conv2d(Conv2d(outChannels: 512, kernel: 3, padding: 1)), x)
        let wide = x
        x = g.add("wide/bn", .batchNorm(affine: true), x)
        x = g.add("sum", .add, x, wide)
        x = g.add("gap", .globalAvgPool, x)
        x = g.add("fc", .linear(outFeatures: 8192, bias: true), x)
        return g
    }

    /// A network of `graph()` with non-trivial batch-norm parameters and running statistics.
    static func network(seed: UInt64) throws -> Network {
        var rng = SeededGenerator(seed: seed)
        let network = try Network(graph: graph(), rng: &rng)
        for tensor in network.allTensors where tensor.shape.count == 1 {
            let name = tensor.name
            let low: Double = name.hasSuffix("running_var") ? 0.2 : -0.5
            tensor.values = (0..<tensor.count).map { _ in Float(low + rng.nextUnitDouble()) }
        }
        return network
    }

    func testChainsFollowTheSoleConsumerRule() {
        let g = Self.graph()
        let fusion = InferenceFusion(graph: g)
        let names = fusion.chains.map { $0.nodes.map { g.nodes[$0].name } }
        XCTAssertEqual(names, [["stem", "stem/bn", "stem/relu"], ["dw", "dw/bn", "dw/relu6"], ["pw", "pw/bn"],
                               ["down", "down/hswish"], ["down2", "down2/bn", "down2/relu"]])
        // `wide` is read by its batch norm and by `sum`; `stem/relu` by `dw` and `add` (a chain may
        // end there, but nothing after it joins).
        XCTAssertNil(fusion.chainOfNode[g.nodes.firstIndex { $0.name == "wide" }!])
        XCTAssertEqual(fusion.chains[0].last, g.nodes.firstIndex { $0.name == "stem/relu" })
    }

    func testFusedInferenceMatchesTheLayerByLayerPass() throws {
        let network = try Self.network(seed: 7)
        var rng = SeededGenerator(seed: 8)
        for batch in [1, 3, 8] {
            let x = Tensor(shape: [batch, 3, 32, 32], values: randomNormal(batch * 3 * 32 * 32, &rng))
            // Buffers first hold another input's values, so an output element a kernel forgets to
            // write cannot pass for the right one.
            _ = try network.forward(Tensor(shape: x.shape, values: randomNormal(x.values.count, &rng)), training: false)
            network.fusesInference = true
            let fused = try network.forward(x, training: false)
            network.fusesInference = false
            let plain = try network.forward(x, training: false)
            assertClose(fused.values, plain.values, rtol: 1e-5, atol: 1e-6, "batch \(batch)")
            XCTAssertTrue(plain.values.contains { $0 != 0 })
        }
    }

    func testBatchOneResultsDoNotDependOnTheThreadCount() throws {
        var rng = SeededGenerator(seed: 9)
        let x = Tensor(shape: [1, 3, 32, 32], values: randomNormal(3 * 32 * 32, &rng))
        let other = Tensor(shape: [1, 3, 32, 32], values: randomNormal(3 * 32 * 32, &rng))
        var outputs = [Int: [Float]]()
        for threads in [1, 2, 3, 4] {
            let network = try Self.network(seed: 7)
            outputs[threads] = try ComputeContext(threads: threads).run {
                _ = try network.forward(other, training: false)   // stale values in every buffer first
                return try network.forward(x, training: false).values
            }
        }
        for threads in [2, 3, 4] {
            assertClose(outputs[threads]!, outputs[1]!, rtol: 1e-5, atol: 1e-6, "\(threads) threads vs 1")
        }
        // The same thread count twice: bit-identical.
        let again = try ComputeContext(threads: 2).run { try Self.network(seed: 7).forward(x, training: false).values }
        XCTAssertTrue(again == outputs[2]!, "2 threads twice: not bit-identical")
    }

    /// Text: 1-D convolutions split along positions (k=3 and pointwise) and along output channels (strided).
    func testBatchOneTextConvolutionsDoNotDependOnTheThreadCount() throws {
        var g = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 1, width: 512))
        var x = g.add("emb", .embedding(vocabulary: 500, dimension: 64), g.input)
        x = g.add("conv", .conv1d(outChannels: 128, kernel: 3, padding: 1, bias: true), x)
        x = g.add("gelu", .activation(.gelu), x)
        x = g.add("pw", .conv1d(outChannels: 256, kernel: 1, bias: true), x)
        x = g.add("down", .conv1d(outChannels: 640, kernel: 3, stride: 4, padding: 1, bias: true), x)
        x = g.add("pool", .sequenceMeanPool, x)
        g.add("fc", .linear(outFeatures: 5, bias: true), x)
        var rng = SeededGenerator(seed: 11)
        let ids = { Tensor(shape: [1, 1, 1, 512], values: (0..<512).map { _ in Float(2 + rng.nextInt(below: 498)) }) }
        let (x0, x1) = (ids(), ids())
        var outputs = [[Float]]()
        for threads in [1, 2, 3] {
            var weights = SeededGenerator(seed: 12)
            let network = try Network(graph: g, rng: &weights)
            outputs.append(try ComputeContext(threads: threads).run {
                _ = try network.forward(x0, training: false)
                return try network.forward(x1, training: false).values
            })
        }
        for o in outputs.dropFirst() { assertClose(o, outputs[0], rtol: 1e-5, atol: 1e-6) }
    }

    func testBackwardAfterAFusedForwardSeesEveryNodesOutput() throws {
        var rng = SeededGenerator(seed: 10)
        let x = Tensor(shape: [2, 3, 32, 32], values: randomNormal(2 * 3 * 32 * 32, &rng))
        var gradients = [[[Float]]]()
        for fuses in [false, true] {
            let network = try Self.network(seed: 7)
            network.fusesInference = fuses
            let y = try network.forward(x, training: false)
            let probe = Tensor(shape: y.shape, values: (0..<y.values.count).map { Float($0 % 7) - 3 })
            _ = try network.backward(outputGradient: probe)
            gradients.append(network.parameters.map(\.gradient))
        }
        XCTAssertEqual(gradients[0].count, gradients[1].count)
        for (a, b) in zip(gradients[1], gradients[0]) { assertClose(a, b, rtol: 1e-5, atol: 1e-6) }
    }
}
