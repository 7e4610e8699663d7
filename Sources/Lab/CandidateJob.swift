import Foundation
import Engine
import NASCore

/// Everything a worker needs to evaluate one candidate, on this machine or on a cluster node.
/// Self-contained and `Codable`: the Slurm executor writes it as JSON to the shared directory and
/// `naslab evaluate SPEC.json --output RESULT.json` runs it there.
public struct CandidateSpec: Codable, Equatable, Sendable {
    public var id: Int
    /// The canonical architecture text in `space`.
    public var architecture: String
    /// The search-space file's YAML text (so a worker needs no access to the coordinator's files).
    public var spaceYAML: String
    public var spaceName: String
    public var dataset: String
    public var validationSplit: Double
    /// Seed of the dataset's train/validation/test split (the experiment seed: equal for all candidates).
    public var datasetSeed: UInt64
    public var training: ExperimentConfig.TrainingSettings
    /// Seed of this candidate's training (derived from the experiment seed and the candidate id).
    public var seed: UInt64
    /// Compute threads for this candidate.
    public var threads: Int
    /// Multi-fidelity: train only to this epoch of `training.epochs`' schedule (`nil`: all epochs).
    public var trainEpochs: Int?
    /// Multi-fidelity: a training checkpoint to continue from (when it exists) and to write after
    /// every epoch, so a promoted candidate continues where its last rung stopped.
    public var checkpointPath: String?
    /// Fine-tuning: a trained-model file (`TrainedModel`) whose weights training starts from
    /// (`nil`: fresh weights). A server's training job on Slurm uses it; searches never do.
    public var initialModelPath: String?
    /// What the trained model records as `initializedFrom` when `initialModelPath` is set.
    public var initialModelName: String?

    public init(id: Int, architecture: String, spaceYAML: String, spaceName: String, dataset: String,
                validationSplit: Double, datasetSeed: UInt64, training: ExperimentConfig.TrainingSettings, seed: UInt64, threads: Int) {
        self.id = id
        self.architecture = architecture
        self.spaceYAML = spaceYAML
        self.spaceName = spaceName
        self.dataset = dataset
        self.validationSplit = validationSplit
        self.datasetSeed = datasetSeed
        self.training = training
        self.seed = seed
        self.threads = threads
    }
}

/// The outcome of evaluating a `CandidateSpec`.
public struct CandidateResult: Codable, Equatable, Sendable {
    public enum Status: String, Codable, Sendable {
        case completed
        case failed
    }

    public var id: Int
    public var status: Status
    /// Why the candidate failed (divergence, an exception, a killed or timed-out cluster task…).
    public var reason: String?
    /// The validation value of the task's primary metric (`TaskKind.primaryMetric`: accuracy,
    /// mIoU or mAP@0.5), what searches rank by; recorded as `val_<metric>`.
    public var validationScore: Double
    /// The test value of the task's primary metric; recorded as `test_<metric>`.
    public var testScore: Double
    /// The task's other metrics by record name (`val_miou_no_background`, `test_map`, …), kept in
    /// the record's `reported` table.
    public var reported: [String: Double]
    public var epochs: [EpochMetrics]
    public var wallSeconds: Double
    /// The epochs restored from `CandidateSpec.checkpointPath` before training (`nil`: none).
    public var resumedFromEpoch: Int?
    /// Who evaluated it: `local-0`, `slurm-<jobid>_<task>`, …
    public var worker: String
    /// An HDF5 weights file the worker wrote for the trained network, if any (the coordinator
    /// copies the best candidate's weights into the record).
    public var weightsFile: String?

    public init(id: Int, status: Status, reason: String? = nil, validationScore: Double = .nan,
                testScore: Double = .nan, epochs: [EpochMetrics] = [], wallSeconds: Double = 0, worker: String,
                weightsFile: String? = nil, reported: [String: Double] = [:]) {
        self.id = id
        self.reported = reported
        self.status = status
        self.reason = reason
        self.validationScore = validationScore
        self.testScore = testScore
        self.epochs = epochs
        self.wallSeconds = wallSeconds
        self.worker = worker
        self.weightsFile = weightsFile
    }

    /// A failed result, e.g. for a task that a cluster killed.
    public static func failed(id: Int, reason: String, worker: String, wallSeconds: Double = 0) -> CandidateResult {
        CandidateResult(id: id, status: .failed, reason: reason, wallSeconds: wallSeconds, worker: worker)
    }
}

/// Runs candidate evaluations somewhere: in this process (`local`) or on a cluster (`slurm`).
///
/// The runner hands over one batch at a time (a generation of proposals) and records the results
/// in candidate-id order, so the record does not depend on which executor ran the batch.
public protocol CandidateExecutor: AnyObject {
    /// Evaluates `specs`, returning one result per spec (any order). A candidate that fails is a
    /// `.failed` result, never a thrown error; throwing means the executor itself cannot go on.
    func evaluate(_ specs: [CandidateSpec]) throws -> [CandidateResult]
}

/// JSON coding for specs and results: NaN (unknown metrics) is written as `"nan"`.
public enum CandidateJSON {
    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    public static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }
}
