import Datasets
import Engine
import Foundation
import Lab
import NASCore
import Records
import Spaces

/// The real ``ModelWorkbench``: trains with NASLab's engine, searches with Lab's `ExperimentRunner`
/// and serves `TrainedModel` files through `ModelPredictor` replicas. The default of `naslab serve`.
///
/// CPU-heavy work (training, searching) runs on dedicated threads, never on the server's event
/// loops, and is bridged back with continuations. The API's ``JobRunner`` runs one job at a time
/// (the others wait as `pending`): the engine's thread count is process-wide, so two jobs would
/// only fight for the same cores.
///
/// ```swift
/// let settings = ServerSettings(port: 8080, dataDirectory: dataURL, workbench: LabWorkbench(threads: 2))
/// ```
///
/// With a ``SlurmCluster`` (`naslab serve --executor slurm`) search candidates and training jobs run
/// as Slurm jobs instead, the server coordinating them (`LabWorkbench+Slurm.swift`); deployments
/// stay in this process.
///
/// Cancellation: a search stops at the next candidate boundary (the candidate being trained is
/// finished, then the executor refuses the next batch). Training cannot be interrupted inside the
/// engine's epoch loop: a cancelled training job is marked `cancelled` at once and its run is
/// abandoned — the thread finishes the current fit and its result is discarded.
public final class LabWorkbench: ModelWorkbench {
    /// Compute threads of each training job and search (its own ``ComputeContext``): a server
    /// running J jobs at once on T threads gives each T / J.
    public let threads: Int
    /// Where training jobs and search candidates run: `nil` in this process (`threads` each), else
    /// on a Slurm cluster (``SlurmCluster``; deployments stay in this process).
    public let cluster: SlurmCluster?
    /// The labels of each dataset read so far (dataset files are immutable once registered).
    private let labelCache = LabelCache()
    /// The experiments with Slurm jobs under this workbench, and the ones a user cancelled.
    let slurmControls = SlurmRunControls()

    /// - Parameters:
    ///   - threads: Compute threads of each job (default: all active processors).
    ///   - cluster: Train on a Slurm cluster instead (default: `nil`, in this process).
    public init(threads: Int = ProcessInfo.processInfo.activeProcessorCount, cluster: SlurmCluster? = nil) {
        self.threads = max(1, threads)
        self.cluster = cluster
    }

    public func cancelRequested(experimentID: String) {
        slurmControls.requestCancel(experimentID)
    }

    /// The dataset name Lab's loaders understand: a built-in id or a registered file's path.
    static func datasetName(_ dataset: DatasetRecord) -> String {
        dataset.source == "builtin" ? dataset.id : dataset.path
    }

    public func checkArchitecture(_ architecture: String, space: String) throws -> String {
        guard SpaceListing.shippedNames.contains(space) else {
            throw LabError.invalid("unknown space '\(space)'; the API serves the shipped spaces: \(SpaceListing.shippedNames.joined(separator: ", "))")
        }
        let reference = try SpaceReference.resolve(space)
        return reference.space.text(of: try reference.space.parse(architecture))
    }

    // MARK: - Training

    public func train(_ request: TrainingRequest,
                      progress: @escaping @Sendable (TrainingProgress) async -> Void) async throws -> TrainingOutcome {
        let (stream, continuation) = AsyncStream<TrainingProgress>.makeStream()
        let stop = CancellationFlag()
        let threads = threads
        let cluster = cluster
        let controls = slurmControls
        let id = request.jobID
        if cluster != nil { controls.started(id) }
        defer { if cluster != nil { controls.finished(id) } }
        let work = Task {
            try await Self.offloaded {
                defer { continuation.finish() }
                if let cluster {
                    return try Self.trainOnSlurm(request, cluster: cluster, stop: stop, controls: controls) { continuation.yield($0) }
                }
                return try Self.trainSynchronously(request, threads: threads, stop: stop) { continuation.yield($0) }
            }
        }
        try await withTaskCancellationHandler {
            for await update in stream { await progress(update) }
        } onCancel: {
            stop.set()
        }
        do {
            return try await work.value
        } catch is TrainingInterrupted {
            throw CancellationError()
        }
    }

    public func checkpointedEpochs(_ request: TrainingRequest) throws -> Int? {
        if let cluster, let path = try Self.trainingSpec(request, cluster: cluster).checkpointPath {
            return try TrainingCheckpoint.epochs(atPath: path)?.count
        }
        return try TrainingCheckpoint.epochs(atPath: request.checkpointURL.path)?.count
    }

