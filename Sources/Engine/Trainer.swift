import Foundation
import NASCore

/// Which optimizer the trainer builds.
public enum OptimizerKind: String, Hashable, Codable, Sendable {
    case sgd
    case adamW = "adamw"
}

/// Settings of one training run. Defaults: 10 epochs, batch 128, lr 0.05, SGD with momentum 0.9,
/// Nesterov, weight decay 5e-4, cosine schedule to 0, no warm-up, no label smoothing, seed 0,
/// threads of the current ``ComputeContext`` (nil).
public struct TrainingConfiguration: Hashable, Codable, Sendable {
    public var epochs: Int
    public var batchSize: Int
    public var learningRate: Double
    public var optimizer: OptimizerKind
    /// SGD only.
    public var momentum: Double
    /// SGD only.
    public var nesterov: Bool
    /// SGD: L2 added to the gradient; AdamW: decoupled decay.
    public var weightDecay: Double
    public var schedule: LearningRateSchedule
    public var warmupEpochs: Int
    public var labelSmoothing: Double
    /// Seed used by `Trainer.fit(_:train:validation:test:)` when no generator is passed.
    public var seed: UInt64
    /// If set, training runs in a ``ComputeContext`` of this many threads; else in the current one.
    public var threads: Int?
    /// Batch size for validation/test evaluation.
    public var evaluationBatchSize: Int
    /// The length of the learning-rate schedule in epochs (`nil`: `epochs`). Set it above `epochs`
    /// to stop early on a longer schedule and continue later (with `resume`) exactly where a run
    /// of `scheduleEpochs` epochs would be: multi-fidelity rungs train this way.
    public var scheduleEpochs: Int?

    public init(epochs: Int = 10, batchSize: Int = 128, learningRate: Double = 0.05,
                optimizer: OptimizerKind = .sgd, momentum: Double = 0.9, nesterov: Bool = true,
                weightDecay: Double = 5e-4, schedule: LearningRateSchedule = .cosine(minimumFactor: 0),
                warmupEpochs: Int = 0, labelSmoothing: Double = 0, seed: UInt64 = 0, threads: Int? = nil,
                evaluationBatchSize: Int = 512) {
        self.epochs = epochs
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.optimizer = optimizer
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        self.schedule = schedule
        self.warmupEpochs = warmupEpochs
        self.labelSmoothing = labelSmoothing
        self.seed = seed
        self.threads = threads
        self.evaluationBatchSize = evaluationBatchSize
    }

    func validate() throws {
        guard epochs >= 1 else { throw EngineError.invalidConfiguration("epochs must be ≥ 1, got \(epochs)") }
        guard batchSize >= 1, evaluationBatchSize >= 1 else { throw EngineError.invalidConfiguration("batch sizes must be ≥ 1") }
        guard learningRate > 0, learningRate.isFinite else { throw EngineError.invalidConfiguration("learning rate must be positive, got \(learningRate)") }
        guard labelSmoothing >= 0, labelSmoothing < 1 else { throw EngineError.invalidConfiguration("label smoothing must be in [0, 1)") }
        guard weightDecay >= 0, momentum >= 0, warmupEpochs >= 0 else { throw EngineError.invalidConfiguration("weight decay, momentum and warm-up must be ≥ 0") }
        if let scheduleEpochs, scheduleEpochs < epochs {
            throw EngineError.invalidConfiguration("the schedule's \(scheduleEpochs) epochs must cover the \(epochs) trained")
        }
    }

    /// A fresh optimizer of the configured kind.
    public func makeOptimizer() -> Optimizer {
        switch optimizer {
        case .sgd: return SGD(learningRate: Float(learningRate), momentum: Float(momentum), nesterov: nesterov, weightDecay: Float(weightDecay))
        case .adamW: return AdamW(learningRate: Float(learningRate), weightDecay: Float(weightDecay))
        }
    }
}

