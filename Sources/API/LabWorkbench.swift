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
/// Cancellation: a search stops at the next candidate boundary (the candidate being trained is
/// finished, then the executor refuses the next batch). Training cannot be interrupted inside the
/// engine's epoch loop: a cancelled training job is marked `cancelled` at once and its run is
/// abandoned — the thread finishes the current fit and its result is discarded.
public final class LabWorkbench: ModelWorkbench {
    /// Compute threads for training and searching (the engine's process-wide setting).
    public let threads: Int

    /// - Parameter threads: Compute threads (default: all active processors).
    public init(threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.threads = max(1, threads)
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
        let (stream, continuation) = AsyncStream<[EpochMetrics]>.makeStream()
        let threads = threads
        let work = Task {
            try await Self.offloaded {
                defer { continuation.finish() }
                return try Self.trainSynchronously(request, threads: threads) { epochs in continuation.yield(epochs) }
            }
        }
        for await epochs in stream { await progress(TrainingProgress(epochs: epochs)) }
        let outcome = try await work.value
        try Task.checkCancellation()
        return outcome
    }

    /// Trains on the calling thread (blocking); `epochEnded` gets the metrics so far after each epoch.
    static func trainSynchronously(_ request: TrainingRequest, threads: Int,
                                   epochEnded: @escaping ([EpochMetrics]) -> Void) throws -> TrainingOutcome {
        let reference = try SpaceReference.resolve(request.model.space)
        let space = reference.space
        let architecture = try space.parse(request.model.architecture)
        EngineConfiguration.setThreadCount(threads)
        let data = try Dataset.load(name: datasetName(request.dataset), validationSplit: request.validationSplit,
                                    seed: request.seed)
        let graph = try space.network(for: architecture, inputShape: data.metadata.sampleShape,
                                      classCount: data.metadata.classCount)
        var rng = SeededGenerator(seed: request.seed)
        let network = try Network(graph: graph, classCount: data.metadata.classCount, rng: &rng)
        var epochs = [EpochMetrics]()
        let observer = ClosureObserver { event in
            if case .epochEnd(let metrics) = event {
                epochs.append(metrics)
                epochEnded(epochs)
            }
        }
        let trainer = Trainer(configuration: request.training.engineConfiguration(seed: request.seed, threads: threads),
                              observers: [observer])
        let result = try trainer.fit(network, train: data.train, validation: data.validation, test: data.test, rng: &rng)
        if case .failed(let reason) = result.status { throw LabError.invalid("training failed: \(reason)") }
        try FileManager.default.createDirectory(at: request.artifactDirectory, withIntermediateDirectories: true)
        let path = request.artifactDirectory.appendingPathComponent("\(request.jobID).h5").path
        let model = TrainedModel(spaceName: request.model.space, spaceYAML: reference.yaml,
                                 architecture: space.text(of: architecture), inputShape: data.metadata.sampleShape,
                                 classCount: data.metadata.classCount, classNames: data.metadata.classNames,
                                 normalization: data.normalization, network: network)
        try model.save(to: path)
        let shape = data.metadata.sampleShape
        return TrainingOutcome(epochs: result.epochs, artifactPath: path,
                               inputSchema: InputSchema(shape: [shape.channels, shape.height, shape.width],
                                                        classCount: data.metadata.classCount,
                                                        classNames: data.metadata.classNames),
                               testAccuracy: result.testAccuracy)
    }

    // MARK: - Searches

    public func estimateSearchHours(_ request: SearchRequest) -> Double {
        // A rough planning figure measured on a 2-core host: ~2 µs per training sample per epoch in
        // the small space, 4× in medium, 16× in large, plus 2 s of overhead per candidate.
        let samples: Double = switch request.dataset.id {
        case "digits": 1_300
        case "fashion-mnist": 54_000
        default: Double(max(1, request.dataset.sizeBytes)) / 800
        }
        let factor: Double = switch request.searchSpace { case "small": 1; case "large": 16; default: 4 }
        let seconds = Double(request.candidates) * (2 + Double(request.epochsPerCandidate) * samples * 2e-6 * factor * 50)
        return (seconds / 3600 * 1000).rounded() / 1000
    }