    /// Trains on the calling thread (blocking) through Lab's one training pipeline
    /// (`ModelTraining.train`, as `naslab train` and search candidates do), checkpointing after every
    /// epoch and continuing from a checkpoint left by an interrupted run; `report` gets the metrics
    /// so far after each epoch. A set `stop` ends training after the current epoch (`TrainingInterrupted`).
    static func trainSynchronously(_ request: TrainingRequest, threads: Int, stop: CancellationFlag = CancellationFlag(),
                                   report: @escaping (TrainingProgress) -> Void) throws -> TrainingOutcome {
        var job = TrainingJob(spaceName: request.model.space, architecture: request.model.architecture,
                              dataset: datasetName(request.dataset))
        job.validationSplit = request.validationSplit
        job.datasetSeed = request.seed
        job.seed = request.seed
        job.threads = threads
        job.training = request.training
        if let path = request.initialArtifactPath {
            job.initialModel = try TrainedModel.load(from: path)
            job.initialModelName = request.initializedFrom ?? path
        }
        try FileManager.default.createDirectory(at: request.artifactDirectory, withIntermediateDirectories: true)
        let checkpoint = request.checkpointURL.path
        job.checkpointPath = checkpoint
        job.stopRequested = { stop.isSet }
        var epochs = try TrainingCheckpoint.epochs(atPath: checkpoint) ?? []
        let resumedFrom = epochs.isEmpty ? nil : epochs.count
        if !epochs.isEmpty { report(TrainingProgress(epochs: epochs, resumedFromEpoch: resumedFrom)) }
        let observer = ClosureObserver { event in
            if case .epochEnd(let metrics) = event {
                epochs.append(metrics)
                report(TrainingProgress(epochs: epochs, resumedFromEpoch: resumedFrom))
            }
        }
        let outcome = try ModelTraining.train(job, datasets: DatasetCache(), observers: [observer])
        if let reason = outcome.failureReason {
            try? FileManager.default.removeItem(atPath: checkpoint)
            throw LabError.invalid("training failed: \(reason)")
        }
        let path = request.artifactDirectory.appendingPathComponent("\(request.jobID).h5").path
        try outcome.model.save(to: path)
        try? FileManager.default.removeItem(atPath: checkpoint)
        var taskMetrics = [String: Double]()
        if !outcome.model.task.isClassification {
            for (name, value) in outcome.validationMetrics { taskMetrics["validation_" + name] = value }
            for (name, value) in outcome.testMetrics { taskMetrics["test_" + name] = value }
        }
        return TrainingOutcome(epochs: outcome.result.epochs, artifactPath: path, inputSchema: InputSchema(outcome.model),
                               testAccuracy: outcome.result.testAccuracy, resumedFromEpoch: outcome.resumedFromEpoch,
                               taskMetrics: taskMetrics)
    }

    public func task(ofSpace space: String) throws -> TaskKind { try SpaceReference.resolve(space).space.task }

    public func checkFineTuning(artifactPath: String, dataset: DatasetRecord) async throws {
        let name = Self.datasetName(dataset)
        try await Self.offloaded {
            let model = try TrainedModel.load(from: artifactPath)
            let raw = try Dataset.loadRaw(name: name)
            let metadata = raw.metadata
            let labels = Self.labels(of: raw)
            let task = labels.inputTask
            guard model.task.accepts(metadata.inputKind) else {
                throw LabError.invalid("the model takes \(model.task.inputDescription), dataset '\(dataset.id)' holds \(task.inputDescription)")
            }
            guard labels.tasks.contains(model.task) else {
                throw LabError.invalid("the model is a \(model.task) model, dataset '\(dataset.id)' has no \(DatasetLabels.kind(for: model.task))")
            }
            // Text is re-tokenized with the model's tokenizer, so any text dataset fits; images and
            // feature vectors must have the model's input shape.
            if task != .textClassification, metadata.sampleShape != model.inputShape {
                throw LabError.invalid("the model takes inputs of shape \(model.inputShape), dataset '\(dataset.id)' has \(metadata.sampleShape)")
            }
        }
    }

    // MARK: - Searches

