import XCTest
import Engine
import NASCore

/// Evaluation-mode max pooling is a separate, branch-free kernel without argmax (the latency path);
/// it must give exactly the training-mode outputs, including at padding, on ties and on all-negative
/// windows, and a backward after it the same input gradient.
final class MaxPoolModesTests: XCTestCase {
    func testEvaluationAndTrainingMaxPoolingGiveTheSameOutputs() throws {
        let configurations = [PoolAttributes(kernel: 3, stride: 2, padding: 1), PoolAttributes(kernel: 2, stride: 2),
                              PoolAttributes(kernel: 3, stride: 1, padding: 1), PoolAttributes(kernel: 5, stride: 3, padding: 2)]
        var rng = SeededGenerator(seed: 11)
        for attributes in configurations {
            for (batch, size, negative) in [(1, 9, false), (3, 8, false), (2, 7, true), (1, 11, true)] {
                var g = NetworkGraph(inputShape: FeatureShape(channels: 4, height: size, width: size))
                let pooled = g.add("pool", .maxPool(attributes), g.input)
                g.add("flat", .flatten, pooled)
                let side = (size + 2 * attributes.padding - attributes.kernel) / attributes.stride + 1
                let network = try Network(graph: g, classCount: 4 * side * side, rng: &rng)
                // Small integers: many ties; all-negative inputs: padding must never win.
                let values = (0..<(batch * 4 * size * size)).map { _ in Float(rng.nextInt(below: 7)) - (negative ? 10 : 3) }
                let x = Tensor(shape: [batch, 4, size, size], values: values)
                let evaluation = try network.forward(x, training: false)
                let training = try network.forward(x, training: true)
                XCTAssertEqual(evaluation.shape, training.shape)
                XCTAssertEqual(evaluation.values, training.values, "\(attributes), batch \(batch), \(size)×\(size), negative \(negative)")
                if negative { XCTAssertTrue(evaluation.values.allSatisfy { $0 < 0 }, "padding never wins") }
                // A backward after an evaluation forward (no argmax kept) routes the gradient as
                // after a training forward.
                let dy = Tensor(shape: training.shape, values: (0..<training.values.count).map { _ in Float(rng.nextInt(below: 9)) - 4 })
                let afterTraining = try XCTUnwrap(try network.backward(outputGradient: dy, computeInputGradient: true))
                _ = try network.forward(x, training: false)
                let afterEvaluation = try XCTUnwrap(try network.backward(outputGradient: dy, computeInputGradient: true))
                XCTAssertEqual(afterEvaluation.values, afterTraining.values, "input gradient, \(attributes), batch \(batch)")
                XCTAssertNotEqual(afterTraining.values.filter { $0 != 0 }.count, 0)
            }
        }
    }
}
