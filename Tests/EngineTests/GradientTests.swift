import Engine
import NASCore
import XCTest

/// Every op's gradient against central finite differences (through the public `Network` API).
final class GradientTests: XCTestCase {
    /// Every test runs with 2 compute threads (its own ``ComputeContext``).
    override func invokeTest() { ComputeContext(threads: 2).run { super.invokeTest() } }

    private func single(_ op: any GraphOp, _ shape: FeatureShape, prefix: [any GraphOp] = []) -> NetworkGraph {
        var g = NetworkGraph(inputShape: shape)
        var x = g.input
        for (i, p) in prefix.enumerated() { x = g.addNode("pre\(i)", p, inputs: [x]) }
        g.addNode("op", op, inputs: [x])
        return g
    }

    func testConvolutionVariants() throws {
        let cases: [(FeatureShape, Conv2dAttributes)] = [
            (FeatureShape(channels: 3, height: 7, width: 6), Conv2dAttributes(outChannels: 4, kernel: 3, padding: 1, bias: true)),
            (FeatureShape(channels: 2, height: 9, width: 8), Conv2dAttributes(outChannels: 3, kernel: 3, stride: 2, padding: 1)),
            (FeatureShape(channels: 2, height: 9, width: 9), Conv2dAttributes(outChannels: 2, kernel: 3, stride: 1, padding: 2, dilation: 2)),
            (FeatureShape(channels: 4, height: 6, width: 7), Conv2dAttributes(outChannels: 6, kernel: 3, stride: 2, padding: 1, groups: 2, bias: true)),
            (FeatureShape(channels: 5, height: 8, width: 8), Conv2dAttributes(outChannels: 5, kernel: 3, stride: 1, padding: 1, groups: 5)),
            (FeatureShape(channels: 3, height: 8, width: 8), Conv2dAttributes(outChannels: 6, kernel: 5, stride: 2, padding: 2, groups: 3)),
            (FeatureShape(channels: 4, height: 5, width: 5), Conv2dAttributes(outChannels: 3, kernel: 1, bias: true)),
            (FeatureShape(channels: 3, height: 6, width: 6), Conv2dAttributes(outChannels: 2, kernel: 1, stride: 2)),
            (FeatureShape(channels: 2, height: 10, width: 7), Conv2dAttributes(outChannels: 3, kernel: 3, stride: 3, padding: 0, dilation: 2)),
            (FeatureShape(channels: 4, height: 9, width: 9), Conv2dAttributes(outChannels: 8, kernel: 3, stride: 2, padding: 2, dilation: 2, groups: 4, bias: true)),
            (FeatureShape(channels: 3, height: 7, width: 7), Conv2dAttributes(outChannels: 3, kernel: 5, stride: 1, padding: 2, groups: 3)),
        ]
        for (i, (shape, a)) in cases.enumerated() {
            try checkGradients(single(.conv2d(a), shape), batch: 3, seed: UInt64(100 + i))
        }
    }

    func testRandomConvolutionShapes() throws {
        var rng = SeededGenerator(seed: 77)
        for trial in 0..<6 {
            let groups = [1, 1, 2, 3][rng.nextInt(below: 4)]
            let inC = groups * (1 + rng.nextInt(below: 3))
            let outC = groups * (1 + rng.nextInt(below: 3))
            let k = [1, 3, 5][rng.nextInt(below: 3)]
            let d = 1 + rng.nextInt(below: 2)
            let p = rng.nextInt(below: k)
            let s = 1 + rng.nextInt(below: 2)
            let size = d * (k - 1) + 1 + rng.nextInt(below: 5)
            let a = Conv2dAttributes(outChannels: outC, kernel: k, stride: s, padding: p, dilation: d, groups: groups, bias: rng.nextInt(below: 2) == 0)
            try checkGradients(single(.conv2d(a), FeatureShape(channels: inC, height: size, width: size + 1)),
                               batch: 1 + rng.nextInt(below: 3), seed: UInt64(200 + trial))
        }
    }

    func testLinearAndFlatten() throws {
        try checkGradients(single(.linear(outFeatures: 5, bias: true), FeatureShape(features: 7)), batch: 4, seed: 1)
        try checkGradients(single(.linear(outFeatures: 3, bias: false), FeatureShape(channels: 2, height: 3, width: 2), prefix: [Flatten()]),
                           batch: 3, seed: 2)
        try checkGradients(single(.flatten, FeatureShape(channels: 3, height: 2, width: 4)), batch: 2, seed: 3)
    }

