import Engine
import Foundation
import NASCore
import XCTest

/// The dense objectives (`Objective.segmentation`, `Objective.detection(CenterNet)`) against
/// references: per-pixel cross-entropy vs PyTorch's `F.cross_entropy(ignore_index=-100)`;
/// CenterNet's radius, heatmap targets and focal + L1 loss vs CenterNet's own python
/// (`Fixtures/dense_objectives.json`, written by `make_dense_fixtures.py`); the loss gradient vs
/// central finite differences; decoding of a hand-built output; segmentation accuracy of
/// `evaluate` vs `predictMasks`. Losses and gradients go through the public
/// `Network.loss(_:on:indices:)` and `outputGradient(ofNode:)`.
final class DenseObjectiveTests: XCTestCase {
    /// Every test runs with 2 compute threads (its own ``ComputeContext``).
    override func invokeTest() { ComputeContext(threads: 2).run { super.invokeTest() } }

    // MARK: - Fixture

    struct Packed: Decodable {
        var shape: [Int]
        var values: [Float]
    }

    struct PixelCase: Decodable {
        var logits: Packed
        var target: [Int32]
        var loss: Double
        var gradient: Packed
        var correct: Int
        var counted: Int
    }

    struct DetectionCase: Decodable {
        var count: Int
        var classes: Int
        var height: Int
        var width: Int
        var stride: Int
        /// `[image, class, x1, y1, x2, y2]` in input pixels.
        var boxes: [[Float]]
        var heatmap: Packed?
        var output: Packed?
        /// `[n, y, x, width, height, dx, dy]` in output cells.
        var objects: [[Double]]
        var positives: Int?
        var focal: Double?
        var size_l1: Double?
        var offset_l1: Double?
        var size_l1_code: Double?
        var offset_l1_code: Double?
        var loss: Double?
        var gradient: Packed?

        var boxesBySample: [[ObjectBox]] {
            var out = [[ObjectBox]](repeating: [], count: count)
            for b in boxes {
                out[Int(b[0])].append(ObjectBox(image: Int(b[0]), classID: Int(b[1]), x1: b[2], y1: b[3], x2: b[4], y2: b[5]))
            }
            return out
        }
    }

    struct Fixture: Decodable {
        var pixel_cross_entropy: PixelCase
        /// `[height, width, radius]`.
        var gaussian_radius: [[Double]]
        var heatmap: DetectionCase
        var detection_loss: DetectionCase
    }