/// Metrics of one epoch.
public struct EpochMetrics: Hashable, Codable, Sendable {
    /// 0-based epoch index.
    public var epoch: Int
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var validationLoss: Double?
    public var validationAccuracy: Double?
    /// The learning rate of the epoch's last step.
    public var learningRate: Double
    public var seconds: Double

    public init(epoch: Int, trainLoss: Double, trainAccuracy: Double, validationLoss: Double?, validationAccuracy: Double?,
                learningRate: Double, seconds: Double) {
        self.epoch = epoch
        self.trainLoss = trainLoss
        self.trainAccuracy = trainAccuracy
        self.validationLoss = validationLoss
        self.validationAccuracy = validationAccuracy
        self.learningRate = learningRate
        self.seconds = seconds
    }
}

/// How a run ended.
public enum TrainingStatus: Hashable, Codable, Sendable, CustomStringConvertible {
    case completed
    /// Stopped early, e.g. when the loss became NaN or infinite.
    case failed(reason: String)

    public var description: String {
        switch self {
        case .completed: return "completed"
        case let .failed(reason): return "failed: \(reason)"
        }
    }
}

/// The outcome of `Trainer.fit`.
public struct TrainingResult: Hashable, Codable, Sendable {
    public var epochs: [EpochMetrics]
    public var testLoss: Double?
    public var testAccuracy: Double?
    public var wallSeconds: Double
    public var status: TrainingStatus

    /// Per-epoch training losses (the loss curve).
    public var trainLosses: [Double] { epochs.map(\.trainLoss) }
}

/// Events emitted during `fit`, in this order: fitStart, (epochStart, batchEnd…, epochEnd)…, fitEnd.
public enum TrainingEvent {
    case fitStart(epochs: Int, batchesPerEpoch: Int, sampleCount: Int)
    case epochStart(epoch: Int)
    case batchEnd(epoch: Int, batch: Int, loss: Float, learningRate: Double)
    case epochEnd(EpochMetrics)
    case fitEnd(TrainingResult)
}

/// Receives training events (a progress bar, a record writer, early stopping logic…).
public protocol TrainingObserver: AnyObject {
    func handle(_ event: TrainingEvent)
}

/// An observer that forwards events to a closure.
public final class ClosureObserver: TrainingObserver {
    private let body: (TrainingEvent) -> Void
    public init(_ body: @escaping (TrainingEvent) -> Void) { self.body = body }
    public func handle(_ event: TrainingEvent) { body(event) }
}

/// Trains a `Network` with its task's objective (softmax cross-entropy for classification), mini-batch shuffling from an injected generator,
/// the configured optimizer and learning-rate schedule.
///
/// ```swift
/// let trainer = Trainer(configuration: TrainingConfiguration(epochs: 20), observers: [ProgressBar()])
/// var rng = SeededGenerator(seed: 7)
/// let result = try trainer.fit(network, train: train, validation: validation, test: test, rng: &rng)
/// ```
public final class Trainer {
    public let configuration: TrainingConfiguration
    /// The loss the network is trained with (the task's, see `Objective(task:)`).
    public let objective: Objective
    public var observers: [TrainingObserver]

    public init(configuration: TrainingConfiguration, objective: Objective = .classification, observers: [TrainingObserver] = []) {
        self.configuration = configuration
        self.objective = objective
        self.observers = observers
    }

    private func emit(_ event: TrainingEvent) { for o in observers { o.handle(event) } }

    /// Trains with a generator seeded from `configuration.seed` (see
    /// `fit(_:train:validation:test:rng:resume:checkpoint:shouldStop:)` for the other parameters).
    public func fit(_ network: Network, train: LabeledArrays, validation: LabeledArrays? = nil,
                    test: LabeledArrays? = nil, resume: TrainerState? = nil,
                    checkpoint: ((TrainerState) throws -> Void)? = nil,
                    shouldStop: (() -> Bool)? = nil) throws -> TrainingResult {
        var rng = SeededGenerator(seed: configuration.seed)
        return try fit(network, train: train, validation: validation, test: test, rng: &rng, resume: resume,
                       checkpoint: checkpoint, shouldStop: shouldStop)
    }

