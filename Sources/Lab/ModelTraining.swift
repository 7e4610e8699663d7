import Datasets
import Engine
import Estimators
import Foundation
import NASCore
import Spaces

extension TaskKind {
    /// The training hyperparameters a task uses when none are given (`naslab train` without
    /// `--epochs`/`--learning-rate`/…; stated once, here):
    ///
    /// | task | optimizer | learning rate | batch | epochs | weight decay | schedule |
    /// |---|---|---|---|---|---|---|
    /// | image classification | SGD, Nesterov momentum 0.9 | 0.05 | 64 | 10 | 5e-4 | cosine |
    /// | text classification | AdamW | 2e-3 | 64 | 10 | 1e-2 | cosine |
    /// | tabular classification | AdamW | 3e-3 | 64 | 30 | 1e-4 | cosine |
    /// | segmentation, detection | AdamW | 2e-3 | 32 | 10 | 1e-4 | cosine |
    ///
    /// Images keep `ExperimentConfig.TrainingSettings()`'s defaults. Text and tabular networks are
    /// shallow (embeddings / dense layers) and train faster and more reliably with AdamW, and so do
    /// the encoder-decoders of dense tasks trained from scratch (CenterNet's own recipe is Adam).
    public var defaultTraining: ExperimentConfig.TrainingSettings {
        var t = ExperimentConfig.TrainingSettings()
        switch self {
        case .imageClassification:
            break
        case .textClassification:
            t.optimizer = "adamw"
            t.learningRate = 2e-3
            t.batchSize = 64
            t.epochs = 10
            t.weightDecay = 1e-2
        case .tabularClassification:
            t.optimizer = "adamw"
            t.learningRate = 3e-3
            t.batchSize = 64
            t.epochs = 30
            t.weightDecay = 1e-4
        case .segmentation, .detection:
            t.optimizer = "adamw"
            t.learningRate = 2e-3
            t.batchSize = 32
            t.epochs = 10
            t.weightDecay = 1e-4
        }
        return t
    }
}

/// One training job: what `naslab train`, a search candidate and the API's training jobs all run.
public struct TrainingJob: Sendable {
    /// The space's name as shown and stored (a shipped name or a file path).
    public var spaceName: String?
    /// The space's YAML text; `nil` resolves `spaceName` (a file or a shipped name).
    public var spaceYAML: String?
    /// The architecture text; `nil` for fixed spaces (or the initial model's architecture).
    public var architecture: String?
    public var dataset: String
    public var validationSplit: Double = Dataset.defaultValidationSplit
    /// Seed of the dataset's splits.
    public var datasetSeed: UInt64 = 0
    /// `nil`: the space's task's `defaultTraining`.
    public var training: ExperimentConfig.TrainingSettings?
    /// Seed of initialisation and shuffling.
    public var seed: UInt64 = 0
    /// Compute threads (`nil`: the current ``ComputeContext``'s).
    public var threads: Int?
    /// Fine-tuning: start from this trained model's weights (every tensor whose name and shape
    /// match; a classifier of another class count stays freshly initialised). Without a space, the
    /// model's space and architecture are used. A text model's tokenizer encodes the dataset.
    public var initialModel: TrainedModel?
    /// What `initialModel` is called in the new model's `initializedFrom` (e.g. its file path).
    public var initialModelName: String?
    /// Also evaluate on the validation split before training (`TrainingOutcome.initialValidationAccuracy`).
    public var evaluateBeforeTraining = false
    /// Per-epoch checkpoints: when set, the training state is written to this HDF5 file after
    /// every epoch (atomically, see `TrainingCheckpoint`), and a run that finds the file at start
    /// resumes from it (`TrainingOutcome.resumedFromEpoch`), ending bit-identical to an
    /// uninterrupted run with the same thread count. A checkpoint written by another job (space,
    /// architecture, dataset, split, seeds, training settings or initial model differ) or an
    /// unreadable file is an error, not a fresh start. The caller deletes the file when done with it.
    public var checkpointPath: String?
    /// Multi-fidelity: train only to this epoch of `training.epochs`' learning-rate schedule
    /// (`nil`: all of it). With `checkpointPath`, a later job with a higher `trainEpochs` continues
    /// from the checkpoint exactly as an uninterrupted `training.epochs` run would (same schedule,
    /// optimizer state and data order). Not part of the checkpoint's fingerprint.
    public var trainEpochs: Int?
    /// Asked after every epoch (after its checkpoint is written); `true` stops training with the
    /// engine's `TrainingInterrupted` error (ignored after the last epoch).
    public var stopRequested: (@Sendable () -> Bool)?

