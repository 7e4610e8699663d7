import Engine
import Foundation
import NASCore
import XCTest

/// The reference CNN for 8×8 digits: conv3×3 1→16 pad 1, BN, ReLU, conv3×3 16→32 pad 1 stride 2,
/// BN, ReLU, global average pool, linear 32→10.
func digitsReferenceGraph(width: Int = 16) -> NetworkGraph {
    var g = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 8, width: 8))
    var x = g.add("conv1", .conv2d(Conv2dAttributes(outChannels: width, kernel: 3, padding: 1)), g.input)
    x = g.add("bn1", .batchNorm(affine: true), x)
    x = g.add("relu1", .activation(.relu), x)
    x = g.add("conv2", .conv2d(Conv2dAttributes(outChannels: 2 * width, kernel: 3, stride: 2, padding: 1)), x)
    x = g.add("bn2", .batchNorm(affine: true), x)
    x = g.add("relu2", .activation(.relu), x)
    x = g.add("gap", .globalAvgPool, x)
    g.add("fc", .linear(outFeatures: 10, bias: true), x)
    return g
}

/// A seeded 80/20 split of the digits.
func digitsSplit(seed: UInt64 = 2024) throws -> (train: LabeledArrays, test: LabeledArrays) {
    let all = try loadDigits()
    var rng = SeededGenerator(seed: seed)
    var order = Array(0..<all.count)
    rng.shuffle(&order)
    let cut = all.count * 4 / 5
    return (all.subset(Array(order[..<cut])), all.subset(Array(order[cut...])))
}

final class TrainingTests: XCTestCase {
    /// Every test runs with 2 compute threads (its own ``ComputeContext``).
    override func invokeTest() { ComputeContext(threads: 2).run { super.invokeTest() } }

