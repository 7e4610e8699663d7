import Datasets
import Engine
import Foundation
import HDF5Kit
import NASCore
import Spaces

/// Keeps loaded datasets in memory so that consecutive candidates do not reload and re-split them.
public final class DatasetCache: @unchecked Sendable {
    private var cache: [String: Dataset] = [:]
    private let lock = NSLock()

    public init() {}

    /// The dataset `name` split with `validationSplit`, splits seeded by `seed`.
    public func dataset(_ name: String, validationSplit: Double, seed: UInt64) throws -> Dataset {
        let key = "\(name)|\(validationSplit)|\(seed)"
        lock.lock()
        defer { lock.unlock() }
        if let d = cache[key] { return d }
        let d = try Dataset.load(name: name, validationSplit: validationSplit, seed: seed)
        cache[key] = d
        return d
    }
}

extension ExperimentConfig.TrainingSettings {
    /// The engine's training configuration for these settings.
    public func engineConfiguration(seed: UInt64, threads: Int?) -> TrainingConfiguration {
        let schedule: LearningRateSchedule
        switch self.schedule {
        case "constant": schedule = .constant
        case "step": schedule = .step(everyEpochs: max(1, epochs / 3), factor: 0.1)
        default: schedule = .cosine(minimumFactor: 0)
        }
        return TrainingConfiguration(
            epochs: epochs, batchSize: batchSize, learningRate: learningRate,
            optimizer: optimizer == "adamw" ? .adamW : .sgd, momentum: momentum, nesterov: nesterov,
            weightDecay: weightDecay, schedule: schedule, warmupEpochs: warmupEpochs,
            labelSmoothing: labelSmoothing, seed: seed, threads: threads)
    }
}

/// Weights files: one float32 dataset per tensor under `/weights`, named by layer path. `TrainedModel`
/// files (what candidates write) have this layout too, so `read` reads both.
public enum WeightsFile {
    public static func save(_ network: Network, to path: String, attributes: [String: String] = [:]) throws {
        let file = try H5File.create(path: path, truncate: true)
        for (k, v) in attributes { try file.setAttribute(k, v) }
        try file.requireGroup("weights").writeTensors(network.namedTensors().map { ($0.name, $0.shape, $0.values) })
        try file.flush()
        try file.close()
    }

    public static func read(_ path: String) throws -> [NamedTensor] {
        let file = try H5File.open(path: path)
        defer { try? file.close() }
        return try file.openGroup("weights").readTensors()
    }

    public static func load(_ path: String, into network: Network) throws {
        try network.load(namedTensors: read(path).map { ($0.name, $0.shape, $0.values) })
    }
}

/// Trains one candidate exactly as a search would, wherever it runs (in process or on a Slurm node).
public enum CandidateTraining {
    /// The seed of candidate `id`'s training in an experiment seeded with `experimentSeed`.
    public static func candidateSeed(experimentSeed: UInt64, candidateID: Int) -> UInt64 {
        var g = SeededGenerator(seed: experimentSeed).derived(stream: UInt64(candidateID) &+ 1)
        return g.next()
    }

    /// Builds and trains `spec`'s network; never throws: problems become a `.failed` result.
    ///
    /// - Parameters:
    ///   - weightsDirectory: if given, the trained weights are written to `candidate-<id>.h5` there.
    ///   - observers: training observers (e.g. a progress bar).
    public static func evaluate(_ spec: CandidateSpec, datasets: DatasetCache, weightsDirectory: String?,
                                worker: String, observers: [TrainingObserver] = []) -> CandidateResult {
        let start = Date()
        func failed(_ reason: String) -> CandidateResult {
            CandidateResult.failed(id: spec.id, reason: reason, worker: worker, wallSeconds: Date().timeIntervalSince(start))
        }
        do {
            var job = TrainingJob(spaceName: spec.spaceName, spaceYAML: spec.spaceYAML, architecture: spec.architecture,
                                  dataset: spec.dataset)
            job.validationSplit = spec.validationSplit
            job.datasetSeed = spec.datasetSeed
            job.training = spec.training
            job.seed = spec.seed
            job.threads = spec.threads  // the candidate's own ComputeContext, wherever it runs
            job.trainEpochs = spec.trainEpochs
            job.checkpointPath = spec.checkpointPath
            if let path = spec.initialModelPath {
                job.initialModel = try TrainedModel.load(from: path)
                job.initialModelName = spec.initialModelName ?? path
            }
            if let path = spec.checkpointPath {
                let directory = (path as NSString).deletingLastPathComponent
                if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            }
            let outcome = try ModelTraining.train(job, datasets: datasets, observers: observers)
            let result = outcome.result
            if let reason = outcome.failureReason {
                var r = failed(reason)
                r.epochs = result.epochs
                return r
            }
            var weightsFile: String?
            if let weightsDirectory {
                try FileManager.default.createDirectory(atPath: weightsDirectory, withIntermediateDirectories: true)
                let path = (weightsDirectory as NSString).appendingPathComponent("candidate-\(spec.id).h5")
                // The one trained-model format (`WeightsFile.read` reads its /weights group).
                try outcome.model.save(to: path)
                weightsFile = path
            }
            var reported = [String: Double]()
            let primary = outcome.model.task.primaryMetric
            for (name, value) in outcome.validationMetrics where name != primary { reported["val_" + name] = value }
            for (name, value) in outcome.testMetrics where name != primary { reported["test_" + name] = value }
            var completed = CandidateResult(
                id: spec.id, status: .completed, validationScore: outcome.validationScore, testScore: outcome.testScore,
                epochs: result.epochs, wallSeconds: Date().timeIntervalSince(start), worker: worker, weightsFile: weightsFile,
                reported: reported)
            completed.resumedFromEpoch = outcome.resumedFromEpoch
            return completed
        } catch {
            return failed("\(error)")
        }
    }
}