    public func runSearch(_ request: SearchRequest,
                          progress: @escaping @Sendable (SearchProgress) async -> Void) async throws -> SearchProgress {
        let (stream, continuation) = AsyncStream<SearchProgress>.makeStream()
        let cancelled = CancellationFlag()
        let threads = threads
        let work = Task {
            try await Self.offloaded {
                defer { continuation.finish() }
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
        config.taskType = request.taskType
        config.budget.candidates = request.candidates
        config.training.epochs = request.epochsPerCandidate
        config.constraints = request.constraints
        config.constraints.latency = "measured"
        config.threads = threads
        config.workers = 1
        config.output = request.outputDirectory.appendingPathComponent("record.h5").path
        return config
    }

    static func searchSynchronously(_ request: SearchRequest, threads: Int, cancelled: CancellationFlag,
                                    report: @escaping (SearchProgress) -> Void) throws -> SearchProgress {
        let config = experimentConfig(request, threads: threads)
        try FileManager.default.createDirectory(at: request.outputDirectory, withIntermediateDirectories: true)
        let yaml = configYAML(config)
        try yaml.write(to: request.outputDirectory.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
        let executor = CancellableExecutor(
            LocalExecutor(workers: 1, weightsDirectory: ExperimentRunner.weightsDirectory(forRecord: config.outputPath)),
            cancelled: cancelled)
        let runner = try ExperimentRunner.start(config: config, configYAML: yaml, overwrite: true, executor: executor)
        let observer = ProgressObserver(report: report)
        runner.observers = [observer]
        let summary = try runner.run()
        return Self.progress(evaluated: summary.evaluated, best: summary.best)
    }

    static func progress(evaluated: Int, best: CandidateRow?) -> SearchProgress {
        var metrics: [String: Double] = [:]
        if let best {
            metrics["validation_accuracy"] = best.validationAccuracy
            if best.testAccuracy.isFinite { metrics["test_accuracy"] = best.testAccuracy }
            metrics["params"] = best.params
            metrics["flops"] = best.flops
            if best.measuredLatencyMs.isFinite { metrics["latency_ms"] = best.measuredLatencyMs }
        }
        return SearchProgress(architecturesEvaluated: evaluated, bestArchitecture: best?.architecture, bestMetrics: metrics)
    }

    /// The config as YAML (stored in the record, so `naslab resume`/`reproduce` can read it back).
    static func configYAML(_ c: ExperimentConfig) -> String {
        var lines = [
            "name: \(c.name)", "seed: \(c.seed)", "space: \(c.space)", "dataset: '\(c.dataset.replacingOccurrences(of: "'", with: "''"))'",
            "task_type: \(c.taskType)", "threads: \(c.threads)", "workers: 1",
            "output: '\(c.outputPath.replacingOccurrences(of: "'", with: "''"))'",
            "budget:", "  candidates: \(c.budget.candidates)",
            "training:", "  epochs: \(c.training.epochs)",
        ]
        if !c.constraints.isEmpty {
            lines.append("constraints:")
            if let v = c.constraints.maxParams { lines.append("  max_params: \(v)") }
            if let v = c.constraints.maxFlops { lines.append("  max_flops: \(v)") }
            if let v = c.constraints.maxLatencyMs { lines.append("  max_latency_ms: \(v)") }
            lines.append("  latency: \(c.constraints.latency)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: - Serving

    public func loadReplica(artifactPath: String) async throws -> ModelReplica {
        try await Self.offloaded { ModelReplica(predictor: try ModelPredictor(model: try TrainedModel.load(from: artifactPath))) }
    }

    /// Loads a dataset file with the Datasets module (off the event loops) to check it is usable.
    static func checkDatasetLoads(path: String) async throws {
        _ = try await offloaded { try Dataset.loadRaw(name: path).metadata.classCount }
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
    let report: (SearchProgress) -> Void
    init(report: @escaping (SearchProgress) -> Void) { self.report = report }
    func searchStarted(budget: Int, alreadyEvaluated: Int) {}
    func candidateStarted(id: Int, architecture: String) {}
    func candidateFinished(_ row: CandidateRow, evaluated: Int, budget: Int, best: CandidateRow?) {
        report(LabWorkbench.progress(evaluated: evaluated, best: best))
    }
    func searchFinished(_ summary: SearchSummary) {}
}