    /// Trains `network` on `train`, evaluating on `validation` after each epoch and on `test` at the end.
    ///
    /// - Parameters:
    ///   - rng: shuffles the training set each epoch; dropout uses the network's own stream.
    ///   - resume: a state handed out by `checkpoint` in an earlier run of the same configuration
    ///     and data: its tensors, optimizer state, permutation and generators (into `rng` and the
    ///     network's dropout generator) are restored into `network` — a fresh network of the same
    ///     graph — and training continues with epoch `resume.epochsCompleted`. The result's `epochs`
    ///     include the restored ones; `.epochEnd` events are emitted for new epochs only. With the
    ///     same thread count the run ends bit-identical to an uninterrupted one.
    ///   - checkpoint: called with the state after every finished epoch, before its `.epochEnd`
    ///     event (so an observer never reports an epoch no checkpoint holds); an error it throws
    ///     ends training and is rethrown.
    ///   - shouldStop: asked after each epoch's checkpoint; `true` ends training by throwing
    ///     `TrainingInterrupted` (after the last epoch it is ignored and the run completes).
    /// - Returns: per-epoch metrics and the status; a NaN/infinite loss stops the run with
    ///   `.failed(reason:)` instead of throwing.
    /// - Throws: `EngineError` for invalid configurations, data that does not fit the network or a
    ///   `resume` state that does not fit (`.invalidResumeState`, see `validate(resume:network:trainCount:)`);
    ///   `TrainingInterrupted` when `shouldStop` asked to stop.
    public func fit(_ network: Network, train: LabeledArrays, validation: LabeledArrays? = nil,
                    test: LabeledArrays? = nil, rng: inout SeededGenerator, resume: TrainerState? = nil,
                    checkpoint: ((TrainerState) throws -> Void)? = nil,
                    shouldStop: (() -> Bool)? = nil) throws -> TrainingResult {
        let context = configuration.threads.map { ComputeContext(threads: $0) } ?? ComputeContext.current
        return try context.run {
            try fitInContext(network, train: train, validation: validation, test: test, rng: &rng, resume: resume,
                             checkpoint: checkpoint, shouldStop: shouldStop)
        }
    }

