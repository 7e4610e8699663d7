import Engine
import Foundation
import NASCore
import XCTest

/// Training checkpoints: `fit(…, checkpoint:shouldStop:)` hands out `TrainerState`s, and
/// `fit(…, resume:)` continues from one bit-identically.
final class CheckpointTests: XCTestCase {

    /// The reference digits CNN (width 8, two batch norms) with dropout before the classifier.
    static let graph: NetworkGraph = {
        let base = digitsReferenceGraph(width: 8)
        var g = NetworkGraph(inputShape: base.inputShape)
        for node in base.nodes.dropFirst() {
            if node.name == "fc" {
                let d = g.add("drop", .dropout(rate: 0.2), g.nodes.count - 1)
                g.add("fc", node.op, d)
            } else {
                g.add(node.name, node.op, inputs: node.inputs)
            }
        }
        return g
    }()

    static func makeNetwork(width: Int = 8) throws -> Network {
        var rng = SeededGenerator(seed: 11)
        return try Network(graph: width == 8 ? graph : digitsReferenceGraph(width: width), classCount: 10, rng: &rng)
    }

    static func data() throws -> (train: LabeledArrays, validation: LabeledArrays) {
        let (train, test) = try digitsSplit()
        return (train.subset(Array(0..<400)), test.subset(Array(0..<120)))
    }

    /// Metrics without the wall-clock seconds (which differ between runs).
    static func timeless(_ epochs: [EpochMetrics]) -> [EpochMetrics] {
        epochs.map { var m = $0; m.seconds = 0; return m }
    }

    static func timeless(_ state: TrainerState) -> TrainerState {
        var s = state
        s.epochs = timeless(s.epochs)
        return s
    }

    /// Trains 4 epochs uninterrupted; then stops after epoch 2 and resumes a fresh network from
    /// the last checkpoint: everything ends bit-identical.
    private func checkResumeIsBitIdentical(_ c: TrainingConfiguration, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(c.threads, 1)
        let (train, validation) = try Self.data()

        let a = try Self.makeNetwork()
        var states = [TrainerState]()
        let full = try Trainer(configuration: c).fit(a, train: train, validation: validation, test: validation,
                                                     checkpoint: { states.append($0) })
        XCTAssertEqual(full.status, .completed, file: file, line: line)
        XCTAssertEqual(states.map(\.epochsCompleted), [1, 2, 3, 4], file: file, line: line)
        XCTAssertEqual(states.last?.tensors.map(\.values), a.namedTensors().map(\.values), file: file, line: line)
        XCTAssertTrue(states[1].tensors.contains { $0.name == "bn1/running_mean" }, "buffers are in the state")

        // Interrupted after epoch 2.
        let b = try Self.makeNetwork()
        var last: TrainerState?
        var stopAsked = 0
        XCTAssertThrowsError(try Trainer(configuration: c).fit(
            b, train: train, validation: validation, test: validation, checkpoint: { last = $0 },
            shouldStop: { stopAsked += 1; return last?.epochsCompleted == 2 })) { error in
            XCTAssertEqual(error as? TrainingInterrupted, TrainingInterrupted(epochsCompleted: 2), file: file, line: line)
        }
        XCTAssertEqual(stopAsked, 2, "asked after each epoch", file: file, line: line)
        let state = try XCTUnwrap(last)
        XCTAssertEqual(Self.timeless(state), Self.timeless(states[1]), "the same state as the uninterrupted run's", file: file, line: line)
        XCTAssertEqual(state.optimizerState.parameterStates.count, b.parameters.count, file: file, line: line)
        XCTAssertTrue(state.optimizerState.parameterStates.allSatisfy { $0 != nil }, file: file, line: line)
        XCTAssertEqual(state.optimizerState.stepCount, state.step, file: file, line: line)

        // A fresh network from the same seed resumes.
        let resumed = try Self.makeNetwork()
        var ended = [Int]()
        let observer = ClosureObserver { if case let .epochEnd(m) = $0 { ended.append(m.epoch) } }
        var rng = SeededGenerator(seed: 999)  // replaced by the state's generator
        var more = [TrainerState]()
        let result = try Trainer(configuration: c, observers: [observer]).fit(
            resumed, train: train, validation: validation, test: validation, rng: &rng, resume: state,
            checkpoint: { more.append($0) })
        XCTAssertEqual(ended, [2, 3], "epochEnd only for the new epochs", file: file, line: line)
        XCTAssertEqual(more.map(\.epochsCompleted), [3, 4], file: file, line: line)
        XCTAssertEqual(result.epochs.count, 4, file: file, line: line)
        XCTAssertEqual(Self.timeless(result.epochs), Self.timeless(full.epochs), file: file, line: line)
        XCTAssertEqual(result.epochs.prefix(2), state.epochs[...], "restored epochs as recorded", file: file, line: line)
        XCTAssertEqual(result.testLoss, full.testLoss, file: file, line: line)
        XCTAssertEqual(result.testAccuracy, full.testAccuracy, file: file, line: line)
        XCTAssertEqual(resumed.dropoutGenerator, a.dropoutGenerator, file: file, line: line)
        XCTAssertEqual(rng, states[3].shuffleGenerator, file: file, line: line)
        for (x, y) in zip(a.namedTensors(), resumed.namedTensors()) {
            XCTAssertEqual(x.name, y.name, file: file, line: line)
            XCTAssertEqual(x.values.map(\.bitPattern), y.values.map(\.bitPattern), x.name, file: file, line: line)
        }
        XCTAssertEqual(Self.timeless(more[1]), Self.timeless(states[3]), file: file, line: line)
    }