    func testBatchNormTrainingAndEvaluation() throws {
        let shape = FeatureShape(channels: 3, height: 4, width: 5)
        try checkGradients(single(.batchNorm(affine: true), shape), batch: 4, seed: 4, training: true)
        try checkGradients(single(.batchNorm(affine: false), shape), batch: 3, seed: 5, training: true)
        try checkGradients(single(.batchNorm(affine: true), shape), batch: 2, seed: 6, training: false)
        // BN after a conv (weights feel BN's batch coupling).
        try checkGradients(single(.batchNorm(affine: true), FeatureShape(channels: 2, height: 5, width: 5),
                                  prefix: [Conv2d(outChannels: 3, kernel: 3, stride: 2, padding: 1)]),
                           batch: 3, seed: 7)
    }

    func testActivations() throws {
        var rng = SeededGenerator(seed: 8)
        let shape = FeatureShape(channels: 2, height: 3, width: 4)
        for kind in ActivationKind.allCases {
            // Keep inputs away from the kinks (0, 6 for relu/relu6; ±3 for hard-swish).
            let x = (0..<(3 * shape.elementCount)).map { _ -> Float in
                var v: Float
                repeat { v = Float(rng.nextNormal() * 3) } while [0, 6, -3, 3].contains { abs(v - $0) < 0.05 }
                return v
            }
            try checkGradients(single(.activation(kind), shape), batch: 3, seed: 9, input: x)
        }
    }

    /// Distinct, well-separated values so that no finite-difference step changes a window's maximum.
    private func separated(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        var values = (0..<count).map { Float($0) * 0.1 - Float(count) * 0.05 }
        rng.shuffle(&values)
        return values
    }

    func testPooling() throws {
        let shape = FeatureShape(channels: 2, height: 7, width: 6)
        let n = 2 * shape.elementCount
        let pools: [any GraphOp] = [
            MaxPool(PoolAttributes(kernel: 3, stride: 2, padding: 1)),
            MaxPool(PoolAttributes(kernel: 2, stride: 2)),
            MaxPool(PoolAttributes(kernel: 3, stride: 1, padding: 1)),
            AvgPool(PoolAttributes(kernel: 3, stride: 1, padding: 1, countIncludePadding: true)),
            AvgPool(PoolAttributes(kernel: 3, stride: 1, padding: 1, countIncludePadding: false)),
            AvgPool(PoolAttributes(kernel: 3, stride: 2, padding: 1, countIncludePadding: false)),
            AvgPool(PoolAttributes(kernel: 2, stride: 2)),
            .globalAvgPool,
        ]
        for (i, op) in pools.enumerated() {
            try checkGradients(single(op, shape), batch: 2, seed: UInt64(20 + i), input: separated(n, seed: UInt64(i)))
        }
    }

