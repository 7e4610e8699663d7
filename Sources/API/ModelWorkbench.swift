import Foundation
import Engine
import Lab

/// The seam between the HTTP API and NASLab's machine-learning side (the Lab module).
///
/// The API owns validation, persistence, job state and authorisation; a workbench does the work:
/// checking an architecture against its search space, training a model, running a NAS search and
/// loading a trained model for prediction. The server runs without one (``ServerSettings/workbench``
/// is `nil`): then models are stored unchecked, training jobs and searches are recorded and
/// immediately marked `failed` with the reason "no training backend configured", and the
/// predict/deploy routes are not registered.
///
/// Implementations must honour task cancellation (cancel requests cancel the task running
/// `train` / `runSearch`) and must be deterministic for a given `seed`.
public protocol ModelWorkbench: Sendable {
    /// Parses `architecture` in the search space named `space`.
    /// - Returns: The canonical architecture text.
    /// - Throws: An error whose description tells the user what is wrong (answered as a 400).
    func checkArchitecture(_ architecture: String, space: String) throws -> String

    /// Trains a model; calls `progress` after each epoch with the metrics so far.
    /// - Returns: Final metrics and where the weights were written.
    func train(_ request: TrainingRequest,
               progress: @escaping @Sendable (TrainingProgress) async -> Void) async throws -> TrainingOutcome

    /// The expected wall time of a search on this host, in hours.
    func estimateSearchHours(_ request: SearchRequest) -> Double

    /// Runs a NAS search; calls `progress` after each evaluated architecture.
    func runSearch(_ request: SearchRequest,
                   progress: @escaping @Sendable (SearchProgress) async -> Void) async throws -> SearchProgress
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
}

/// Training progress after one epoch.
public struct TrainingProgress: Equatable, Sendable {
    public var epochs: [EpochMetrics]
    public init(epochs: [EpochMetrics]) { self.epochs = epochs }
}

/// The result of a finished training job.
public struct TrainingOutcome: Equatable, Sendable {
    public var epochs: [EpochMetrics]
    /// The weights file written.
    public var artifactPath: String
    public init(epochs: [EpochMetrics], artifactPath: String) {
        self.epochs = epochs
        self.artifactPath = artifactPath
    }
}

/// Everything needed to run one NAS search: the validated body of `POST /v1/nas/searches`.
public struct SearchRequest: Equatable, Sendable {
    public var searchID: String
    /// `classification` or `image_classification`.
    public var taskType: String
    public var dataset: DatasetRecord
    public var constraints: ExperimentConfig.Constraints
    /// `small`, `medium` or `large`.
    public var searchSpace: String
    public var seed: UInt64
    /// Directory for the search's record (`<data-dir>/searches/<search-id>/`).
    public var outputDirectory: URL
}

/// A search's progress (and, when returned by `runSearch`, its result).
public struct SearchProgress: Equatable, Sendable {
    public var architecturesEvaluated: Int
    /// The best feasible architecture so far, its text and metrics.
    public var bestArchitecture: String?
    public var bestMetrics: [String: Double]
    public init(architecturesEvaluated: Int, bestArchitecture: String?, bestMetrics: [String: Double]) {
        self.architecturesEvaluated = architecturesEvaluated
        self.bestArchitecture = bestArchitecture
        self.bestMetrics = bestMetrics
    }
}
