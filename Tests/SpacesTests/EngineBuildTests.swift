import Engine
import Estimators
import Foundation
import NASCore
import Spaces
import XCTest

/// Every sampled architecture of every shipped space builds in the engine and runs forward and
/// backward (finite loss, finite gradients, the decoded parameter count equals the engine's).
final class EngineBuildTests: XCTestCase {
    override func invokeTest() { ComputeContext(threads: 1).run { super.invokeTest() } }

    func testSampledArchitecturesTrainOneStepInTheEngine() throws {
        var rng = SeededGenerator(seed: 2026)
        let cases: [(String, Int, [(FeatureShape, Int)])] = [
            ("small", 12, inputShapes),
            ("medium", 6, [inputShapes[0], inputShapes[1]]),
            ("large", 4, [inputShapes[0], inputShapes[2]]),
            ("nasbench201", 3, [(FeatureShape(channels: 3, height: 16, width: 16), 10)]),
            ("reference/cnn", 1, [inputShapes[0]]),
        ]
        for (name, samples, shapes) in cases {
            let space = try loadSpace(name)
            for (shape, classes) in shapes {
                for _ in 0..<samples {
                    let architecture = space.isFixed ? Architecture(choices: []) : space.sample(using: &rng)
                    let graph = try space.network(for: architecture, inputShape: shape, classCount: classes)
                    let network = try Network(graph: graph, classCount: classes, rng: &rng)
                    XCTAssertEqual(network.parameterCount, try graph.cost().parameters, "\(name) \(space.text(of: architecture))")
                    let batch = 3
                    let x = Tensor(shape: [batch, shape.channels, shape.height, shape.width],
                                   values: (0..<(batch * shape.elementCount)).map { _ in Float(rng.nextNormal()) })
                    let labels = (0..<batch).map { _ in Int32(rng.nextInt(below: classes)) }
                    let (loss, _) = try network.lossAndGradients(input: x, labels: labels)
                    XCTAssertTrue(loss.isFinite, "\(name) at \(shape): loss \(loss) for \(space.text(of: architecture))")
                    for p in network.parameters {
                        XCTAssertTrue(p.gradient.allSatisfy(\.isFinite), "\(name): non-finite gradient in \(p.name)")
                    }
                }
            }
        }
    }
}