    func testAveragePoolPaddingSemantics() throws {
        // 1×3×3 input of ones, 3×3 window, padding 1: a corner sees 4 real values.
        var g = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 3, width: 3))
        g.add("pool", .avgPool(PoolAttributes(kernel: 3, stride: 1, padding: 1, countIncludePadding: true)), g.input)
        var h = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 3, width: 3))
        h.add("pool", .avgPool(PoolAttributes(kernel: 3, stride: 1, padding: 1, countIncludePadding: false)), h.input)
        var rng = SeededGenerator(seed: 1)
        let ones = Tensor(shape: [1, 1, 3, 3], values: [Float](repeating: 1, count: 9))
        let include = try Network(graph: g, rng: &rng).forward(ones, training: false)
        let exclude = try Network(graph: h, rng: &rng).forward(ones, training: false)
        XCTAssertEqual(include.values[0], 4.0 / 9.0, accuracy: 1e-6)
        XCTAssertEqual(include.values[1], 6.0 / 9.0, accuracy: 1e-6)
        XCTAssertEqual(include.values[4], 1, accuracy: 1e-6)
        XCTAssertEqual(exclude.values, [Float](repeating: 1, count: 9))
    }

    func testStructuralOps() throws {
        let shape = FeatureShape(channels: 2, height: 4, width: 3)
        // Add of three branches, concat of two, identity, zero with stride.
        var g = NetworkGraph(inputShape: shape)
        let a = g.add("a", .conv2d(Conv2dAttributes(outChannels: 2, kernel: 3, padding: 1)), g.input)
        let b = g.add("b", .identity, g.input)
        let c = g.add("c", .activation(.sigmoid), g.input)
        let s = g.add("sum", .add, a, b, c)
        let cat = g.add("cat", .concat, s, g.input, a)
        let z = g.add("zero", .zero(stride: 1), cat)
        g.add("out", .add, cat, z)
        try checkGradients(g, batch: 3, seed: 30)

        var h = NetworkGraph(inputShape: shape)
        let conv = h.add("conv", .conv2d(Conv2dAttributes(outChannels: 3, kernel: 1, stride: 2)), h.input)
        let zero = h.add("zero", .zero(stride: 2), h.input)
        h.add("cat", .concat, conv, zero)
        XCTAssertEqual(try h.inferShapes().last, FeatureShape(channels: 5, height: 2, width: 2))
        try checkGradients(h, batch: 2, seed: 31)
    }

    func testDropout() throws {
        // Finite differences with a fixed mask (the generator is reset before every forward).
        try checkGradients(single(.dropout(rate: 0.3), FeatureShape(channels: 3, height: 4, width: 4),
                                  prefix: [Conv2d(outChannels: 3, kernel: 3, padding: 1)]),
                           batch: 2, seed: 40)
        // Statistics and evaluation mode.
        var g = NetworkGraph(inputShape: FeatureShape(features: 10_000))
        g.add("drop", .dropout(rate: 0.25), g.input)
        var rng = SeededGenerator(seed: 41)
        let network = try Network(graph: g, rng: &rng)
        let ones = Tensor(shape: [2, 10_000], values: [Float](repeating: 1, count: 20_000))
        let y = try network.forward(ones, training: true)
        let zeros = y.values.filter { $0 == 0 }.count
        XCTAssertEqual(Double(zeros) / 20_000, 0.25, accuracy: 0.02)
        XCTAssertTrue(y.values.allSatisfy { $0 == 0 || abs($0 - 1 / 0.75) < 1e-6 })
        XCTAssertEqual(try network.forward(ones, training: false).values, ones.values)
    }

    /// An NAS-Bench-201-like cell: every node sums ops applied to all earlier nodes (fan-in and fan-out).
    func testCellWithFanInAndFanOut() throws {
        let shape = FeatureShape(channels: 3, height: 6, width: 6)
        var g = NetworkGraph(inputShape: shape)
        let stem = g.add("stem", .conv2d(Conv2dAttributes(outChannels: 4, kernel: 3, padding: 1)), g.input)
        let stemBN = g.add("stem_bn", .batchNorm(affine: true), stem)
        var nodes = [stemBN]
        for j in 1...3 {
            var terms = [Int]()
            for (i, source) in nodes.enumerated() {
                let op: Int
                switch (i + j) % 4 {
                case 0:
                    let act = g.add("e\(j)\(i)/act", .activation(.sigmoid), source)
                    let conv = g.add("e\(j)\(i)/conv", .conv2d(Conv2dAttributes(outChannels: 4, kernel: 3, padding: 1)), act)
                    op = g.add("e\(j)\(i)/bn", .batchNorm(affine: false), conv)
                case 1:
                    op = g.add("e\(j)\(i)/conv1", .conv2d(Conv2dAttributes(outChannels: 4, kernel: 1)), source)
                case 2:
                    op = g.add("e\(j)\(i)/pool", .avgPool(PoolAttributes(kernel: 3, stride: 1, padding: 1, countIncludePadding: false)), source)
                default:
                    op = g.add("e\(j)\(i)/skip", .identity, source)
                }
                terms.append(op)
            }
            nodes.append(terms.count > 1 ? g.add("node\(j)", .add, inputs: terms) : terms[0])
        }
        let gap = g.add("gap", .globalAvgPool, nodes.last!)
        g.add("fc", .linear(outFeatures: 3, bias: true), gap)
        try checkGradients(g, batch: 3, seed: 50, samplesPerTensor: 12)
    }

    func testSoftmaxCrossEntropyGradient() throws {
        var rng = SeededGenerator(seed: 60)
        let logits = randomNormal(4 * 5, &rng, scale: 3)
        let labels: [Int32] = [0, 3, 4, 1]
        for smoothing: Float in [0, 0.1] {
            let (loss, gradient) = try softmaxCrossEntropy(logits: Tensor(shape: [4, 5], values: logits), labels: labels, labelSmoothing: smoothing)
            // Reference loss computed directly in Double.
            var expected = 0.0
            for n in 0..<4 {
                let row = (0..<5).map { Double(logits[n * 5 + $0]) }
                let lse = log(row.map { exp($0) }.reduce(0, +))
                for k in 0..<5 {
                    let t = (k == Int(labels[n]) ? 1 - Double(smoothing) : 0) + Double(smoothing) / 5
                    expected += t * (lse - row[k])
                }
            }
            XCTAssertEqual(Double(loss), expected / 4, accuracy: 1e-5)
            for i in [0, 7, 13, 19] {
                var p = logits, m = logits
                p[i] += 1e-2; m[i] -= 1e-2
                let lp = try softmaxCrossEntropy(logits: Tensor(shape: [4, 5], values: p), labels: labels, labelSmoothing: smoothing).loss
                let lm = try softmaxCrossEntropy(logits: Tensor(shape: [4, 5], values: m), labels: labels, labelSmoothing: smoothing).loss
                XCTAssertEqual(gradient.values[i], (lp - lm) / 2e-2, accuracy: 2e-3)
            }
        }
        // Huge logits stay finite.
        let big = try softmaxCrossEntropy(logits: Tensor(shape: [1, 3], values: [1e30, -1e30, 0]), labels: [0])
        XCTAssertEqual(big.loss, 0)
        XCTAssertThrowsError(try softmaxCrossEntropy(logits: Tensor(shape: [1, 3], values: [0, 0, 0]), labels: [3]))
    }
}