    private func fitInContext(_ network: Network, train: LabeledArrays, validation: LabeledArrays?,
                              test: LabeledArrays?, rng: inout SeededGenerator, resume: TrainerState?,
                              checkpoint: ((TrainerState) throws -> Void)?,
                              shouldStop: (() -> Bool)?) throws -> TrainingResult {
        let c = configuration
        try c.validate()
        for data in [train, validation, test].compactMap({ $0 }) { try objective.check(data, for: network) }
        guard train.count > 0 else { throw EngineError.invalidConfiguration("empty training set") }
        if let resume { try validate(resume: resume, network: network, trainCount: train.count) }
        let optimizer = c.makeOptimizer()
        let start = Date()
        let stepsPerEpoch = (train.count + c.batchSize - 1) / c.batchSize
        let trainBoxes = train.boxesBySample
        var indices = Array(0..<train.count)
        var metrics = [EpochMetrics]()
        var status = TrainingStatus.completed
        var step = 0
        if let resume {
            try restore(resume, network: network, optimizer: optimizer)
            indices = resume.indices
            metrics = resume.epochs
            step = resume.step
            rng = resume.shuffleGenerator
        }
        emit(.fitStart(epochs: c.epochs, batchesPerEpoch: stepsPerEpoch, sampleCount: train.count))
        epochLoop: for epoch in metrics.count..<c.epochs {
            emit(.epochStart(epoch: epoch))
            let epochStart = Date()
            rng.shuffle(&indices)
            var lossSum = 0.0, correct = 0, counted = 0, seen = 0
            var lr = c.learningRate
            for b in 0..<stepsPerEpoch {
                let batch = indices[(b * c.batchSize)..<min(train.count, (b + 1) * c.batchSize)]
                lr = c.schedule.learningRate(base: c.learningRate, step: step, stepsPerEpoch: stepsPerEpoch,
                                             epochs: c.scheduleEpochs ?? c.epochs, warmupEpochs: c.warmupEpochs)
                let stats = network.trainStep(objective, data: train, boxes: trainBoxes, indices: batch, labelSmoothing: Float(c.labelSmoothing))
                let loss = stats.loss
                guard loss.isFinite else {
                    status = .failed(reason: "loss became \(loss) at epoch \(epoch), batch \(b) (learning rate \(lr))")
                    break epochLoop
                }
                optimizer.learningRate = Float(lr)
                optimizer.update(network.parameters)
                step += 1
                lossSum += Double(loss) * Double(batch.count)
                correct += stats.correct
                counted += stats.counted
                seen += batch.count
                emit(.batchEnd(epoch: epoch, batch: b, loss: loss, learningRate: lr))
            }
            var m = EpochMetrics(epoch: epoch, trainLoss: lossSum / Double(seen), trainAccuracy: counted > 0 ? Double(correct) / Double(counted) : .nan,
                                 validationLoss: nil, validationAccuracy: nil, learningRate: lr, seconds: 0)
            if let validation, validation.count > 0 {
                let (vl, va) = try evaluate(network, on: validation, objective: objective, batchSize: c.evaluationBatchSize)
                guard vl.isFinite else {
                    status = .failed(reason: "validation loss became \(vl) at epoch \(epoch)")
                    break epochLoop
                }
                m.validationLoss = vl
                m.validationAccuracy = va.isNaN ? nil : va
            }
            m.seconds = Date().timeIntervalSince(epochStart)
            metrics.append(m)
            // The checkpoint first: whoever reports `.epochEnd` (the API's epochs_completed) never
            // reports an epoch that a restart after a kill could not resume from.
            if let checkpoint {
                try checkpoint(try snapshot(network: network, optimizer: optimizer, step: step, epochs: metrics,
                                            indices: indices, rng: rng))
            }
            emit(.epochEnd(m))
            if epoch + 1 < c.epochs, let shouldStop, shouldStop() {
                throw TrainingInterrupted(epochsCompleted: metrics.count)
            }
        }
        var result = TrainingResult(epochs: metrics, testLoss: nil, testAccuracy: nil, wallSeconds: 0, status: status)
        if status == .completed, let test, test.count > 0 {
            let (tl, ta) = try evaluate(network, on: test, objective: objective, batchSize: c.evaluationBatchSize)
            result.testLoss = tl
            result.testAccuracy = ta.isNaN ? nil : ta
        }
        result.wallSeconds = Date().timeIntervalSince(start)
        emit(.fitEnd(result))
        return result
    }
}

/// Mean loss and accuracy of `network` (evaluation mode) on `data` under `objective`: accuracy
/// over samples (classification) or labelled pixels (segmentation); NaN for detection.
public func evaluate(_ network: Network, on data: LabeledArrays, objective: Objective = .classification,
                     batchSize: Int = 512) throws -> (loss: Double, accuracy: Double) {
    try objective.check(data, for: network)
    guard data.count > 0 else { return (0, 0) }
    guard batchSize > 0 else { throw EngineError.invalidConfiguration("batch size must be ≥ 1") }
    var lossSum = 0.0, correct = 0, counted = 0
    var start = 0
    let all = Array(0..<data.count)
    let boxes = data.boxesBySample
    while start < data.count {
        let end = min(data.count, start + batchSize)
        network.loadInput(data, indices: all[start..<end])
        network.runForward(training: false)
        let stats = network.objectiveLoss(objective, data: data, boxes: boxes, indices: all[start..<end], labelSmoothing: 0,
                                          gradient: false)
        lossSum += Double(stats.loss) * Double(end - start)
        correct += stats.correct
        counted += stats.counted
        start = end
    }
    return (lossSum / Double(data.count), counted > 0 ? Double(correct) / Double(counted) : .nan)
}

