import CKernels
import Engine
import NASCore
import XCTest

/// Stride-1 convolutions run on NASLab's direct kernels (`CKernels`). Finite differences
/// (GradientTests) cover small shapes; these shapes are large enough to reach every block of the
/// kernels — full position blocks, partial last vectors, leftover output rows, channel blocks that
/// continue a sum, several image chunks per thread, the per-image channel split of batch-1
/// inference — and are compared with a plain double-precision convolution written out here.
final class DirectConvolutionTests: XCTestCase {
    private struct Case {
        var input: FeatureShape
        var op: any GraphOp
        var reference: PlainConvolution.Window
        var batch: Int

        init(input: FeatureShape, conv: Conv2d, batch: Int) {
            self.input = input
            op = conv
            reference = .init(outChannels: conv.outChannels, kernelHeight: conv.kernel, kernelWidth: conv.kernel,
                              paddingHeight: conv.padding, paddingWidth: conv.padding, dilation: conv.dilation, groups: conv.groups)
            self.batch = batch
        }

        init(input: FeatureShape, conv1d conv: Conv1d, batch: Int) {
            self.input = input
            op = conv
            reference = .init(outChannels: conv.outChannels, kernelHeight: 1, kernelWidth: conv.kernel,
                              paddingHeight: 0, paddingWidth: conv.padding, dilation: conv.dilation, groups: conv.groups)
            self.batch = batch
        }
    }

    private let cases: [Case] = [
        // NB201's cell convolution (3×3, 16 channels at 32×32): several chunks per thread.
        Case(input: FeatureShape(channels: 16, height: 32, width: 32), conv: Conv2d(outChannels: 16, kernel: 3, padding: 1), batch: 7),
        // More than one channel block (32) and leftover output rows (not a multiple of 4 or 6).
        Case(input: FeatureShape(channels: 70, height: 9, width: 11), conv: Conv2d(outChannels: 37, kernel: 3, padding: 1, bias: true), batch: 3),
        // Dilation, no padding, a 5×5 window, groups, a non-square image.
        Case(input: FeatureShape(channels: 12, height: 13, width: 10),
             conv: Conv2d(outChannels: 9, kernel: 3, padding: 2, dilation: 2, groups: 3), batch: 2),
        Case(input: FeatureShape(channels: 5, height: 12, width: 15), conv: Conv2d(outChannels: 7, kernel: 5, padding: 0), batch: 4),
        Case(input: FeatureShape(channels: 6, height: 7, width: 7), conv: Conv2d(outChannels: 6, kernel: 2, padding: 1), batch: 2),
        // Batch 1 with enough work to split each image's output channels among threads.
        Case(input: FeatureShape(channels: 64, height: 28, width: 28), conv: Conv2d(outChannels: 96, kernel: 3, padding: 1), batch: 1),
        // 1-D convolutions (text models): a 1×k window over height-1 images.
        Case(input: FeatureShape(channels: 24, height: 1, width: 128), conv1d: Conv1d(outChannels: 40, kernel: 5, padding: 2), batch: 5),
        Case(input: FeatureShape(channels: 9, height: 1, width: 77),
             conv1d: Conv1d(outChannels: 6, kernel: 3, padding: 1, dilation: 3, groups: 3, bias: false), batch: 3),
        Case(input: FeatureShape(channels: 128, height: 1, width: 256), conv1d: Conv1d(outChannels: 128, kernel: 3, padding: 1), batch: 1),
    ]

    /// Every instruction-set variant of the kernels this CPU can run, each against the reference.
    func testForwardAndGradientsMatchAPlainConvolution() throws {
        defer { naslab_force_kernel_isa(nil) }
        var tested = [String]()
        for isa in ["avx512", "avx2", "baseline"] where naslab_force_kernel_isa(isa) == 1 {
            tested.append(isa)
            for (index, c) in cases.enumerated() {
                for threads in [1, 3] {
                    try ComputeContext(threads: threads).run {
                        try check(c, seed: UInt64(10 + index), label: "\(isa), case \(index), \(threads) threads")
                    }
                }
            }
        }
        XCTAssertTrue(tested.contains("baseline"), "the baseline kernels run everywhere")
    }

    func testResultsDoNotDependOnTheThreadCountAtBatchOne() throws {
        for c in cases where c.batch == 1 {
            try checkThreadIndependence(c)
        }
    }

    private func checkThreadIndependence(_ c: Case) throws {
        var g = NetworkGraph(inputShape: c.input)
        _ = g.addNode("conv", c.op, inputs: [g.input])
        var rng = SeededGenerator(seed: 5)
        let network = try Network(graph: g, initializer: .pytorchDefault, rng: &rng)
        let x = Tensor(shape: [1, c.input.channels, c.input.height, c.input.width],
                       values: (0..<c.input.elementCount).map { _ in Float.random(in: -1...1, using: &rng) })
        let one = try ComputeContext(threads: 1).run { try network.forward(x, training: false) }
        for threads in [2, 3, 4] {
            let other = try ComputeContext(threads: threads).run { try network.forward(x, training: false) }
            XCTAssertEqual(one.values, other.values, "\(c.input), \(threads) threads")
        }
    }

