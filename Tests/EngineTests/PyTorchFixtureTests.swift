import Engine
import Foundation
import NASCore
import XCTest

/// Agreement with PyTorch 2.13 (fixtures written by `make_fixtures.py`): forward, loss with label
/// smoothing, all gradients, running statistics, evaluation mode, two SGD steps and two AdamW steps.
final class PyTorchFixtureTests: XCTestCase {
    struct Packed: Decodable {
        var shape: [Int]
        var values: [Float]
    }

    struct Run: Decodable {
        var learning_rate: Float
        var weight_decay: Float
        var momentum: Float?
        var nesterov: Bool?
        var losses: [Float]
        var after: [String: Packed]
    }

    struct Fixture: Decodable {
        var label_smoothing: Float
        var input: Packed
        var labels: [Int32]
        var initial: [String: Packed]
        var logits: Packed
        var loss: Float
        var input_gradient: Packed
        var gradients: [String: Packed]
        var after_forward: [String: Packed]
        var eval_logits: Packed
        var sgd: Run
        var adamw: Run
    }

    /// Mirrors `Reference.forward` in make_fixtures.py.
    static func fixtureGraph() -> NetworkGraph {
        var g = NetworkGraph(inputShape: FeatureShape(channels: 3, height: 9, width: 9))
        var x = g.add("conv1", .conv2d(Conv2dAttributes(outChannels: 8, kernel: 3, padding: 1)), g.input)
        x = g.add("bn1", .batchNorm(affine: true), x)
        x = g.add("relu1", .activation(.relu), x)
        x = g.add("conv2", .conv2d(Conv2dAttributes(outChannels: 8, kernel: 3, stride: 2, padding: 2, dilation: 2, groups: 2)), x)
        x = g.add("bn2", .batchNorm(affine: true), x)
        x = g.add("hswish", .activation(.hardSwish), x)
        let y = g.add("maxpool", .maxPool(PoolAttributes(kernel: 3, stride: 2, padding: 1)), x)
        let z = g.add("avgpool", .avgPool(PoolAttributes(kernel: 3, stride: 2, padding: 1, countIncludePadding: false)), x)
        x = g.add("add", .add, y, z)
        x = g.add("dw", .conv2d(Conv2dAttributes(outChannels: 8, kernel: 3, padding: 1, groups: 8, bias: true)), x)
        x = g.add("relu6", .activation(.relu6), x)
        x = g.add("pw", .conv2d(Conv2dAttributes(outChannels: 12, kernel: 1)), x)
        x = g.add("bn3", .batchNorm(affine: false), x)
        x = g.add("sigmoid", .activation(.sigmoid), x)
        x = g.add("gap", .globalAvgPool, x)
        g.add("fc", .linear(outFeatures: 5, bias: true), x)
        return g
    }

    private func loadFixture() throws -> Fixture {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "reference_network", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    private func makeNetwork(_ f: Fixture) throws -> Network {
        var rng = SeededGenerator(seed: 0)
        let network = try Network(graph: Self.fixtureGraph(), classCount: 5, rng: &rng)
        let tensors = f.initial.map { (name: $0.key, shape: $0.value.shape, values: $0.value.values) }
        try network.load(namedTensors: tensors)
        return network
    }

    private func assertState(_ network: Network, _ expected: [String: Packed], _ what: String, rtol: Float = 1e-4,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(Set(network.namedTensors().map(\.name)), Set(expected.keys), file: file, line: line)
        for t in network.namedTensors() {
            guard let e = expected[t.name] else { continue }
            XCTAssertEqual(t.shape, e.shape, t.name, file: file, line: line)
            assertClose(t.values, e.values, rtol: rtol, atol: 1e-5, "\(what) \(t.name)", file: file, line: line)
        }
    }

    /// Every test runs with 2 compute threads (its own ``ComputeContext``).
    override func invokeTest() { ComputeContext(threads: 2).run { super.invokeTest() } }

    func testForwardLossAndGradients() throws {
        let f = try loadFixture()
        let network = try makeNetwork(f)
        let x = Tensor(shape: f.input.shape, values: f.input.values)
        let logits = try network.forward(x, training: true)
        XCTAssertEqual(logits.shape, f.logits.shape)
        assertClose(logits.values, f.logits.values, rtol: 1e-4, atol: 1e-5, "logits")
        let (loss, lossGradient) = try softmaxCrossEntropy(logits: logits, labels: f.labels, labelSmoothing: f.label_smoothing)
        XCTAssertEqual(loss, f.loss, accuracy: 1e-4 * abs(f.loss))
        let inputGradient = try XCTUnwrap(network.backward(outputGradient: lossGradient, computeInputGradient: true))
        assertClose(inputGradient.values, f.input_gradient.values, rtol: 1e-4, atol: 2e-6, "input gradient")
        for p in network.parameters {
            let e = try XCTUnwrap(f.gradients[p.name], p.name)
            assertClose(p.gradient, e.values, rtol: 1e-4, atol: 2e-6, "gradient \(p.name)")
        }
        XCTAssertEqual(Set(network.parameters.map(\.name)), Set(f.gradients.keys))
        // Running statistics after one training forward (two forwards happened: undo by reloading).
        let fresh = try makeNetwork(f)
        _ = try fresh.lossAndGradients(input: x, labels: f.labels, labelSmoothing: f.label_smoothing)
        assertState(fresh, f.after_forward, "after forward")
        for p in fresh.parameters {
            assertClose(p.gradient, f.gradients[p.name]!.values, rtol: 1e-4, atol: 2e-6, "fused step gradient \(p.name)")
        }
        let evalLogits = try fresh.forward(x, training: false)
        assertClose(evalLogits.values, f.eval_logits.values, rtol: 1e-4, atol: 1e-5, "evaluation logits")
    }

    private func checkOptimizer(_ run: Run, _ optimizer: Optimizer, _ f: Fixture, file: StaticString = #filePath, line: UInt = #line) throws {
        let network = try makeNetwork(f)
        let x = Tensor(shape: f.input.shape, values: f.input.values)
        for expectedLoss in run.losses {
            let (loss, _) = try network.lossAndGradients(input: x, labels: f.labels, labelSmoothing: f.label_smoothing)
            XCTAssertEqual(loss, expectedLoss, accuracy: 1e-4 * abs(expectedLoss), file: file, line: line)
            optimizer.update(network.parameters)
        }
        assertState(network, run.after, "after two steps", file: file, line: line)
    }

    func testSGDWithNesterovMomentumAndWeightDecay() throws {
        let f = try loadFixture()
        let s = f.sgd
        try checkOptimizer(s, SGD(learningRate: s.learning_rate, momentum: s.momentum!, nesterov: s.nesterov!, weightDecay: s.weight_decay), f)
    }

    func testAdamW() throws {
        let f = try loadFixture()
        try checkOptimizer(f.adamw, AdamW(learningRate: f.adamw.learning_rate, weightDecay: f.adamw.weight_decay), f)
    }
}
