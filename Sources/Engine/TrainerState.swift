import NASCore

/// Everything `Trainer.fit` needs to continue a run after its last finished epoch so that it ends
/// bit-identical to an uninterrupted run (same seed, same thread count): a training checkpoint.
///
/// `fit(…, checkpoint:)` hands one to its closure after every finished epoch; `fit(…, resume:)`
/// restores it into a freshly built network of the same graph and continues with epoch
/// `epochsCompleted`. Storing it is the caller's business (NASLab's `TrainingCheckpoint` writes
/// it to HDF5).
///
/// ```swift
/// var last: TrainerState?
/// do {
///     _ = try trainer.fit(network, train: train, checkpoint: { last = $0 }, shouldStop: { stopping })
/// } catch let stop as TrainingInterrupted {
///     print("stopped after \(stop.epochsCompleted) epochs")
/// }
/// let again = try Network(graph: graph, classCount: 10, rng: &initRNG)
/// let result = try trainer.fit(again, train: train, resume: last)
/// ```
public struct TrainerState: Equatable, Codable, Sendable {
    /// A network tensor (parameter or buffer) by name, with its shape and row-major values.
    public struct TensorValue: Equatable, Codable, Sendable {
        public var name: String
        public var shape: [Int]
        public var values: [Float]

        public init(name: String, shape: [Int], values: [Float]) {
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    /// Finished epochs; training continues with this (0-based) epoch.
    public var epochsCompleted: Int
    /// The global step (optimizer updates so far), which drives the learning-rate schedule.
    public var step: Int
    /// The metrics of the finished epochs (`epochsCompleted` of them).
    public var epochs: [EpochMetrics]
    /// The training-set permutation after the last finished epoch (each epoch shuffles it further).
    public var indices: [Int]
    /// The generator that shuffles `indices`, after the last finished epoch.
    public var shuffleGenerator: SeededGenerator
    /// The network's `dropoutGenerator` after the last finished epoch.
    public var dropoutGenerator: SeededGenerator
    /// The optimizer the state belongs to.
    public var optimizer: OptimizerKind
    /// The optimizer's step count and per-parameter state, in `network.parameters` order.
    public var optimizerState: OptimizerState
    /// Every parameter and buffer of the network (batch norm running statistics included), in
    /// `network.allTensors` order.
    public var tensors: [TensorValue]

    public init(epochsCompleted: Int, step: Int, epochs: [EpochMetrics], indices: [Int], shuffleGenerator: SeededGenerator,
                dropoutGenerator: SeededGenerator, optimizer: OptimizerKind, optimizerState: OptimizerState,
                tensors: [TensorValue]) {
        self.epochsCompleted = epochsCompleted
        self.step = step
        self.epochs = epochs
        self.indices = indices
        self.shuffleGenerator = shuffleGenerator
        self.dropoutGenerator = dropoutGenerator
        self.optimizer = optimizer
        self.optimizerState = optimizerState
        self.tensors = tensors
    }
}

/// Thrown by `Trainer.fit` when its `shouldStop` closure asked to stop after an epoch (other than
/// the last one); the epoch's checkpoint has been handed out before.
public struct TrainingInterrupted: Error, Equatable, Sendable, CustomStringConvertible {
    /// Finished epochs (the checkpoint to resume from has this many).
    public var epochsCompleted: Int

    public init(epochsCompleted: Int) { self.epochsCompleted = epochsCompleted }