    private func check(_ c: Case, seed: UInt64, label: String) throws {
        var g = NetworkGraph(inputShape: c.input)
        _ = g.addNode("conv", c.op, inputs: [g.input])
        var rng = SeededGenerator(seed: seed)
        let network = try Network(graph: g, initializer: .pytorchDefault, rng: &rng)
        let out = network.outputShape
        let x = Tensor(shape: [c.batch, c.input.channels, c.input.height, c.input.width],
                       values: (0..<(c.batch * c.input.elementCount)).map { _ in Float.random(in: -1...1, using: &rng) })
        let dy = Tensor(shape: [c.batch, out.channels, out.height, out.width],
                        values: (0..<(c.batch * out.elementCount)).map { _ in Float.random(in: -1...1, using: &rng) })
        let y = try network.forward(x, training: true)
        let dx = try XCTUnwrap(network.backward(outputGradient: dy, computeInputGradient: true))
        let weight = try XCTUnwrap(network.tensor(named: "conv/weight"))
        let bias = network.tensor(named: "conv/bias")

        let reference = PlainConvolution(input: c.input, output: out, window: c.reference)
        let expected = reference.forward(x.values, weight.values, bias?.values, batch: c.batch)
        let (expectedDx, expectedDw) = reference.backward(x.values, weight.values, dy.values, batch: c.batch)
        assertClose(y.values, expected, "\(label): output")
        assertClose(dx.values, expectedDx, "\(label): input gradient")
        assertClose(weight.gradient, expectedDw, "\(label): weight gradient")
        if let bias {
            let hw = out.height * out.width
            let expectedBias = (0..<out.channels).map { o in
                (0..<c.batch).reduce(0.0) { s, n in s + (0..<hw).reduce(0.0) { $0 + Double(dy.values[(n * out.channels + o) * hw + $1]) } }
            }
            assertClose(bias.gradient, expectedBias, "\(label): bias gradient")
        }
    }

    /// Relative to the largest reference magnitude: float sums of up to ~10⁵ terms against doubles.
    private func assertClose(_ actual: [Float], _ expected: [Double], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, what, file: file, line: line)
        let scale = max(1e-6, expected.map(abs).max() ?? 0)
        var worst = 0.0, at = 0
        for i in 0..<min(actual.count, expected.count) where abs(Double(actual[i]) - expected[i]) > worst {
            worst = abs(Double(actual[i]) - expected[i])
            at = i
        }
        XCTAssertLessThan(worst / scale, 1e-5, "\(what): element \(at) is \(actual[at]), expected \(expected[at])", file: file, line: line)
    }
}

/// A stride-1 convolution as its definition reads (NCHW, PyTorch semantics), in doubles.
private struct PlainConvolution {
    struct Window {
        var outChannels: Int
        var kernelHeight: Int
        var kernelWidth: Int
        var paddingHeight: Int
        var paddingWidth: Int
        var dilation: Int
        var groups: Int
    }

    let input: FeatureShape
    let output: FeatureShape
    let window: Window

    private var inPerGroup: Int { input.channels / window.groups }
    private var outPerGroup: Int { window.outChannels / window.groups }

    /// Calls `body(o, c, ki, kj, inputIndex, outputIndex)` for every term of every output.
    private func forEachTerm(batch: Int, _ body: (Int, Int, Int, Int, Int, Int) -> Void) {
        let w = window
        for n in 0..<batch {
            for o in 0..<w.outChannels {
                let g = o / outPerGroup
                for ho in 0..<output.height {
                    for wo in 0..<output.width {
                        let outIndex = ((n * output.channels + o) * output.height + ho) * output.width + wo
                        for ci in 0..<inPerGroup {
                            let c = g * inPerGroup + ci
                            for ki in 0..<w.kernelHeight {
                                let h = ho - w.paddingHeight + ki * w.dilation
                                guard h >= 0, h < input.height else { continue }
                                for kj in 0..<w.kernelWidth {
                                    let x = wo - w.paddingWidth + kj * w.dilation
                                    guard x >= 0, x < input.width else { continue }
                                    body(o, ci, ki, kj, ((n * input.channels + c) * input.height + h) * input.width + x, outIndex)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    private func weightIndex(_ o: Int, _ ci: Int, _ ki: Int, _ kj: Int) -> Int {
        ((o * inPerGroup + ci) * window.kernelHeight + ki) * window.kernelWidth + kj
    }

    func forward(_ x: [Float], _ w: [Float], _ b: [Float]?, batch: Int) -> [Double] {
        var y = [Double](repeating: 0, count: batch * output.elementCount)
        forEachTerm(batch: batch) { o, ci, ki, kj, i, out in y[out] += Double(w[weightIndex(o, ci, ki, kj)]) * Double(x[i]) }
        if let b {
            let hw = output.height * output.width
            for i in 0..<y.count { y[i] += Double(b[(i / hw) % output.channels]) }
        }
        return y
    }

    func backward(_ x: [Float], _ w: [Float], _ dy: [Float], batch: Int) -> (dx: [Double], dw: [Double]) {
        var dx = [Double](repeating: 0, count: batch * input.elementCount)
        var dw = [Double](repeating: 0, count: w.count)
        forEachTerm(batch: batch) { o, ci, ki, kj, i, out in
            let wi = weightIndex(o, ci, ki, kj)
            dx[i] += Double(w[wi]) * Double(dy[out])
            dw[wi] += Double(x[i]) * Double(dy[out])
        }
        return (dx, dw)
    }
}