    func testSGDNesterovCosineResumesBitIdentically() throws {
        try checkResumeIsBitIdentical(TrainingConfiguration(
            epochs: 4, batchSize: 48, learningRate: 0.05, optimizer: .sgd, momentum: 0.9, nesterov: true, weightDecay: 5e-4,
            schedule: .cosine(minimumFactor: 0), warmupEpochs: 1, labelSmoothing: 0.1, seed: 5, threads: 1))
    }

    func testAdamWResumesBitIdentically() throws {
        try checkResumeIsBitIdentical(TrainingConfiguration(
            epochs: 4, batchSize: 50, learningRate: 3e-3, optimizer: .adamW, weightDecay: 0.01,
            schedule: .cosine(minimumFactor: 0.1), seed: 6, threads: 1))
    }

    func testStopAfterTheLastEpochCompletesAndAFinishedStateOnlyEvaluates() throws {
        let (train, validation) = try Self.data()
        let c = TrainingConfiguration(epochs: 1, batchSize: 100, seed: 2, threads: 1)
        let a = try Self.makeNetwork()
        var last: TrainerState?
        let result = try Trainer(configuration: c).fit(a, train: train, test: validation, checkpoint: { last = $0 },
                                                       shouldStop: { true })
        XCTAssertEqual(result.status, .completed)
        XCTAssertEqual(result.epochs.count, 1)
        // Resuming a finished state trains nothing and evaluates the restored network.
        let b = try Self.makeNetwork()
        var events = 0
        let again = try Trainer(configuration: c, observers: [ClosureObserver { if case .epochEnd = $0 { events += 1 } }])
            .fit(b, train: train, test: validation, resume: try XCTUnwrap(last))
        XCTAssertEqual(events, 0)
        XCTAssertEqual(again.epochs, result.epochs)
        XCTAssertEqual(again.testAccuracy, result.testAccuracy)
        XCTAssertEqual(again.testLoss, result.testLoss)
    }