    public func estimateSearchHours(_ request: SearchRequest) -> Double {
        // A rough planning figure measured on a 2-core host: ~2 µs per training sample per epoch in
        // the small space, 4× in medium, 16× in large, plus 2 s of overhead per candidate.
        let samples: Double = switch request.dataset.id {
        case "digits": 1_300
        case "fashion-mnist": 54_000
        case "fashion-scenes": 9_000 * 5   // 64×64 scenes with a decoder: ~5 Fashion-MNIST images each
        default: Double(max(1, request.dataset.sizeBytes)) / 800
        }
        let factor: Double = request.searchSpace.hasSuffix("small") ? 1 : (request.searchSpace.hasSuffix("large") ? 16 : 4)
        let seconds = Double(request.candidates) * (2 + Double(request.epochsPerCandidate) * samples * 2e-6 * factor * 50)
        return (seconds / 3600 * 1000).rounded() / 1000
    }

    public func runSearch(_ request: SearchRequest,
                          progress: @escaping @Sendable (SearchProgress) async -> Void) async throws -> SearchProgress {
        let (stream, continuation) = AsyncStream<SearchProgress>.makeStream()
        let cancelled = CancellationFlag()
        let threads = threads
        let cluster = cluster
        let controls = slurmControls
        let id = request.searchID
        if cluster != nil { controls.started(id) }
        defer { if cluster != nil { controls.finished(id) } }
        let work = Task {
            try await Self.offloaded {
                defer { continuation.finish() }
                if let cluster {
                    return try Self.searchOnSlurm(request, cluster: cluster, threads: threads, stop: cancelled, controls: controls) {
                        continuation.yield($0)
                    }
                }
                return try Self.searchSynchronously(request, threads: threads, cancelled: cancelled) { continuation.yield($0) }
            }
        }
        try await withTaskCancellationHandler {
            for await update in stream { await progress(update) }
        } onCancel: {
            cancelled.set()
        }
        let result = try await work.value
        try Task.checkCancellation()
        return result
    }

    /// The experiment config of a search request.
    static func experimentConfig(_ request: SearchRequest, threads: Int) -> ExperimentConfig {
        var config = ExperimentConfig(name: request.searchID)
        config.seed = request.seed
        config.space = request.searchSpace
        config.dataset = datasetName(request.dataset)
        config.taskType = request.task.rawValue
        config.budget.candidates = request.candidates
        config.training = request.task.defaultTraining
        config.training.epochs = request.epochsPerCandidate
        // The CLI's searcher default and latency policy (predicted from the per-op table): one
        // policy for `max_latency_ms` whether a search comes from a config file or the API.
        config.searcher.kind = request.searcher
        config.constraints = request.constraints
        if let table = request.latencyTable { config.constraints.latencyTable = table.path }
        config.threads = threads
        config.workers = 1
        config.output = request.outputDirectory.appendingPathComponent("record.h5").path
        return config
    }

    public func recordedCandidates(_ request: SearchRequest) throws -> Int? {
        guard FileManager.default.fileExists(atPath: request.recordURL.path) else { return nil }
        return try Records.ExperimentRecord.openReadOnly(path: request.recordURL.path).readCandidates().count
    }