    private func loadFixture() throws -> Fixture {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "dense_objectives", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    /// A 1×1 convolution without bias whose weights are the identity, at `stride`: its output is
    /// the input sampled every `stride` pixels, so a test controls the network's output exactly.
    private func identityNetwork(channels: Int, height: Int, width: Int, stride: Int = 1) throws -> Network {
        var g = NetworkGraph(inputShape: FeatureShape(channels: channels, height: height, width: width))
        g.add("out", .conv2d(Conv2dAttributes(outChannels: channels, kernel: 1, stride: stride, bias: false)), g.input)
        var rng = SeededGenerator(seed: 0)
        let network = try Network(graph: g, rng: &rng)
        let weight = try XCTUnwrap(network.tensor(named: "out/weight"))
        var values = [Float](repeating: 0, count: channels * channels)
        for c in 0..<channels { values[c * channels + c] = 1 }
        weight.values = values
        return network
    }

    /// NCHW `output` values placed at every `stride`-th pixel of a larger zero input, so that
    /// `identityNetwork(stride:)` reproduces them.
    private func spread(_ output: Packed, stride: Int) -> [Float] {
        let (n, c, h, w) = (output.shape[0], output.shape[1], output.shape[2], output.shape[3])
        var input = [Float](repeating: 0, count: n * c * h * stride * w * stride)
        for i in 0..<(n * c) {
            for y in 0..<h {
                for x in 0..<w {
                    input[(i * h * stride + y * stride) * w * stride + x * stride] = output.values[(i * h + y) * w + x]
                }
            }
        }
        return input
    }

    // MARK: - Per-pixel cross-entropy

    func testPixelCrossEntropyMatchesPyTorchWithIgnoredPixels() throws {
        let f = try loadFixture().pixel_cross_entropy
        let (n, k, h, w) = (f.logits.shape[0], f.logits.shape[1], f.logits.shape[2], f.logits.shape[3])
        XCTAssertEqual(f.target.filter { $0 == LabeledArrays.ignoreIndex }.count, 6)
        let network = try identityNetwork(channels: k, height: h, width: w)
        let data = LabeledArrays(features: f.logits.values, labels: [Int32](repeating: 0, count: n),
                                 sampleShape: FeatureShape(channels: k, height: h, width: w), classCount: k - 1, masks: f.target)
        let stats = try network.loss(.segmentation, on: data, indices: [0, 1])
        XCTAssertEqual(Double(stats.loss), f.loss, accuracy: 1e-5)
        XCTAssertEqual(stats.correct, f.correct)
        XCTAssertEqual(stats.counted, f.counted)
        let gradient = try XCTUnwrap(network.outputGradient(ofNode: "out"))
        XCTAssertEqual(gradient.shape, f.gradient.shape)
        assertClose(gradient.values, f.gradient.values, rtol: 0, atol: 1e-5, "∂loss/∂logits")
        // Ignored pixels get no gradient in any channel.
        for s in 0..<n {
            for p in 0..<(h * w) where f.target[s * h * w + p] == LabeledArrays.ignoreIndex {
                for c in 0..<k { XCTAssertEqual(gradient.values[(s * k + c) * h * w + p], 0) }
            }
        }

        // Samples in another order: the same loss (a mean over all counted pixels of the batch).
        XCTAssertEqual(Double(try network.loss(.segmentation, on: data, indices: [1, 0]).loss), f.loss, accuracy: 1e-5)
    }

    /// PyTorch returns NaN (0/0) for a batch whose pixels are all ignored; NASLab returns loss 0
    /// and a zero gradient instead, so that a scene without labelled pixels neither stops training
    /// (the trainer ends a run on a NaN loss) nor moves the weights.
    func testAllIgnoredBatchHasZeroLossAndZeroGradient() throws {
        let f = try loadFixture().pixel_cross_entropy
        let (n, k, h, w) = (f.logits.shape[0], f.logits.shape[1], f.logits.shape[2], f.logits.shape[3])
        let network = try identityNetwork(channels: k, height: h, width: w)
        let shape = FeatureShape(channels: k, height: h, width: w)
        let labelled = LabeledArrays(features: f.logits.values, labels: [Int32](repeating: 0, count: n), sampleShape: shape,
                                     classCount: k - 1, masks: f.target)
        // A labelled batch first, so the gradient buffers hold non-zero values that must be overwritten.
        try network.loss(.segmentation, on: labelled, indices: [0, 1])
        XCTAssertTrue(try XCTUnwrap(network.outputGradient(ofNode: "out")).values.contains { $0 != 0 })

        var ignored = labelled
        ignored.masks = [Int32](repeating: LabeledArrays.ignoreIndex, count: n * h * w)
        let stats = try network.loss(.segmentation, on: ignored, indices: [0, 1])
        XCTAssertEqual(stats.loss, 0)
        XCTAssertEqual(stats.counted, 0)
        XCTAssertEqual(stats.correct, 0)
        XCTAssertTrue(try XCTUnwrap(network.outputGradient(ofNode: "out")).values.allSatisfy { $0 == 0 })
        for p in network.parameters { XCTAssertTrue(p.gradient.allSatisfy { $0 == 0 }, p.name) }
        // evaluate: loss 0; no pixel counted, so the accuracy is undefined (NaN), not 0 or 1.
        let (loss, accuracy) = try evaluate(network, on: ignored, objective: .segmentation)
        XCTAssertEqual(loss, 0)
        XCTAssertTrue(accuracy.isNaN)
    }

    func testSegmentationTargetsAreChecked() throws {
        let network = try identityNetwork(channels: 4, height: 2, width: 2)
        let shape = FeatureShape(channels: 4, height: 2, width: 2)
        let features = [Float](repeating: 0, count: 16)
        // Class id 4 with 3 object classes (ids 0...3 allowed, plus -100).
        let bad = LabeledArrays(features: features, labels: [0], sampleShape: shape, classCount: 3, masks: [0, 3, -100, 4])
        XCTAssertThrowsError(try network.loss(.segmentation, on: bad, indices: [0]))
        let none = LabeledArrays(features: features, labels: [0], sampleShape: shape, classCount: 3)
        XCTAssertThrowsError(try network.loss(.segmentation, on: none, indices: [0])) { XCTAssertTrue("\($0)".contains("masks"), "\($0)") }
        // The output must be background + classes at the input resolution.
        let wrong = LabeledArrays(features: features, labels: [0], sampleShape: shape, classCount: 4, masks: [0, 0, 0, 0])
        XCTAssertThrowsError(try network.loss(.segmentation, on: wrong, indices: [0])) { XCTAssertTrue("\($0)".contains("5x2x2"), "\($0)") }
        let good = LabeledArrays(features: features, labels: [0], sampleShape: shape, classCount: 3, masks: [0, 3, -100, 1])
        XCTAssertThrowsError(try network.loss(.segmentation, on: good, indices: [1]))
    }

    // MARK: - CenterNet targets

    func testGaussianRadiusMatchesCenterNet() throws {
        let grid = try loadFixture().gaussian_radius
        XCTAssertEqual(grid.count, 144)
        let head = CenterNet()
        for row in grid {
            let r = head.gaussianRadius(height: row[0], width: row[1])
            XCTAssertEqual(r, row[2], accuracy: 1e-12 * max(1, row[2]), "\(row[0])x\(row[1])")
        }
    }

    func testHeatmapTargetsMatchCenterNetDrawUmichGaussian() throws {
        let f = try loadFixture().heatmap
        let reference = try XCTUnwrap(f.heatmap)
        let (n, k, h, w) = (f.count, f.classes, f.height, f.width)
        let targets = CenterNet().targets(boxes: f.boxesBySample, classCount: k, outputHeight: h, outputWidth: w, stride: f.stride)
        // The engine's heatmap is channel-major [K][N][H][W]; the fixture is NCHW [N][K][H][W].
        XCTAssertEqual(targets.heatmap.count, n * k * h * w)
        var reordered = [Float](repeating: 0, count: n * k * h * w)
        for c in 0..<k {
            for s in 0..<n {
                for p in 0..<(h * w) { reordered[(s * k + c) * h * w + p] = targets.heatmap[(c * n + s) * h * w + p] }
            }
        }
        assertClose(reordered, reference.values, rtol: 1e-6, atol: 1e-7, "heatmap")
        // Exactly one 1 per object (the object centres are distinct), a Gaussian cut at the left
        // and bottom borders, the maximum where two boxes of one class overlap.
        XCTAssertEqual(reordered.filter { $0 == 1 }.count, f.objects.count)
        // The box of zero width has no target: 8 boxes, 7 objects.
        XCTAssertEqual(f.boxes.count, 8)
        XCTAssertEqual(targets.objects.count, f.objects.count)
        for (o, e) in zip(targets.objects, f.objects) {
            XCTAssertEqual([o.n, o.y, o.x], [Int(e[0]), Int(e[1]), Int(e[2])])
            assertClose([o.width, o.height, o.dx, o.dy], e[3...].map { Float($0) }, rtol: 0, atol: 1e-6, "object \(e)")
        }
    }

    // MARK: - CenterNet loss

    private func detectionData(_ f: DetectionCase) throws -> (Network, LabeledArrays) {
        let output = try XCTUnwrap(f.output)
        let c = f.classes + CenterNet.regressionChannels
        let network = try identityNetwork(channels: c, height: f.height * f.stride, width: f.width * f.stride, stride: f.stride)
        let data = LabeledArrays(features: spread(output, stride: f.stride), labels: [Int32](repeating: 0, count: f.count),
                                 sampleShape: FeatureShape(channels: c, height: f.height * f.stride, width: f.width * f.stride),
                                 classCount: f.classes, boxes: f.boxesBySample.flatMap { $0 })
        return (network, data)
    }

    func testDetectionLossMatchesCenterNetFocalLossAndPaperL1() throws {
        let f = try loadFixture().detection_loss
        let (network, data) = try detectionData(f)
        let all = Array(0..<f.count)
        // The network reproduces the fixture's output at stride 4.
        XCTAssertEqual(network.outputShape, FeatureShape(channels: f.classes + 4, height: f.height, width: f.width))
        assertClose(try network.forward(Tensor(shape: [f.count, f.classes + 4, f.height * f.stride, f.width * f.stride],
                                               values: data.features), training: false).values,
                    try XCTUnwrap(f.output).values, rtol: 0, atol: 0, "identity output")

        let stats = try network.loss(.detection(CenterNet()), on: data, indices: all)
        let expected = try XCTUnwrap(f.loss)
        XCTAssertEqual(Double(stats.loss), expected, accuracy: 1e-5 * expected)
        XCTAssertEqual(stats.counted, 0, "detection counts nothing")
        let gradient = try XCTUnwrap(network.outputGradient(ofNode: "out"))
        assertClose(gradient.values, try XCTUnwrap(f.gradient).values, rtol: 1e-4, atol: 1e-6, "∂loss/∂output")

        // Term by term, with the other weights set to 0.
        var focalOnly = CenterNet()
        focalOnly.sizeWeight = 0
        focalOnly.offsetWeight = 0
        let focal = Double(try network.loss(.detection(focalOnly), on: data, indices: all).loss)
        XCTAssertEqual(focal, try XCTUnwrap(f.focal), accuracy: 1e-5 * focal)
        var sizeOnly = focalOnly
        sizeOnly.sizeWeight = 1
        let size = Double(try network.loss(.detection(sizeOnly), on: data, indices: all).loss) - focal
        XCTAssertEqual(size, try XCTUnwrap(f.size_l1), accuracy: 1e-4)
        var offsetOnly = focalOnly
        offsetOnly.offsetWeight = 1
        let offset = Double(try network.loss(.detection(offsetOnly), on: data, indices: all).loss) - focal
        XCTAssertEqual(offset, try XCTUnwrap(f.offset_l1), accuracy: 1e-4)
        // The L1 terms follow the paper (sum of |Δw|+|Δh| over objects / N); CenterNet's code
        // (RegL1Loss) divides by 2N + 1e-4, i.e. it is half of it.
        XCTAssertEqual(size / 2, try XCTUnwrap(f.size_l1_code), accuracy: 1e-4)
        XCTAssertEqual(offset / 2, try XCTUnwrap(f.offset_l1_code), accuracy: 1e-4)
        // CenterNet normalises by its positives (heatmap cells equal to 1): here the object count.
        XCTAssertEqual(f.positives, f.objects.count)
    }

    /// ∂loss/∂output of the whole detection loss vs central differences of the loss in every
    /// output element (through the identity network, which passes a perturbation of its input
    /// straight to its output).
    func testDetectionLossGradientMatchesFiniteDifferencesOfTheOutput() throws {
        let f = try loadFixture().detection_loss
        let (network, data) = try detectionData(f)
        let head = CenterNet()
        try network.loss(.detection(head), on: data, indices: [0, 1])
        let analytical = try XCTUnwrap(network.outputGradient(ofNode: "out")).values
        let output = try XCTUnwrap(f.output)
        let (c, h, w, s) = (f.classes + 4, f.height, f.width, f.stride)
        let step: Float = 1e-3
        var perturbed = data
        var worst = 0.0
        for i in 0..<analytical.count {
            // Output element i (NCHW) sits at input pixel (4y, 4x) of the same sample and channel.
            let plane = i / (h * w), y = (i % (h * w)) / w, x = i % w
            let j = (plane * h * s + y * s) * w * s + x * s
            XCTAssertEqual(data.features[j], output.values[i])
            perturbed.features[j] = data.features[j] + step
            let plus = Double(try network.loss(.detection(head), on: perturbed, indices: [0, 1]).loss)
            perturbed.features[j] = data.features[j] - step
            let minus = Double(try network.loss(.detection(head), on: perturbed, indices: [0, 1]).loss)
            perturbed.features[j] = data.features[j]
            let numerical = (plus - minus) / (2 * Double(step))
            let error = abs(numerical - Double(analytical[i]))
            worst = max(worst, error)
            XCTAssertLessThanOrEqual(error, 2e-3 + 1e-2 * abs(numerical), "output element \(i) (channel \((i / (h * w)) % c))")
        }
        XCTAssertLessThan(worst, 2e-3)
    }

    /// The gradient of the whole detection loss flows through a network: a single 3×3 convolution
    /// producing K+4 channels at stride 1 on 1×8×8 inputs; its weight and bias gradients vs central
    /// differences (the bias gradient of a channel is the sum of ∂loss/∂output over that plane).
    func testDetectionLossGradientThroughAConvolutionMatchesFiniteDifferences() throws {
        let k = 2
        var g = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 8, width: 8))
        g.add("head", .conv2d(Conv2dAttributes(outChannels: k + 4, kernel: 3, padding: 1, bias: true)), g.input)
        var rng = SeededGenerator(seed: 21)
        let network = try Network(graph: g, rng: &rng)
        let boxes = [
            ObjectBox(image: 0, classID: 0, x1: 0.6, y1: 1.2, x2: 4.3, y2: 5.5),
            ObjectBox(image: 0, classID: 1, x1: 3.2, y1: 2.6, x2: 7.9, y2: 7.1),
            ObjectBox(image: 1, classID: 1, x1: 0.3, y1: 0.4, x2: 3.5, y2: 2.9),
        ]
        let data = LabeledArrays(features: randomNormal(2 * 64, &rng), labels: [0, 0],
                                 sampleShape: FeatureShape(channels: 1, height: 8, width: 8), classCount: k, boxes: boxes)
        XCTAssertEqual(network.outputShape, FeatureShape(channels: k + 4, height: 8, width: 8), "stride 1: input / output height")
        let head = CenterNet()
        let loss0 = try network.loss(.detection(head), on: data, indices: [0, 1]).loss
        XCTAssertTrue(loss0.isFinite && loss0 > 0)
        let outputGradient = try XCTUnwrap(network.outputGradient(ofNode: "head"))
        let gradients = network.parameters.map(\.gradient)