    func testResumeStateThatDoesNotFitIsAnError() throws {
        let (train, _) = try Self.data()
        let c = TrainingConfiguration(epochs: 2, batchSize: 100, seed: 2, threads: 1)
        var last: TrainerState?
        XCTAssertThrowsError(try Trainer(configuration: c).fit(try Self.makeNetwork(), train: train, checkpoint: { last = $0 },
                                                               shouldStop: { true }))
        let state = try XCTUnwrap(last)
        func assertRejected(_ state: TrainerState, network: Network? = nil, train data: LabeledArrays? = nil,
                            configuration: TrainingConfiguration? = nil, _ expected: String, line: UInt = #line) throws {
            let network = try network ?? Self.makeNetwork()
            let before = network.namedTensors().map(\.values)
            XCTAssertThrowsError(try Trainer(configuration: configuration ?? c).fit(network, train: data ?? train, resume: state),
                                 line: line) { error in
                guard case let .invalidResumeState(message)? = error as? EngineError else {
                    return XCTFail("expected invalidResumeState, got \(error)", line: line)
                }
                XCTAssertTrue(message.contains(expected), message, line: line)
                XCTAssertTrue("\(error)".hasPrefix("cannot resume training: "), "\(error)", line: line)
            }
            XCTAssertEqual(network.namedTensors().map(\.values), before, "nothing restored", line: line)
        }
        // Another architecture (wider): the shapes do not match.
        try assertRejected(state, network: try Self.makeNetwork(width: 16), "optimizer state of 'conv1/weight' has 72 values, the parameter has 144")
        var wrongShape = state
        wrongShape.tensors[0].shape = [8, 1, 9]
        try assertRejected(wrongShape, "tensor 'conv1/weight' has shape [8, 1, 9]")
        var shortSlot = state
        shortSlot.optimizerState.parameterStates[1] = [[0]]
        try assertRejected(shortSlot, "optimizer state of 'bn1/weight' has 1 values")
        // Another training set size, more epochs than configured, another optimizer, another batch size.
        try assertRejected(state, train: train.subset(Array(0..<300)), "300 samples")
        var tooMany = state
        tooMany.epochsCompleted = 3
        tooMany.epochs += [tooMany.epochs[0], tooMany.epochs[0]]
        try assertRejected(tooMany, "3 finished epochs, the configuration trains 2")
        try assertRejected(state, configuration: TrainingConfiguration(epochs: 2, batchSize: 100, optimizer: .adamW, seed: 2, threads: 1),
                           "optimizer sgd")
        try assertRejected(state, configuration: TrainingConfiguration(epochs: 2, batchSize: 50, seed: 2, threads: 1), "step 4")
        var notPermutation = state
        notPermutation.indices[0] = notPermutation.indices[1]
        try assertRejected(notPermutation, "not a permutation")
    }

    func testOptimizerStateRoundTrip() throws {
        let (train, _) = try Self.data()
        let x = Tensor(shape: [20, 1, 8, 8], values: Array(train.features[0..<(20 * 64)]))
        let labels = Array(train.labels[0..<20])
        let makers: [() -> Optimizer] = [{ SGD(learningRate: 0.1) }, { SGD(learningRate: 0.1, momentum: 0.9, nesterov: true) },
                                         { AdamW(learningRate: 0.01) }]
        for make in makers {
            let network = try Self.makeNetwork()
            let optimizer = make()
            let fresh = try optimizer.exportState(for: network.parameters)
            XCTAssertEqual(fresh.stepCount, 0)
            XCTAssertEqual(fresh.parameterNames, network.parameters.map(\.name))
            XCTAssertTrue(fresh.parameterStates.allSatisfy { $0 == nil }, "no state before the first update")
            network.dropoutGenerator = SeededGenerator(seed: 1)
            _ = try network.lossAndGradients(input: x, labels: labels)
            optimizer.update(network.parameters)
            let state = try optimizer.exportState(for: network.parameters)
            XCTAssertEqual(state.stepCount, 1)
            var other = SeededGenerator(seed: 0)
            let copy = try Network(graph: Self.graph, classCount: 10, rng: &other)
            try copy.load(namedTensors: network.namedTensors())
            let restored = make()
            try restored.importState(state, for: copy.parameters)
            XCTAssertEqual(try restored.exportState(for: copy.parameters), state)
            for n in [network, copy] {
                n.dropoutGenerator = SeededGenerator(seed: 2)
                _ = try n.lossAndGradients(input: x, labels: labels)
            }
            optimizer.update(network.parameters)
            restored.update(copy.parameters)
            XCTAssertEqual(network.namedTensors().map(\.values), copy.namedTensors().map(\.values), "\(type(of: optimizer))")
        }
        // SGD without momentum keeps no buffer: each parameter's state has no slot.
        let network = try Self.makeNetwork()
        let plain = SGD(learningRate: 0.1)
        _ = try network.lossAndGradients(input: x, labels: labels)
        plain.update(network.parameters)
        XCTAssertTrue(try plain.exportState(for: network.parameters).parameterStates.allSatisfy { $0 == [] })
        XCTAssertThrowsError(try AdamW(learningRate: 0.1).importState(
            OptimizerState(stepCount: 1, parameterNames: network.parameters.map(\.name),
                           parameterStates: network.parameters.map { _ in [] }), for: network.parameters))
    }
}