/// Softmax class probabilities `[count, classes]` of `network` (evaluation mode) for `data`'s samples.
public func predict(_ network: Network, on data: LabeledArrays, batchSize: Int = 512) throws -> Tensor {
    guard data.sampleShape == network.inputShape else {
        throw EngineError.shapeMismatch("data samples are \(data.sampleShape), network input is \(network.inputShape)")
    }
    let k = network.outputShape.elementCount
    var values = [Float]()
    values.reserveCapacity(data.count * k)
    var start = 0
    let all = Array(0..<data.count)
    while start < data.count {
        let end = min(data.count, start + batchSize)
        network.loadInput(data, indices: all[start..<end])
        network.runForward(training: false)
        let logits = network.tensor(fromChannelMajor: network.activations[network.graph.output], shape: network.outputShape)
        values.append(contentsOf: softmax(Tensor(shape: [end - start, k], values: logits.values)).values)
        start = end
    }
    return Tensor(shape: [data.count, k], values: values)
}

/// A terminal progress bar on stderr (`\r` updates): active when stderr is a TTY or when forced.
public final class ProgressBar: TrainingObserver {
    private let enabled: Bool
    private var batchesPerEpoch = 1
    private var epochs = 1
    private var lastDraw = Date.distantPast
    private var runningLoss: Double = 0

    /// - Parameter force: draw even when stderr is not a terminal.
    public init(force: Bool = false) {
        enabled = force || isatty(2) != 0
    }

    private func write(_ s: String) { FileHandle.standardError.write(s.data(using: .utf8)!) }

    public func handle(_ event: TrainingEvent) {
        guard enabled else { return }
        switch event {
        case let .fitStart(epochs, batches, _):
            self.epochs = epochs
            batchesPerEpoch = batches
        case .epochStart:
            runningLoss = 0
        case let .batchEnd(epoch, batch, loss, _):
            runningLoss = batch == 0 ? Double(loss) : 0.9 * runningLoss + 0.1 * Double(loss)
            let now = Date()
            guard now.timeIntervalSince(lastDraw) > 0.1 || batch == batchesPerEpoch - 1 else { return }
            lastDraw = now
            let width = 30
            let filled = width * (batch + 1) / batchesPerEpoch
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            write("\repoch \(epoch + 1)/\(epochs) \(bar) \(batch + 1)/\(batchesPerEpoch) loss \(String(format: "%.4f", runningLoss))  ")
        case let .epochEnd(m):
            var line = "\repoch \(m.epoch + 1)/\(epochs) loss \(String(format: "%.4f", m.trainLoss)) acc \(String(format: "%.4f", m.trainAccuracy))"
            if let va = m.validationAccuracy, let vl = m.validationLoss {
                line += " val_loss \(String(format: "%.4f", vl)) val_acc \(String(format: "%.4f", va))"
            }
            line += " (\(String(format: "%.1f", m.seconds)) s)" + String(repeating: " ", count: 10) + "\n"
            write(line)
        case let .fitEnd(result):
            var line = "\(result.status)"
            if let ta = result.testAccuracy { line += ", test accuracy \(String(format: "%.4f", ta))" }
            write(line + String(format: " in %.1f s\n", result.wallSeconds))
        }
    }
}

/// Softmax class probabilities `[batch, classes]` of `network` (evaluation mode) for an NCHW batch.
public func predict(_ network: Network, _ input: Tensor) throws -> Tensor {
    let logits = try network.forward(input, training: false)
    guard logits.shape.count == 2 else {
        throw EngineError.shapeMismatch("predict needs flat logits, network output is \(network.outputShape)")
    }
    return softmax(logits)
}