/// The multi-threaded convolution path (batch split over threads, partial weight gradients summed).
final class ThreadingTests: XCTestCase {
    private func graph() -> NetworkGraph {
        var g = NetworkGraph(inputShape: FeatureShape(channels: 6, height: 18, width: 18))
        var x = g.add("conv1", .conv2d(Conv2dAttributes(outChannels: 12, kernel: 3, padding: 1, bias: true)), g.input)
        x = g.add("dw", .conv2d(Conv2dAttributes(outChannels: 24, kernel: 3, padding: 1, groups: 12, bias: true)), x)
        x = g.add("conv2", .conv2d(Conv2dAttributes(outChannels: 12, kernel: 3, stride: 2, padding: 2, dilation: 2, groups: 3)), x)
        x = g.add("conv3", .conv2d(Conv2dAttributes(outChannels: 8, kernel: 1)), x)
        x = g.add("gap", .globalAvgPool, x)
        g.add("fc", .linear(outFeatures: 4, bias: true), x)
        return g
    }

    func testTwoThreadsMatchOneThread() throws {
        var results = [(Tensor, Tensor, [[Float]])]()
        for threads in [1, 2] {
            try ComputeContext(threads: threads).run {
                var rng = SeededGenerator(seed: 3)
                let network = try Network(graph: graph(), rng: &rng)
                let x = Tensor(shape: [7, 6, 18, 18], values: randomNormal(7 * 6 * 18 * 18, &rng))
                let y = try network.forward(x, training: true)
                let probe = Tensor(shape: y.shape, values: randomNormal(y.elementCount, &rng))
                let dx = try XCTUnwrap(network.backward(outputGradient: probe, computeInputGradient: true))
                results.append((y, dx, network.parameters.map(\.gradient)))
            }
        }
        assertClose(results[1].0.values, results[0].0.values, rtol: 1e-5, atol: 1e-6, "output")
        assertClose(results[1].1.values, results[0].1.values, rtol: 1e-5, atol: 1e-6, "input gradient")
        for (a, b) in zip(results[1].2, results[0].2) { assertClose(a, b, rtol: 1e-4, atol: 1e-5, "parameter gradient") }
    }

    func testThreadedGradientsAgainstFiniteDifferences() throws {
        try checkGradients(graph(), batch: 5, seed: 9, samplesPerTensor: 10)
    }
}