    public init(spaceName: String?, spaceYAML: String? = nil, architecture: String?, dataset: String) {
        self.spaceName = spaceName
        self.spaceYAML = spaceYAML
        self.architecture = architecture
        self.dataset = dataset
    }
}

/// What `ModelTraining.train` produced.
public struct TrainingOutcome {
    public var result: TrainingResult
    public var cost: NetworkCost
    /// The trained model (also for failed runs: then its weights are where training stopped).
    public var model: TrainedModel
    public var network: Network
    /// The canonical architecture text.
    public var architecture: String
    public var space: SpaceReference
    public var training: ExperimentConfig.TrainingSettings
    public var datasetMetadata: DatasetMetadata
    public var trainCount: Int
    /// Validation accuracy before the first step (with `evaluateBeforeTraining`, or when fine-tuning).
    public var initialValidationAccuracy: Double?
    /// Names of the tensors copied from the initial model.
    public var initializedTensors: [String]
    /// The number of epochs restored from `TrainingJob.checkpointPath` (`nil`: trained from the start).
    public var resumedFromEpoch: Int?
    /// The task's metrics (`TaskKind.metrics`) on the validation and test splits after training
    /// (empty for a failed run or an empty split); see `TaskEvaluation`.
    public var validationMetrics: [String: Double] = [:]
    public var testMetrics: [String: Double] = [:]

    /// The validation value of the task's primary metric (what searches rank by; NaN if unknown).
    public var validationScore: Double { validationMetrics[model.task.primaryMetric] ?? .nan }
    /// The test value of the task's primary metric (NaN if unknown).
    public var testScore: Double { testMetrics[model.task.primaryMetric] ?? .nan }
    /// Every task metric of both splits by printed name: `val_<metric>`, `test_<metric>` (NaN when
    /// not computed, e.g. for a failed run).
    public var taskMetricsByName: [String: Double] {
        var out = [String: Double]()
        for name in model.task.metrics {
            out["val_" + name] = validationMetrics[name] ?? .nan
            out["test_" + name] = testMetrics[name] ?? .nan
        }
        return out
    }

    /// Why training failed, if it did.
    public var failureReason: String? {
        if case let .failed(r) = result.status { return r }
        return nil
    }
}

/// The one training pipeline: space → architecture → dataset (through the cache, tokenized on the
/// training split) → graph decoded with the dataset's input kind → network (optionally initialised
/// from a trained model) → `Trainer` → `TrainedModel`.
public enum ModelTraining {
    /// The prefix of the classifier's tensors (re-initialised when the class count changes).
    public static let classifierPrefix = "head/classifier/"

    /// Trains `job`.
    ///
    /// - Throws: `LabError` for bad jobs (and bad checkpoints, naming the file), the engine's
    ///   errors, and `TrainingInterrupted` when `job.stopRequested` asked to stop (after that
    ///   epoch's checkpoint was written).
    public static func train(_ job: TrainingJob, datasets: DatasetCache,
                             observers: [TrainingObserver] = []) throws -> TrainingOutcome {
        let context = job.threads.map { ComputeContext(threads: $0) } ?? ComputeContext.current
        return try context.run { try trainInContext(job, datasets: datasets, observers: observers) }
    }