    func testDigitsConvergence() throws {
        let (train, test) = try digitsSplit()
        XCTAssertEqual(train.count + test.count, 1797)
        var rng = SeededGenerator(seed: 1)
        let network = try Network(graph: digitsReferenceGraph(), classCount: 10, rng: &rng)
        // SGD + Nesterov, cosine with 1 warm-up epoch, label smoothing 0.1 (≈ 98.9 % here, ≈ 5 s).
        let configuration = TrainingConfiguration(epochs: 40, batchSize: 32, learningRate: 0.1, optimizer: .sgd,
                                                  momentum: 0.9, nesterov: true, weightDecay: 5e-4,
                                                  schedule: .cosine(minimumFactor: 0), warmupEpochs: 1,
                                                  labelSmoothing: 0.1, seed: 3)
        var events = [String]()
        let observer = ClosureObserver { event in
            switch event {
            case .fitStart: events.append("fitStart")
            case .epochStart: events.append("epochStart")
            case .batchEnd: if events.last != "batchEnd" { events.append("batchEnd") }
            case .epochEnd: events.append("epochEnd")
            case .fitEnd: events.append("fitEnd")
            }
        }
        let start = Date()
        let result = try Trainer(configuration: configuration, observers: [observer, ProgressBar()])
            .fit(network, train: train, validation: test, test: test)
        let seconds = Date().timeIntervalSince(start)
        XCTAssertEqual(result.status, .completed)
        XCTAssertEqual(result.epochs.count, 40)
        XCTAssertEqual(events.prefix(4), ["fitStart", "epochStart", "batchEnd", "epochEnd"])
        XCTAssertEqual(events.last, "fitEnd")
        XCTAssertLessThan(result.epochs.last!.trainLoss, result.epochs.first!.trainLoss)
        let accuracy = try XCTUnwrap(result.testAccuracy)
        print("digits: test accuracy \(accuracy), \(String(format: "%.1f", seconds)) s, losses \(result.trainLosses.map { String(format: "%.3f", $0) })")
        XCTAssertGreaterThanOrEqual(accuracy, 0.97)
        let (loss, evaluated) = try evaluate(network, on: test)
        XCTAssertEqual(evaluated, accuracy, accuracy: 1e-12)
        XCTAssertEqual(loss, result.testLoss!, accuracy: 1e-9)
        // Probabilities sum to one and agree with accuracy.
        let probabilities = try predict(network, on: test, batchSize: 100)
        XCTAssertEqual(probabilities.shape, [test.count, 10])
        var correct = 0
        for n in 0..<test.count {
            let row = probabilities.values[(n * 10)..<(n * 10 + 10)]
            XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-4)
            if row.indices.max(by: { row[$0] < row[$1] })! - n * 10 == Int(test.labels[n]) { correct += 1 }
        }
        XCTAssertEqual(Double(correct) / Double(test.count), accuracy, accuracy: 1e-9)
        let firstTwo = Tensor(shape: [2, 1, 8, 8], values: Array(test.features[0..<128]))
        assertClose(try predict(network, firstTwo).values, Array(probabilities.values[0..<20]), rtol: 1e-5, atol: 1e-7, "predict(tensor)")
    }

    /// An NAS-Bench-201-like cell (4 nodes, each the sum of ops on all earlier nodes: conv3×3,
    /// conv1×1, avg-pool, skip, zero) trains on the digits.
    func testCellNetworkTrains() throws {
        let (train, test) = try digitsSplit()
        var g = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 8, width: 8))
        var x = g.add("stem/conv", .conv2d(Conv2dAttributes(outChannels: 8, kernel: 3, padding: 1)), g.input)
        x = g.add("stem/bn", .batchNorm(affine: true), x)
        var nodes = [x]
        let ops = ["conv3", "skip", "pool", "conv1", "zero", "conv3"]
        var e = 0
        for j in 1...3 {
            var terms = [Int]()
            for (i, source) in nodes.enumerated() {
                let name = "cell/edge\(j)\(i)"
                switch ops[e % ops.count] {
                case "conv3", "conv1":
                    let k = ops[e % ops.count] == "conv3" ? 3 : 1
                    var y = g.add(name + "/relu", .activation(.relu), source)
                    y = g.add(name + "/conv", .conv2d(Conv2dAttributes(outChannels: 8, kernel: k, padding: k / 2)), y)
                    terms.append(g.add(name + "/bn", .batchNorm(affine: false), y))
                case "pool":
                    terms.append(g.add(name + "/pool", .avgPool(PoolAttributes(kernel: 3, stride: 1, padding: 1, countIncludePadding: false)), source))
                case "zero":
                    terms.append(g.add(name + "/zero", .zero(stride: 1), source))
                default:
                    terms.append(g.add(name + "/skip", .identity, source))
                }
                e += 1
            }
            nodes.append(terms.count == 1 ? terms[0] : g.add("cell/node\(j)", .add, inputs: terms))
        }
        x = g.add("head/bn", .batchNorm(affine: true), nodes.last!)
        x = g.add("head/relu", .activation(.relu), x)
        x = g.add("head/gap", .globalAvgPool, x)
        g.add("head/fc", .linear(outFeatures: 10, bias: true), x)
        var rng = SeededGenerator(seed: 21)
        let network = try Network(graph: g, classCount: 10, rng: &rng)
        let c = TrainingConfiguration(epochs: 12, batchSize: 32, learningRate: 0.1, warmupEpochs: 1, seed: 4)
        let result = try Trainer(configuration: c).fit(network, train: train, validation: test, test: test)
        XCTAssertEqual(result.status, .completed)
        print("cell network: test accuracy \(result.testAccuracy!), \(String(format: "%.1f", result.wallSeconds)) s")
        XCTAssertGreaterThanOrEqual(result.testAccuracy!, 0.9)
        XCTAssertLessThan(result.epochs.last!.trainLoss, 0.5 * result.epochs.first!.trainLoss)
    }

    func testDeterminism() throws {
        let (train, test) = try digitsSplit()
        let small = train.subset(Array(0..<400))
        var graph = digitsReferenceGraph(width: 8)
        graph = { () -> NetworkGraph in
            // Add dropout so that its generator is covered too.
            var g = NetworkGraph(inputShape: graph.inputShape)
            for node in graph.nodes.dropFirst() {
                if node.name == "fc" {
                    let d = g.add("drop", .dropout(rate: 0.2), g.nodes.count - 1)
                    g.add("fc", node.op, d)
                } else {
                    g.add(node.name, node.op, inputs: node.inputs)
                }
            }
            return g
        }()
        func run(threads: Int) throws -> (TrainingResult, [(name: String, shape: [Int], values: [Float])]) {
            try ComputeContext(threads: threads).run { try runInContext() }
        }
        func runInContext() throws -> (TrainingResult, [(name: String, shape: [Int], values: [Float])]) {
            var rng = SeededGenerator(seed: 11)
            let network = try Network(graph: graph, classCount: 10, rng: &rng)
            let c = TrainingConfiguration(epochs: 3, batchSize: 50, learningRate: 0.05, optimizer: .adamW, weightDecay: 0.01, seed: 5)
            let result = try Trainer(configuration: c).fit(network, train: small, validation: test)
            return (result, network.namedTensors())
        }
        let (a, wa) = try run(threads: 2)
        let (b, wb) = try run(threads: 2)
        XCTAssertEqual(a.trainLosses, b.trainLosses)
        XCTAssertEqual(a.epochs.map(\.validationLoss), b.epochs.map(\.validationLoss))
        XCTAssertEqual(wa.count, wb.count)
        for (x, y) in zip(wa, wb) {
            XCTAssertEqual(x.name, y.name)
            XCTAssertEqual(x.values, y.values, x.name)
        }
        // A different seed gives a different run.
        var rng = SeededGenerator(seed: 12)
        let other = try Network(graph: graph, classCount: 10, rng: &rng)
        XCTAssertNotEqual(other.namedTensors()[0].values, wa[0].values)
    }

    func testDivergenceIsReportedNotCrashed() throws {
        let (train, _) = try digitsSplit()
        var rng = SeededGenerator(seed: 1)
        var g = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 8, width: 8))
        var x = g.add("conv", .conv2d(Conv2dAttributes(outChannels: 8, kernel: 3, padding: 1)), g.input)
        x = g.add("relu", .activation(.relu), x)
        x = g.add("flat", .flatten, x)
        g.add("fc", .linear(outFeatures: 10, bias: true), x)
        let network = try Network(graph: g, classCount: 10, rng: &rng)
        let c = TrainingConfiguration(epochs: 5, batchSize: 64, learningRate: 1e6, momentum: 0.9, schedule: .constant)
        let result = try Trainer(configuration: c).fit(network, train: train)
        guard case let .failed(reason) = result.status else { return XCTFail("expected failure, got \(result.status)") }
        XCTAssertTrue(reason.contains("loss became"), reason)
        XCTAssertLessThan(result.epochs.count, 5)
    }

    func testBadInputsThrow() throws {
        var rng = SeededGenerator(seed: 1)
        let network = try Network(graph: digitsReferenceGraph(), classCount: 10, rng: &rng)
        let wrongShape = LabeledArrays(features: [Float](repeating: 0, count: 2 * 16), labels: [0, 1],
                                       sampleShape: FeatureShape(channels: 1, height: 4, width: 4), classCount: 10)
        XCTAssertThrowsError(try Trainer(configuration: TrainingConfiguration(epochs: 1)).fit(network, train: wrongShape))
        let badLabel = LabeledArrays(features: [Float](repeating: 0, count: 2 * 64), labels: [0, 10],
                                     sampleShape: FeatureShape(channels: 1, height: 8, width: 8), classCount: 11)
        XCTAssertThrowsError(try Trainer(configuration: TrainingConfiguration(epochs: 1)).fit(network, train: badLabel)) { error in
            XCTAssertEqual(error as? EngineError, .labelOutOfRange(index: 1, label: 10, classCount: 10))
        }
        XCTAssertThrowsError(try Trainer(configuration: TrainingConfiguration(epochs: 0)).fit(network, train: badLabel))
        XCTAssertThrowsError(try network.forward(Tensor(shape: [2, 3], values: [0, 0, 0, 0, 0, 0]), training: false))
        XCTAssertThrowsError(try Network(graph: digitsReferenceGraph(), classCount: 7, rng: &rng)) { error in
            XCTAssertTrue("\(error)".contains("7 classes"), "\(error)")
        }
        var bad = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 4, width: 4))
        bad.add("conv", .conv2d(Conv2dAttributes(outChannels: 2, kernel: 7)), bad.input)
        XCTAssertThrowsError(try Network(graph: bad, rng: &rng)) { error in
            guard case EngineError.invalidGraph = error else { return XCTFail("\(error)") }
        }
    }

    func testLearningRateSchedules() {
        XCTAssertEqual(LearningRateSchedule.constant.learningRate(base: 0.1, step: 50, stepsPerEpoch: 10, epochs: 10), 0.1)
        let step = LearningRateSchedule.step(everyEpochs: 3, factor: 0.5)
        XCTAssertEqual(step.learningRate(base: 1, step: 29, stepsPerEpoch: 10, epochs: 10), 1)
        XCTAssertEqual(step.learningRate(base: 1, step: 30, stepsPerEpoch: 10, epochs: 10), 0.5)
        XCTAssertEqual(step.learningRate(base: 1, step: 65, stepsPerEpoch: 10, epochs: 10), 0.25)
        let cosine = LearningRateSchedule.cosine(minimumFactor: 0)
        // Warm-up over 2 epochs of 10 steps, then cosine over the remaining 80 steps.
        XCTAssertEqual(cosine.learningRate(base: 1, step: 0, stepsPerEpoch: 10, epochs: 10, warmupEpochs: 2), 0.05, accuracy: 1e-12)
        XCTAssertEqual(cosine.learningRate(base: 1, step: 19, stepsPerEpoch: 10, epochs: 10, warmupEpochs: 2), 1, accuracy: 1e-12)
        XCTAssertEqual(cosine.learningRate(base: 1, step: 20, stepsPerEpoch: 10, epochs: 10, warmupEpochs: 2), 1, accuracy: 1e-12)
        XCTAssertEqual(cosine.learningRate(base: 1, step: 60, stepsPerEpoch: 10, epochs: 10, warmupEpochs: 2), 0.5, accuracy: 1e-12)
        XCTAssertEqual(cosine.learningRate(base: 1, step: 100, stepsPerEpoch: 10, epochs: 10, warmupEpochs: 2), 0, accuracy: 1e-12)
    }
}