        // No L1 kink within the steps: every regression output at an object cell is farther from its
        // target than one step of a weight or the bias can move it (step × (1 + 9 max |x|)).
        let step: Float = 1e-3
        let reach = step * (1 + 9 * data.features.map { abs($0) }.max()!)
        let y = try network.forward(Tensor(shape: [2, 1, 8, 8], values: data.features), training: false).values
        let targets = head.targets(boxes: data.boxesBySample!, classCount: k, outputHeight: 8, outputWidth: 8, stride: 1)
        XCTAssertEqual(targets.objects.count, 3)
        for o in targets.objects {
            for (channel, target) in zip(k..<(k + 4), [o.width, o.height, o.dx, o.dy]) {
                XCTAssertGreaterThan(abs(y[((o.n * (k + 4) + channel) * 8 + o.y) * 8 + o.x] - target), reach)
            }
        }

        // Bias gradient = per-channel sum of the output gradient.
        let bias = try XCTUnwrap(network.tensor(named: "head/bias"))
        let biasIndex = try XCTUnwrap(network.parameters.firstIndex { $0 === bias })
        for channel in 0..<(k + 4) {
            var sum = 0.0
            for n in 0..<2 { for p in 0..<64 { sum += Double(outputGradient.values[(n * (k + 4) + channel) * 64 + p]) } }
            XCTAssertEqual(Double(gradients[biasIndex][channel]), sum, accuracy: 1e-4 * max(1, abs(sum)))
        }
        for (p, analytical) in zip(network.parameters, gradients) {
            let original = p.values
            for i in 0..<original.count {
                var v = original
                v[i] += step
                p.values = v
                let plus = Double(try network.loss(.detection(head), on: data, indices: [0, 1]).loss)
                v[i] = original[i] - step
                p.values = v
                let minus = Double(try network.loss(.detection(head), on: data, indices: [0, 1]).loss)
                p.values = original
                let numerical = (plus - minus) / (2 * Double(step))
                XCTAssertEqual(Double(analytical[i]), numerical, accuracy: 3e-3 + 1e-2 * abs(numerical), "\(p.name)[\(i)]")
            }
        }
    }

    func testDetectionNeedsBoxesOfKnownClasses() throws {
        let network = try identityNetwork(channels: 6, height: 4, width: 4)
        let shape = FeatureShape(channels: 6, height: 4, width: 4)
        let features = [Float](repeating: 0, count: 96)
        let none = LabeledArrays(features: features, labels: [0], sampleShape: shape, classCount: 2)
        XCTAssertThrowsError(try network.loss(.detection(CenterNet()), on: none, indices: [0])) { XCTAssertTrue("\($0)".contains("boxes"), "\($0)") }
        let bad = LabeledArrays(features: features, labels: [0], sampleShape: shape, classCount: 2,
                                boxes: [ObjectBox(image: 0, classID: 2, x1: 0, y1: 0, x2: 2, y2: 2)])
        XCTAssertThrowsError(try network.loss(.detection(CenterNet()), on: bad, indices: [0]))
        // No objects: the focal loss of the negatives alone, divided by 1.
        let empty = LabeledArrays(features: features, labels: [0], sampleShape: shape, classCount: 2, boxes: [])
        let stats = try network.loss(.detection(CenterNet()), on: empty, indices: [0])
        // Every heatmap logit is 0: p = 1/2, per position −(1/2)² log(1/2); 2 classes × 16 positions.
        XCTAssertEqual(Double(stats.loss), 32 * 0.25 * log(2.0), accuracy: 1e-5)
    }

    // MARK: - Decoding

    /// Two classes on a 6×6 output at stride 4 (24×24 images): a peak of class 0 with a direct and a
    /// diagonal neighbour that are not maxima of their 3×3 neighbourhood; class 1 has a peak at the
    /// position of that neighbour (non-maximum suppression is per class), a weaker peak whose box
    /// leaves the image (clipped), and a bump below the score threshold; everything else is −10.
    private func handBuiltOutput() -> [Float] {
        let (k, h, w) = (2, 6, 6)
        let plane = h * w
        var v = [Float](repeating: 0, count: (k + 4) * plane)
        for i in 0..<(k * plane) { v[i] = -10 }
        func set(_ c: Int, _ y: Int, _ x: Int, _ value: Float) { v[c * plane + y * w + x] = value }
        func box(_ y: Int, _ x: Int, _ bw: Float, _ bh: Float, _ dx: Float, _ dy: Float) {
            set(k, y, x, bw); set(k + 1, y, x, bh); set(k + 2, y, x, dx); set(k + 3, y, x, dy)
        }
        set(0, 2, 3, 2.0)   // class 0 peak
        set(0, 2, 4, 1.5)   // its right neighbour: suppressed
        set(0, 3, 2, 1.0)   // its diagonal neighbour: suppressed
        set(1, 2, 4, 1.2)   // class 1 peak at the suppressed class-0 position
        set(1, 5, 1, 0.5)   // class 1, weaker, box clipped at the image's left and bottom edges
        set(1, 0, 0, -5)    // a local maximum with score σ(−5) ≈ 0.0067 < 0.01
        box(2, 3, 3, 2, 0.25, 0.5)
        box(2, 4, 2, 4, 0.5, 0)
        box(5, 1, 4, 2.5, 0.5, 0)
        box(0, 0, 2, 2, 0.5, 0.5)
        return v
    }

    private func sigmoid(_ z: Float) -> Float { Float(1 / (1 + exp(-Double(z)))) }

    func testDecodeFindsExactlyTheExpectedBoxes() throws {
        let v = handBuiltOutput()
        func decode(_ head: CenterNet) -> [ObjectBox] {
            v.withUnsafeBufferPointer { head.decode(sample: $0, classCount: 2, height: 6, width: 6, stride: 4, image: 3,
                                                    imageHeight: 24, imageWidth: 24) }
        }
        let expected = [
            // cx = 3 + 0.25, cy = 2 + 0.5, 3×2 cells → ×4 pixels.
            ObjectBox(image: 3, classID: 0, x1: 7, y1: 6, x2: 19, y2: 14, score: sigmoid(2)),
            // cx = 4.5, cy = 2, 2×4 cells.
            ObjectBox(image: 3, classID: 1, x1: 14, y1: 0, x2: 22, y2: 16, score: sigmoid(1.2)),
            // cx = 1.5, cy = 5, 4×2.5 cells: x1 = −2 and y2 = 25 are clipped to the 24×24 image.
            ObjectBox(image: 3, classID: 1, x1: 0, y1: 15, x2: 14, y2: 24, score: sigmoid(0.5)),
        ]
        XCTAssertEqual(decode(CenterNet()), expected)
        var top2 = CenterNet()
        top2.topK = 2
        XCTAssertEqual(decode(top2), Array(expected.prefix(2)))
        var strict = CenterNet()
        strict.scoreThreshold = 0.7
        XCTAssertEqual(decode(strict), Array(expected.prefix(2)))
        // A lower threshold admits the bump (but not the −10 plateau, σ(−10) ≈ 4.5e-5), last.
        var lenient = CenterNet()
        lenient.scoreThreshold = 0.005
        let all = decode(lenient)
        XCTAssertEqual(Array(all.prefix(3)), expected)
        XCTAssertEqual(all.count, 4)
        XCTAssertEqual(all.last, ObjectBox(image: 3, classID: 1, x1: 0, y1: 0, x2: 6, y2: 6, score: sigmoid(-5)))
    }

    /// `Network.predictBoxes` decodes every sample of a batch with its image index (stride from
    /// the network's input / output height).
    func testPredictBoxesDecodesEverySample() throws {
        let v = handBuiltOutput()
        let network = try identityNetwork(channels: 6, height: 24, width: 24, stride: 4)
        let one = spread(Packed(shape: [1, 6, 6, 6], values: v), stride: 4)
        let empty = [Float](repeating: -10, count: one.count)
        let data = LabeledArrays(features: empty + one, labels: [0, 0], sampleShape: FeatureShape(channels: 6, height: 24, width: 24),
                                 classCount: 2, boxes: [])
        let boxes = try network.predictBoxes(data, classCount: 2, batchSize: 1)
        let expected = v.withUnsafeBufferPointer {
            CenterNet().decode(sample: $0, classCount: 2, height: 6, width: 6, stride: 4, image: 1, imageHeight: 24, imageWidth: 24)
        }
        XCTAssertEqual(boxes, expected)
        XCTAssertEqual(boxes.count, 3)
        XCTAssertThrowsError(try network.predictBoxes(data, classCount: 3), "6 channels are 2 classes + 4")
    }

    // MARK: - Fused behaviour

    func testSegmentationEvaluateAccuracyIsPixelAccuracyOfPredictMasks() throws {
        let (n, h, w, classes) = (5, 6, 7, 3)
        var g = NetworkGraph(inputShape: FeatureShape(channels: 1, height: h, width: w))
        g.add("head", .conv2d(Conv2dAttributes(outChannels: classes + 1, kernel: 3, padding: 1, bias: true)), g.input)
        var rng = SeededGenerator(seed: 8)
        let network = try Network(graph: g, rng: &rng)
        var masks = (0..<(n * h * w)).map { _ in Int32(rng.nextInt(below: classes + 1)) }
        for i in stride(from: 0, to: masks.count, by: 9) { masks[i] = LabeledArrays.ignoreIndex }
        let data = LabeledArrays(features: randomNormal(n * h * w, &rng, scale: 2), labels: [Int32](repeating: 0, count: n),
                                 sampleShape: FeatureShape(channels: 1, height: h, width: w), classCount: classes, masks: masks)
        let predicted = try network.predictMasks(data, batchSize: 3)
        XCTAssertEqual(predicted.count, masks.count)
        XCTAssertTrue(predicted.allSatisfy { (0...Int32(classes)).contains($0) })
        var correct = 0, counted = 0
        for (p, t) in zip(predicted, masks) where t != LabeledArrays.ignoreIndex {
            counted += 1
            if p == t { correct += 1 }
        }
        XCTAssertGreaterThan(correct, 0)
        XCTAssertLessThan(correct, counted)
        let (loss, accuracy) = try evaluate(network, on: data, objective: .segmentation, batchSize: 2)
        XCTAssertEqual(accuracy, Double(correct) / Double(counted))
        XCTAssertTrue(loss.isFinite && loss > 0)
        // The per-batch statistic of a training step counts the same pixels (no batch norm, no dropout).
        let stats = try network.loss(.segmentation, on: data, indices: Array(0..<n))
        XCTAssertEqual(stats.correct, correct)
        XCTAssertEqual(stats.counted, counted)
    }
}