    private static func trainInContext(_ job: TrainingJob, datasets: DatasetCache,
                                       observers: [TrainingObserver]) throws -> TrainingOutcome {
        let initial = job.initialModel
        // Space and architecture.
        let reference: SpaceReference
        if let yaml = job.spaceYAML {
            reference = try SpaceReference.fromText(yaml, name: job.spaceName ?? "space")
        } else if let name = job.spaceName {
            reference = try SpaceReference.resolve(name)
        } else if let initial {
            reference = try SpaceReference.fromText(initial.spaceYAML, name: initial.spaceName)
        } else {
            throw LabError.invalid("no space: pass a space (or a model to fine-tune)")
        }
        let space = reference.space
        let architecture: Architecture
        if let text = job.architecture {
            architecture = try space.parse(text)
        } else if space.isFixed {
            architecture = try space.parse(SearchSpace.fixedArchitectureText)
        } else if let initial, job.spaceYAML == nil, job.spaceName == nil {
            architecture = try space.parse(initial.architecture)
        } else {
            var rng = SeededGenerator(seed: job.seed)
            let example = space.text(of: space.sample(using: &rng))
            throw LabError.invalid("space '\(space.name)' has \(space.decisions.count) decisions: pass --arch TEXT, e.g. --arch '\(example)'")
        }
        let training = job.training ?? space.task.defaultTraining
        let text = space.text(of: architecture)

        // A checkpoint to resume from (checked before the dataset is loaded).
        var fingerprint = [String: String]()
        var resume: TrainerState?
        if let path = job.checkpointPath {
            fingerprint = try TrainingCheckpoint.fingerprint(job: job, spaceName: job.spaceName ?? reference.name,
                                                             spaceYAML: reference.yaml, architecture: text, training: training)
            try? FileManager.default.removeItem(atPath: TrainingCheckpoint.temporaryPath(for: path))
            resume = try TrainingCheckpoint.load(atPath: path, fingerprint: fingerprint)
        }

        // Data.
        let data: Dataset
        if let tokenizer = initial?.tokenizer {
            data = try datasets.dataset(job.dataset, validationSplit: job.validationSplit, seed: job.datasetSeed,
                                        tokenizer: tokenizer)
        } else {
            data = try datasets.dataset(job.dataset, validationSplit: job.validationSplit, seed: job.datasetSeed)
        }
        let meta = data.metadata
        if let initial { try checkCompatible(initial, with: meta, datasetName: job.dataset) }
        guard space.task.accepts(meta.inputKind) else {
            throw LabError.invalid("dataset '\(job.dataset)' has \(meta.inputKind.name) inputs (\(TaskKind(inputKind: meta.inputKind))) "
                + "but space '\(reference.name)' is a \(space.task) space: use a \(TaskKind(inputKind: meta.inputKind).spacePrefix)… space")
        }

        let missing: String?
        switch space.task {
        case .segmentation: missing = data.train.masks == nil ? "masks" : nil
        case .detection: missing = data.train.boxes == nil ? "boxes" : nil
        case .imageClassification, .textClassification, .tabularClassification: missing = nil
        }
        if let missing {
            throw LabError.invalid("dataset '\(job.dataset)' has no \(missing): \(space.task) needs /\(missing) in its HDF5 file "
                + "(docs/datasets.md), e.g. fashion-scenes")
        }
        let graph = try space.network(for: architecture, inputShape: meta.sampleShape, inputKind: meta.inputKind,
                                      classCount: meta.classCount)
        let cost = try graph.cost()
        var rng = SeededGenerator(seed: job.seed)
        let network = try Network(graph: graph, classCount: space.task.isClassification ? meta.classCount : nil, rng: &rng)
        let objective = Objective(task: space.task)
        try objective.initializeOutput(network, classCount: meta.classCount)
        var copied = [String]()
        if let initial {
            copied = try initialize(network, from: initial, datasetName: job.dataset)
        }
        var initialAccuracy: Double?
        if (job.evaluateBeforeTraining || initial != nil), data.validation.count > 0 {
            initialAccuracy = try TaskEvaluation.metrics(network, task: space.task, on: data.validation)[space.task.primaryMetric]
        }
        var configuration = training.engineConfiguration(seed: job.seed, threads: job.threads)
        if let stop = job.trainEpochs {
            guard (1...training.epochs).contains(stop) else {
                throw LabError.invalid("cannot train to epoch \(stop) of a \(training.epochs)-epoch schedule")
            }
            if let resume, resume.epochsCompleted > stop {
                throw LabError.invalid("\(job.checkpointPath ?? ""): the training checkpoint is at epoch \(resume.epochsCompleted), past epoch \(stop)")
            }
            configuration.scheduleEpochs = training.epochs
            configuration.epochs = stop
        }
        let trainer = Trainer(configuration: configuration, objective: objective, observers: observers)
        var checkpoint: ((TrainerState) throws -> Void)?
        if let path = job.checkpointPath {
            if let resume {
                do {
                    try trainer.validate(resume: resume, network: network, trainCount: data.train.count)
                } catch {
                    throw LabError.invalid("\(path): the training checkpoint does not fit this job's network and data: \(error)")
                }
            }
            checkpoint = { [fingerprint] state in try TrainingCheckpoint.save(state, fingerprint: fingerprint, to: path) }
        }
        let result = try trainer.fit(network, train: data.train, validation: data.validation, test: data.test, rng: &rng,
                                     resume: resume, checkpoint: checkpoint, shouldStop: job.stopRequested)
        let model = TrainedModel(
            spaceName: job.spaceName ?? reference.name, spaceYAML: reference.yaml, architecture: text,
            inputShape: meta.sampleShape, classCount: meta.classCount, classNames: meta.classNames,
            normalization: data.normalization, network: network, task: space.task, inputKind: meta.inputKind,
            tokenizer: data.tokenizer, initializedFrom: initial.map { job.initialModelName ?? "\($0.spaceName): \($0.architecture)" })
        var outcome = TrainingOutcome(result: result, cost: cost, model: model, network: network, architecture: text,
                                      space: reference, training: training, datasetMetadata: meta, trainCount: data.train.count,
                                      initialValidationAccuracy: initialAccuracy, initializedTensors: copied,
                                      resumedFromEpoch: resume?.epochsCompleted)
        if result.status == .completed {
            if space.task.isClassification {
                // The trainer evaluated these already.
                if let v = result.epochs.last?.validationAccuracy { outcome.validationMetrics = ["accuracy": v] }
                if let t = result.testAccuracy { outcome.testMetrics = ["accuracy": t] }
            } else {
                outcome.validationMetrics = try TaskEvaluation.metrics(network, task: space.task, on: data.validation)
                outcome.testMetrics = try TaskEvaluation.metrics(network, task: space.task, on: data.test)
            }
        }
        return outcome
    }

