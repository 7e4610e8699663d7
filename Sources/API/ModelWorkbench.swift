import Foundation
import Engine
import Lab
import NASCore

/// The seam between the HTTP API and NASLab's machine-learning side (the Lab module).
///
/// The API owns validation, persistence, job state and authorisation; a workbench does the work:
/// checking an architecture against its search space, training a model, running a NAS search and
/// loading a trained model for prediction. ``LabWorkbench`` is the real implementation (what
/// `naslab serve` uses). The server also runs without one (``ServerSettings/workbench`` is `nil`):
/// then models are stored unchecked, training jobs and searches are recorded and immediately
/// marked `failed` with the reason "no training backend configured", and deployments fail.
///
/// Implementations should honour task cancellation (cancel requests cancel the task running
/// `train` / `runSearch`) where they can, and must be deterministic for a given `seed`.
public protocol ModelWorkbench: Sendable {
    /// Parses `architecture` in the search space named `space`.
    /// - Returns: The canonical architecture text.
    /// - Throws: An error whose description tells the user what is wrong (answered as a 400).
    func checkArchitecture(_ architecture: String, space: String) throws -> String

    /// Trains a model; calls `progress` after each epoch with the metrics so far. Writes a checkpoint
    /// to `request.checkpointURL` after every epoch and, when one is there at the start, continues
    /// from it. Task cancellation stops training after the current epoch (throwing `CancellationError`,
    /// the checkpoint kept).
    /// - Returns: Final metrics and where the weights were written (the checkpoint is then removed).
    func train(_ request: TrainingRequest,
               progress: @escaping @Sendable (TrainingProgress) async -> Void) async throws -> TrainingOutcome

    /// The epochs recorded in the training checkpoint of `request` (`nil`: no checkpoint).
    /// - Throws: When the checkpoint exists but cannot be read.
    func checkpointedEpochs(_ request: TrainingRequest) throws -> Int?

    /// The candidates recorded in the record of the search `request` (`nil`: no record yet).
    /// - Throws: When the record exists but cannot be read.
    func recordedCandidates(_ request: SearchRequest) throws -> Int?

    /// The expected wall time of a search on this host, in hours.
    func estimateSearchHours(_ request: SearchRequest) -> Double

    /// Runs a NAS search; calls `progress` after each evaluated architecture. With `request.resume`
    /// and a record in `request.outputDirectory`, continues that record. Task cancellation stops the
    /// search after the candidate being trained (throwing `CancellationError`).
    func runSearch(_ request: SearchRequest,
                   progress: @escaping @Sendable (SearchProgress) async -> Void) async throws -> SearchProgress

    /// The task of the search space named `space`.
    func task(ofSpace space: String) throws -> TaskKind

    /// Called when a user cancels the running job or search `experimentID`, just before its task is
    /// cancelled: work it runs outside this process (Slurm jobs) is then cancelled too, instead of
    /// being left for a restarted server to re-attach to (what a shutdown's task cancellation
    /// does). Default: nothing.
    func cancelRequested(experimentID: String)

    /// Checks that the trained model at `artifactPath` can be fine-tuned on `dataset` (same input
    /// kind and shape; another class set is fine).
    /// - Throws: An error whose description says why not (answered as a 400 naming `dataset_id`).
    func checkFineTuning(artifactPath: String, dataset: DatasetRecord) async throws

    /// The task of a dataset's samples (images, text, feature vectors); reads the file if needed.
    /// - Throws: An error whose description says why the dataset cannot be read (answered as a 400).
    func task(of dataset: DatasetRecord) async throws -> TaskKind

    /// The kinds of labels a dataset has (classes, masks, boxes) and so the tasks it can train;
    /// reads the file if needed. Default: the classes of ``task(of:)``.
    /// - Throws: An error whose description says why the dataset cannot be read (answered as a 400).
    func labels(of dataset: DatasetRecord) async throws -> DatasetLabels

    /// Loads one replica (an independent copy of the network) of the trained model at `artifactPath`.
    /// - Throws: An error whose description says why the file cannot be served.
    func loadReplica(artifactPath: String) async throws -> ModelReplica
}

extension ModelWorkbench {
    public func cancelRequested(experimentID: String) {}

    public func labels(of dataset: DatasetRecord) async throws -> DatasetLabels {
        DatasetLabels(inputTask: try await task(of: dataset), kinds: [DatasetLabels.classes])
    }
}

/// What a dataset is labelled with, as `GET /v1/datasets/{id}` shows it (`labels`, `tasks`).
public struct DatasetLabels: Equatable, Sendable {
    public static let classes = "classes", masks = "masks", boxes = "boxes"

    /// The classification task of the dataset's inputs (image, text or tabular classification).
    public var inputTask: TaskKind
    /// `classes` (one class per sample; for scene files the dominant class that stratifies the
    /// splits), `masks` (per-pixel class ids), `boxes` — in that order.
    public var kinds: [String]

    public init(inputTask: TaskKind, kinds: [String]) {
        self.inputTask = inputTask
        self.kinds = [Self.classes, Self.masks, Self.boxes].filter(kinds.contains)
    }