    public var description: String { "training interrupted after \(epochsCompleted) epoch\(epochsCompleted == 1 ? "" : "s")" }
}

extension Trainer {
    /// Checks that `state` can resume training `network` with this trainer's configuration on a
    /// training set of `trainCount` samples: finished epochs within the configured ones, the same
    /// optimizer, the step count of that many epochs at the configured batch size, a permutation
    /// of the training set, optimizer state and tensors (names and shapes) that fit the network.
    ///
    /// `fit(…, resume:)` calls this first; call it yourself to report a bad checkpoint before training.
    ///
    /// - Throws: `EngineError.invalidResumeState` (or `.invalidConfiguration` for a bad configuration).
    public func validate(resume state: TrainerState, network: Network, trainCount: Int) throws {
        let c = configuration
        try c.validate()
        func fail(_ message: String) -> EngineError { .invalidResumeState(message) }
        guard state.epochsCompleted >= 0, state.epochsCompleted <= c.epochs else {
            throw fail("the state has \(state.epochsCompleted) finished epochs, the configuration trains \(c.epochs)")
        }
        guard state.epochs.count == state.epochsCompleted else {
            throw fail("the state has metrics of \(state.epochs.count) epochs for \(state.epochsCompleted) finished epochs")
        }
        guard state.optimizer == c.optimizer else {
            throw fail("the state is of optimizer \(state.optimizer.rawValue), the configuration uses \(c.optimizer.rawValue)")
        }
        guard state.indices.count == trainCount else {
            throw fail("the state's permutation has \(state.indices.count) indices, the training set has \(trainCount) samples")
        }
        var seen = [Bool](repeating: false, count: trainCount)
        for i in state.indices {
            guard i >= 0, i < trainCount, !seen[i] else {
                throw fail("the state's indices are not a permutation of 0..<\(trainCount)")
            }
            seen[i] = true
        }
        let stepsPerEpoch = (trainCount + c.batchSize - 1) / c.batchSize
        guard state.step == state.epochsCompleted * stepsPerEpoch else {
            throw fail("the state is at step \(state.step) after \(state.epochsCompleted) epochs, expected "
                + "\(state.epochsCompleted * stepsPerEpoch) (\(stepsPerEpoch) batches of \(c.batchSize) per epoch)")
        }
        let o = state.optimizerState
        guard o.parameterStates.count == network.parameters.count, o.parameterNames.count == o.parameterStates.count else {
            throw fail("optimizer state for \(o.parameterStates.count) parameters, the network has \(network.parameters.count)")
        }
        if let i = network.parameters.indices.first(where: { o.parameterNames[$0] != network.parameters[$0].name }) {
            throw fail("optimizer state of parameter \(i) is for '\(o.parameterNames[i])', the network's is '\(network.parameters[i].name)'")
        }
        guard o.stepCount >= 0 else { throw fail("optimizer step count \(o.stepCount) is negative") }
        for (p, slots) in zip(network.parameters, state.optimizerState.parameterStates) {
            if let slots, let bad = slots.first(where: { $0.count != p.count }) {
                throw fail("optimizer state of '\(p.name)' has \(bad.count) values, the parameter has \(p.count)")
            }
        }
        let all = network.allTensors
        guard state.tensors.count == all.count else {
            throw fail("the state has \(state.tensors.count) tensors, the network has \(all.count)")
        }
        var byName = [String: Parameter]()
        for p in all { byName[p.name] = p }
        for t in state.tensors {
            guard let p = byName.removeValue(forKey: t.name) else {
                throw fail("the state has tensor '\(t.name)', which the network does not have (or has once)")
            }
            guard t.shape == p.shape, t.values.count == p.count else {
                throw fail("tensor '\(t.name)' has shape \(t.shape) in the state, \(p.shape) in the network")
            }
        }
        for g in [state.shuffleGenerator, state.dropoutGenerator] {
            guard g.state.count == 4, g.state.contains(where: { $0 != 0 }) else {
                throw fail("invalid generator state \(g.state)")
            }
        }
    }

    /// Restores `state` into `network` and `optimizer` (validated with `validate(resume:…)` first).
    func restore(_ state: TrainerState, network: Network, optimizer: Optimizer) throws {
        try optimizer.importState(state.optimizerState, for: network.parameters)
        try network.load(namedTensors: state.tensors.map { (name: $0.name, shape: $0.shape, values: $0.values) })
        network.dropoutGenerator = state.dropoutGenerator
    }

    /// The state after `epochs.count` finished epochs.
    func snapshot(network: Network, optimizer: Optimizer, step: Int, epochs: [EpochMetrics], indices: [Int],
                  rng: SeededGenerator) throws -> TrainerState {
        TrainerState(epochsCompleted: epochs.count, step: step, epochs: epochs, indices: indices, shuffleGenerator: rng,
                     dropoutGenerator: network.dropoutGenerator, optimizer: configuration.optimizer,
                     optimizerState: try optimizer.exportState(for: network.parameters),
                     tensors: network.allTensors.map { TrainerState.TensorValue(name: $0.name, shape: $0.shape, values: $0.values) })
    }
}