    /// Throws a `LabError` naming the dataset when `model`'s inputs are not the dataset's.
    static func checkCompatible(_ model: TrainedModel, with meta: DatasetMetadata, datasetName: String) throws {
        guard model.inputKind.name == meta.inputKind.name else {
            throw LabError.invalid("cannot fine-tune: the model takes \(model.inputKind.name) inputs (\(model.task)) but dataset "
                + "'\(datasetName)' has \(meta.inputKind.name) inputs")
        }
        guard model.inputKind == meta.inputKind else {
            throw LabError.invalid("cannot fine-tune: the model's vocabulary (\(model.inputKind)) differs from dataset "
                + "'\(datasetName)''s (\(meta.inputKind))")
        }
        guard model.inputShape == meta.sampleShape else {
            throw LabError.invalid("cannot fine-tune: the model takes inputs of shape \(model.inputShape) but dataset "
                + "'\(datasetName)' has samples of shape \(meta.sampleShape)")
        }
    }

    /// Copies every tensor of `model` whose name and shape match into `network`; returns their names.
    /// The classifier of a model with another class count is left as initialised.
    @discardableResult
    public static func initialize(_ network: Network, from model: TrainedModel, datasetName: String) throws -> [String] {
        var copied = [String]()
        for t in model.tensors {
            guard let p = network.tensor(named: t.name), p.shape == t.shape, p.count == t.values.count else { continue }
            p.values = t.values
            copied.append(t.name)
        }
        guard copied.contains(where: { !$0.hasPrefix(classifierPrefix) }) else {
            throw LabError.invalid("cannot fine-tune on dataset '\(datasetName)': no tensor of the model (\(model.spaceName): "
                + "\(model.architecture)) fits the new network")
        }
        return copied
    }
}

extension DatasetCache {
    /// The dataset `name` split like `dataset(_:validationSplit:seed:)` but, for a text dataset,
    /// encoded with a given `tokenizer` (a trained model's) instead of one fitted on the training split.
    public func dataset(_ name: String, validationSplit: Double, seed: UInt64, tokenizer: Tokenizer) throws -> Dataset {
        let raw = try Dataset.loadRaw(name: name)
        guard raw.text != nil else {
            throw LabError.invalid("dataset '\(name)' is not a text dataset (\(raw.metadata.inputKind.name) inputs) "
                + "but the model takes text")
        }
        var rng = SeededGenerator(seed: seed)
        return try Dataset(raw: raw, validationSplit: validationSplit, tokenizer: tokenizer, rng: &rng)
    }
}