    /// The tasks a model can be trained for on this dataset: the inputs' classification task, plus
    /// segmentation with masks and detection with boxes (image inputs only).
    public var tasks: [TaskKind] {
        var tasks = kinds.contains(Self.classes) ? [inputTask] : []
        if inputTask == .imageClassification {
            if kinds.contains(Self.masks) { tasks.append(.segmentation) }
            if kinds.contains(Self.boxes) { tasks.append(.detection) }
        }
        return tasks
    }

    /// The label kind `task` trains on (`classes`, `masks` or `boxes`).
    public static func kind(for task: TaskKind) -> String {
        switch task {
        case .segmentation: return masks
        case .detection: return boxes
        case .imageClassification, .textClassification, .tabularClassification: return classes
        }
    }
}

/// One loaded copy of a trained model. A replica serves one request at a time; a deployment
/// holds several to serve requests concurrently.
public final class ModelReplica: @unchecked Sendable {
    /// The Lab predictor (not thread-safe: the deployment pool hands a replica to one request at a time).
    public let predictor: ModelPredictor
    /// The model's input schema (shape C×H×W, classes).
    public let schema: InputSchema

    public init(predictor: ModelPredictor) {
        self.predictor = predictor
        self.schema = InputSchema(predictor.model)
    }
}

/// What a trained model takes and returns: inputs of `shape` (C×H×W, flattened in that order) and
/// `classCount` classes. Shown by `GET /v1/models/{id}` as `input_schema`.
public struct InputSchema: Equatable, Sendable {
    /// `[channels, height, width]` (text models: `[1, 1, maximum tokens]`).
    public var shape: [Int]
    public var classCount: Int
    public var classNames: [String]?
    /// The model's task (image, text or tabular classification).
    public var task: TaskKind

    /// The longest text (in characters) a predict request may send to a text model.
    public static let maximumTextCharacters = 10_000

    public init(shape: [Int], classCount: Int, classNames: [String]?, task: TaskKind? = nil) {
        self.shape = shape
        self.classCount = classCount
        self.classNames = classNames
        self.task = task ?? (shape.count == 3 && (shape[1] > 1 || shape[2] > 1) ? .imageClassification : .tabularClassification)
    }

    /// The schema of a trained model.
    public init(_ model: TrainedModel) {
        let s = model.inputShape
        self.init(shape: [s.channels, s.height, s.width], classCount: model.classCount, classNames: model.classNames,
                  task: model.task)
    }

    /// Values per input (C·H·W; for text the maximum number of tokens).
    public var valuesPerInput: Int { shape.reduce(1, *) }
    /// The key of `inputs` in predict requests: `images`, `features` or `text`.
    public var inputKey: String {
        switch task {
        case .imageClassification, .segmentation, .detection: return "images"
        case .textClassification: return "text"
        case .tabularClassification: return "features"
        }
    }

    var json: JSONValue {
        var fields: [String: JSONValue] = [
            "input_key": .string(inputKey), "task": .string(task.rawValue), "shape": .array(shape.map { .number(Double($0)) }),
            "values_per_input": .number(Double(valuesPerInput)), "class_count": .number(Double(classCount)),
            "classes": .array((classNames ?? (0..<classCount).map(String.init)).map(JSONValue.string)),
        ]
        switch task {
        case .segmentation:
            fields["output"] = .string("per input one run-length encoded mask of H×W class ids (0 = background, 1 + k = classes[k]): {height, width, counts, values, classes}")
        case .detection:
            fields["output"] = .string("per input the detected objects, best first: {label, class_id, score, box: [x1, y1, x2, y2]} in input pixels, x2/y2 exclusive")
        case .imageClassification, .textClassification, .tabularClassification:
            break
        }
        if task == .textClassification {
            fields["max_tokens"] = .number(Double(valuesPerInput))
            fields["max_characters"] = .number(Double(Self.maximumTextCharacters))
            fields["layout"] = .string("each input is a string (or a list of strings); the model's tokenizer lower-cases it, splits words and punctuation and keeps the first max_tokens tokens")
        } else {
            fields["layout"] = .string("each input is a flat array of C·H·W numbers in channel, row, column order (unnormalised; the model applies its training normalisation)")
        }
        return .object(fields)
    }

    static func from(_ value: JSONValue) -> InputSchema? {
        guard case .object(let fields) = value, case .array(let shape)? = fields["shape"],
              case .number(let count)? = fields["class_count"] else { return nil }
        var names: [String]?
        if case .array(let list)? = fields["classes"] {
            names = list.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
        }
        var task: TaskKind?
        if case .string(let t)? = fields["task"] { task = TaskKind(rawValue: t) }
        return InputSchema(shape: shape.compactMap { if case .number(let n) = $0 { return Int(n) } else { return nil } },
                           classCount: Int(count), classNames: names, task: task)
    }
}