    /// Runs (or, with `request.resume` and an existing record, continues) the search on the calling thread.
    /// The search's runner: its record resumed on a restart (`request.resume`), else a new record
    /// with the config saved beside it — whichever executor runs the candidates.
    static func makeRunner(_ request: SearchRequest, config: ExperimentConfig, executor: any CandidateExecutor) throws -> ExperimentRunner {
        if request.resume, FileManager.default.fileExists(atPath: config.outputPath) {
            return try ExperimentRunner.resume(recordPath: config.outputPath, executor: executor)
        }
        let yaml = config.yamlText
        try yaml.write(to: request.outputDirectory.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
        return try ExperimentRunner.start(config: config, configYAML: yaml, overwrite: true, executor: executor)
    }

    static func searchSynchronously(_ request: SearchRequest, threads: Int, cancelled: CancellationFlag,
                                    report: @escaping (SearchProgress) -> Void) throws -> SearchProgress {
        let config = experimentConfig(request, threads: threads)
        try FileManager.default.createDirectory(at: request.outputDirectory, withIntermediateDirectories: true)
        let executor = CancellableExecutor(
            LocalExecutor(workers: 1, weightsDirectory: ExperimentRunner.weightsDirectory(forRecord: config.outputPath)),
            cancelled: cancelled)
        let runner = try makeRunner(request, config: config, executor: executor)
        let observer = ProgressObserver(task: request.task, report: report)
        runner.observers = [observer]
        let summary = try runner.run()
        return Self.progress(evaluated: summary.evaluated, best: summary.best, task: request.task)
    }

    /// The search's progress; the best candidate's score is named by the task's primary metric
    /// (`validation_accuracy`, `validation_miou`, `validation_map50`; `test_…` likewise).
    static func progress(evaluated: Int, best: CandidateRow?, task: TaskKind = .imageClassification) -> SearchProgress {
        var metrics: [String: Double] = [:]
        if let best {
            metrics["validation_" + task.primaryMetric] = best.validationScore
            if best.testScore.isFinite { metrics["test_" + task.primaryMetric] = best.testScore }
            metrics["params"] = best.params
            metrics["flops"] = best.flops
            if best.measuredLatencyMs.isFinite { metrics["latency_ms"] = best.measuredLatencyMs }
        }
        return SearchProgress(architecturesEvaluated: evaluated, bestArchitecture: best?.architecture, bestMetrics: metrics)
    }

    // MARK: - Serving

    public func loadReplica(artifactPath: String) async throws -> ModelReplica {
        try await Self.offloaded { ModelReplica(predictor: try ModelPredictor(model: try TrainedModel.load(from: artifactPath))) }
    }

    public func task(of dataset: DatasetRecord) async throws -> TaskKind {
        try await labels(of: dataset).inputTask
    }

    public func labels(of dataset: DatasetRecord) async throws -> DatasetLabels {
        let name = Self.datasetName(dataset)
        if let known = labelCache[name] { return known }
        let labels = try await Self.offloaded { Self.labels(of: try Dataset.loadRaw(name: name)) }
        labelCache[name] = labels
        return labels
    }

    /// The labels of loaded data: classes always (scene files: each scene's dominant class), masks
    /// and boxes when it has them.
    static func labels(of raw: RawDataset) -> DatasetLabels {
        var kinds = [DatasetLabels.classes]
        if raw.train.masks != nil { kinds.append(DatasetLabels.masks) }
        if raw.train.boxes != nil { kinds.append(DatasetLabels.boxes) }
        return DatasetLabels(inputTask: TaskKind(inputKind: raw.metadata.inputKind), kinds: kinds)
    }

    /// Loads a dataset file with the Datasets module (off the event loops) to check it is usable;
    /// returns its labels.
    @discardableResult
    static func checkDatasetLoads(path: String) async throws -> DatasetLabels {
        try await offloaded { labels(of: try Dataset.loadRaw(name: path)) }
    }

    // MARK: - Threads

    /// Runs `body` on a new thread (not the cooperative pool nor an event loop) and awaits it.
    static func offloaded<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
            }
            thread.stackSize = 16 << 20
            thread.start()
        }
    }
}

/// Dataset name → labels, shared by concurrent requests.
final class LabelCache: @unchecked Sendable {
    private let lock = NSLock()
    private var tasks: [String: DatasetLabels] = [:]

    subscript(name: String) -> DatasetLabels? {
        get { lock.withLock { tasks[name] } }
        set { lock.withLock { tasks[name] = newValue } }
    }
}

/// A flag set from another thread when a search is cancelled.
final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

/// Wraps the local executor and refuses further candidates once the search is cancelled.
final class CancellableExecutor: CandidateExecutor {
    let base: CandidateExecutor
    let cancelled: CancellationFlag
    init(_ base: CandidateExecutor, cancelled: CancellationFlag) {
        self.base = base
        self.cancelled = cancelled
    }
    func evaluate(_ specs: [CandidateSpec]) throws -> [CandidateResult] {
        if cancelled.isSet { throw CancellationError() }
        return try base.evaluate(specs)
    }
}

/// Forwards the runner's candidate results as ``SearchProgress``.
final class ProgressObserver: SearchObserver {
    let task: TaskKind
    let report: (SearchProgress) -> Void
    init(task: TaskKind, report: @escaping (SearchProgress) -> Void) {
        self.task = task
        self.report = report
    }
    /// Called when the search (re)starts, with the candidates its record already holds.
    var onStart: ((Int) -> Void)?
    func searchStarted(budget: Int, alreadyEvaluated: Int) { onStart?(alreadyEvaluated) }
    func candidateStarted(id: Int, architecture: String) {}
    func candidateFinished(_ row: CandidateRow, evaluated: Int, budget: Int, best: CandidateRow?) {
        report(LabWorkbench.progress(evaluated: evaluated, best: best, task: task))
    }
    func searchFinished(_ summary: SearchSummary) {}
}