final class NetworkTests: XCTestCase {
    func testNamedTensorsRoundTripAndErrors() throws {
        var rng = SeededGenerator(seed: 3)
        let graph = digitsReferenceGraph()
        let a = try Network(graph: graph, classCount: 10, rng: &rng)
        let names = a.namedTensors().map(\.name)
        XCTAssertEqual(names, ["conv1/weight", "bn1/weight", "bn1/bias", "bn1/running_mean", "bn1/running_var",
                               "conv2/weight", "bn2/weight", "bn2/bias", "bn2/running_mean", "bn2/running_var",
                               "fc/weight", "fc/bias"])
        XCTAssertEqual(a.parameterCount, 16 * 9 + 32 + 32 * 16 * 9 + 64 + 32 * 10 + 10)
        XCTAssertEqual(a.tensor(named: "conv2/weight")?.shape, [32, 16, 3, 3])
        // Change running statistics by a training forward, then copy into a fresh network.
        let x = Tensor(shape: [4, 1, 8, 8], values: randomNormal(256, &rng))
        _ = try a.forward(x, training: true)
        let b = try Network(graph: graph, classCount: 10, rng: &rng)
        XCTAssertNotEqual(try b.forward(x, training: false), try a.forward(x, training: false))
        try b.load(namedTensors: a.namedTensors())
        XCTAssertEqual(try b.forward(x, training: false), try a.forward(x, training: false))
        for (p, q) in zip(a.namedTensors(), b.namedTensors()) {
            XCTAssertEqual(p.values.map(\.bitPattern), q.values.map(\.bitPattern))
        }
        var tensors = a.namedTensors()
        tensors[0].shape = [16, 1, 9]
        XCTAssertThrowsError(try b.load(namedTensors: tensors))
        XCTAssertThrowsError(try b.load(namedTensors: Array(a.namedTensors().dropLast())))
        XCTAssertThrowsError(try b.load(namedTensors: a.namedTensors() + [(name: "nope", shape: [1], values: [0])]))
    }

    func testPyTorchDefaultInitializationBounds() throws {
        var rng = SeededGenerator(seed: 5)
        let network = try Network(graph: digitsReferenceGraph(), classCount: 10, rng: &rng)
        let w = network.tensor(named: "conv2/weight")!.values
        let bound = 1 / Float(16 * 9).squareRoot()
        XCTAssertLessThanOrEqual(w.map { abs($0) }.max()!, bound)
        XCTAssertGreaterThan(w.map { abs($0) }.max()!, 0.9 * bound)
        XCTAssertEqual(network.tensor(named: "bn1/weight")!.values, [Float](repeating: 1, count: 16))
        let he = try Network(graph: digitsReferenceGraph(), classCount: 10, initializer: .heNormal, rng: &rng)
        let v = he.tensor(named: "conv2/weight")!.values
        let std = (v.map { Double($0 * $0) }.reduce(0, +) / Double(v.count)).squareRoot()
        XCTAssertEqual(std, (2.0 / 144).squareRoot(), accuracy: 0.01)
        XCTAssertEqual(he.tensor(named: "fc/bias")!.values, [Float](repeating: 0, count: 10))
    }
}