/// Everything needed to train one model: the validated body of `POST /v1/models/{id}/train`.
public struct TrainingRequest: Equatable, Sendable {
    public var jobID: String
    public var model: ModelRecord
    public var dataset: DatasetRecord
    /// The hyperparameters (defaults filled in from `ExperimentConfig(name:).training`).
    public var training: ExperimentConfig.TrainingSettings
    /// Fraction of the training data held out for validation, in (0, 0.5].
    public var validationSplit: Double
    public var seed: UInt64
    /// Directory where the weights go (`<data-dir>/models/<model-id>/`).
    public var artifactDirectory: URL
    /// Fine-tuning: the trained-model file to start from (`nil`: from scratch).
    public var initialArtifactPath: String? = nil
    /// What the job reports as `initialized_from` (the job that wrote `initialArtifactPath`).
    public var initializedFrom: String? = nil

    /// The per-epoch training checkpoint: `<artifactDirectory>/<job-id>.checkpoint.h5`.
    public var checkpointURL: URL { artifactDirectory.appendingPathComponent("\(jobID).checkpoint.h5") }
}

/// Training progress after one epoch.
public struct TrainingProgress: Equatable, Sendable {
    /// Every finished epoch, also those restored from a checkpoint.
    public var epochs: [EpochMetrics]
    /// The epochs restored from a checkpoint when the job resumed (`nil`: started from scratch).
    public var resumedFromEpoch: Int?
    /// The Slurm jobs the training job submitted so far (empty when it runs locally).
    public var slurmJobIDs: [String]
    public init(epochs: [EpochMetrics], resumedFromEpoch: Int? = nil, slurmJobIDs: [String] = []) {
        self.epochs = epochs
        self.resumedFromEpoch = resumedFromEpoch
        self.slurmJobIDs = slurmJobIDs
    }
}

/// The result of a finished training job.
public struct TrainingOutcome: Equatable, Sendable {
    public var epochs: [EpochMetrics]
    /// The weights file written.
    public var artifactPath: String
    /// The trained model's input schema.
    public var inputSchema: InputSchema?
    /// Accuracy on the dataset's held-out test split, when it has one.
    public var testAccuracy: Double?
    /// The epochs restored from a checkpoint (`nil`: trained from scratch).
    public var resumedFromEpoch: Int?
    /// Segmentation and detection: the task's metrics on the validation and test splits,
    /// `validation_<metric>` and `test_<metric>` (`TaskKind.metrics`: miou, miou_no_background,
    /// pixel_accuracy; map50, map).
    public var taskMetrics: [String: Double]
    public init(epochs: [EpochMetrics], artifactPath: String, inputSchema: InputSchema? = nil, testAccuracy: Double? = nil,
                resumedFromEpoch: Int? = nil, taskMetrics: [String: Double] = [:]) {
        self.resumedFromEpoch = resumedFromEpoch
        self.taskMetrics = taskMetrics
        self.epochs = epochs
        self.artifactPath = artifactPath
        self.inputSchema = inputSchema
        self.testAccuracy = testAccuracy
    }
}

/// Everything needed to run one NAS search: the validated body of `POST /v1/nas/searches`.
public struct SearchRequest: Equatable, Sendable {
    public var searchID: String
    /// The task (resolved from the request's `task_type` and the dataset).
    public var task: TaskKind
    public var dataset: DatasetRecord
    public var constraints: ExperimentConfig.Constraints
    /// The shipped space searched (`small`, `text-medium`, … — `TaskKind.shippedSpace(size:)`).
    public var searchSpace: String
    /// Candidates to evaluate (trained); rejected candidates do not count. Default 10.
    public var candidates: Int = 10
    /// Training epochs per candidate. Default 3.
    public var epochsPerCandidate: Int = 3
    /// The searcher (`ExperimentConfig.searcherKinds`); default: the CLI's default,
    /// `ExperimentConfig(name:).searcher.kind`.
    public var searcher: String = ExperimentConfig(name: "api").searcher.kind
    public var seed: UInt64
    /// Directory for the search's record (`<data-dir>/results/<search-id>/record.h5`).
    public var outputDirectory: URL
    /// Continue the record in `outputDirectory` when there is one (a restart); else start it.
    public var resume = false
    /// The latency table `max_latency_ms` is screened with (the CLI's policy, `predicted`): the
    /// server's `<data-dir>/latency-table.h5`.
    public var latencyTable: URL? = nil

    /// The search's HDF5 record.
    public var recordURL: URL { outputDirectory.appendingPathComponent("record.h5") }
}

/// A search's progress (and, when returned by `runSearch`, its result).
public struct SearchProgress: Equatable, Sendable {
    public var architecturesEvaluated: Int
    /// The best feasible architecture so far, its text and metrics.
    public var bestArchitecture: String?
    public var bestMetrics: [String: Double]
    /// The Slurm job arrays the search submitted so far (empty when its candidates train locally).
    public var slurmJobIDs: [String]
    public init(architecturesEvaluated: Int, bestArchitecture: String?, bestMetrics: [String: Double],
                slurmJobIDs: [String] = []) {
        self.architecturesEvaluated = architecturesEvaluated
        self.bestArchitecture = bestArchitecture
        self.bestMetrics = bestMetrics
        self.slurmJobIDs = slurmJobIDs
    }
}
