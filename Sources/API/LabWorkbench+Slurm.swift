import Datasets
import Engine
import Foundation
import Lab
import NASCore
import Records
import Spaces

/// How `naslab serve --executor slurm` hands its work to a Slurm cluster (docs/api.md, "The API in
/// front of a Slurm cluster"; docs/slurm.md for the cluster side).
///
/// - A search's candidates go to Slurm through Lab's `SlurmExecutor`, as the CLI's do: every
///   generation of ``candidatesPerArray`` candidates is one job array of `naslab evaluate` tasks
///   under `<shared>/searches/<search id>/`; jobs are named `naslab-<search id>-<batch key>`.
/// - A training job is one Slurm job (an array of one `naslab evaluate` task) under
///   `<shared>/training/<job id>/`; it checkpoints there after every epoch, so a retried or
///   requeued task continues, and the server reads the epochs from that checkpoint.
/// - Workers only write result, weights and checkpoint files in the shared directory; the server
///   alone writes its store, the search records and the model files.
/// - A restarted server evaluates the same specs again and so finds the same batch directories:
///   it re-attaches to the recorded jobs instead of submitting them again.
///
/// ```swift
/// var executor = ExperimentConfig(name: "serve").executor
/// executor.kind = "slurm"
/// executor.sharedDirectory = "/scratch/naslab"
/// let cluster = SlurmCluster(executor: executor)
/// try cluster.validate()
/// let workbench = LabWorkbench(cluster: cluster)
/// ```
public struct SlurmCluster: Equatable, Sendable {
    /// The `executor:` section of an experiment config (`kind: slurm`, `shared_dir`, `partition`,
    /// `cpus_per_task`, `time_limit_minutes`, `max_retries`, `extra_args`, `worker_command`; defaults
    /// and meaning in docs/slurm.md). A search stores it in its record's config, with `shared_dir`
    /// narrowed to the search's own directory.
    public var executor: ExperimentConfig.ExecutorSettings
    /// Candidates per job array: a search's `workers` (each generation of this many candidates is
    /// one array). Default 4.
    public var candidatesPerArray: Int = 4
    /// Seconds between two `squeue` polls of one batch (and the bound on how late a cancelled
    /// search's jobs are `scancel`led). Default: `SlurmSettings`' (2).
    public var pollIntervalSeconds: Double = SlurmSettings(sharedDirectory: "").pollIntervalSeconds

    public init(executor: ExperimentConfig.ExecutorSettings) {
        self.executor = executor
    }

    /// The shared directory (`executor.sharedDirectory`).
    public var sharedDirectory: String { executor.sharedDirectory ?? "" }

    /// Checks the settings (by their config key), that the shared directory exists and is writable
    /// here, and that the Slurm client tools are on `PATH`.
    /// - Throws: `SlurmError` naming what is wrong.
    public func validate() throws {
        if executor.kind != "slurm" {
            throw SlurmError.invalidSettings(field: "kind", message: "must be slurm (got '\(executor.kind)')")
        }
        if candidatesPerArray < 1 {
            throw SlurmError.invalidSettings(field: "candidates_per_array", message: "must be at least 1 (got \(candidatesPerArray))")
        }
        var settings = slurmSettings(jobName: "naslab", sharedDirectory: sharedDirectory)
        settings.pollIntervalSeconds = pollIntervalSeconds
        try settings.validate()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: sharedDirectory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw SlurmError.fileSystem(path: sharedDirectory, reason: "the shared directory does not exist (create it on the shared file system)")
        }
        guard FileManager.default.isWritableFile(atPath: sharedDirectory) else {
            throw SlurmError.fileSystem(path: sharedDirectory, reason: "the shared directory is not writable")
        }
        for tool in ["sbatch", "squeue", "scancel", "scontrol"] {
            guard Self.onPath(tool) else { throw SlurmError.commandNotFound(tool) }
        }
    }

    /// `<shared>/searches/<search id>`: the batches of one search.
    public func searchDirectory(_ searchID: String) -> String {
        URL(fileURLWithPath: sharedDirectory).appendingPathComponent("searches").appendingPathComponent(searchID).path
    }

    /// `<shared>/training/<job id>`: the batch, checkpoint and initial weights of one training job.
    public func trainingDirectory(_ jobID: String) -> String {
        URL(fileURLWithPath: sharedDirectory).appendingPathComponent("training").appendingPathComponent(jobID).path
    }

    /// The executor section with `shared_dir` narrowed to `sharedDirectory`.
    func executor(sharedDirectory: String) -> ExperimentConfig.ExecutorSettings {
        var narrowed = executor
        narrowed.sharedDirectory = sharedDirectory
        return narrowed
    }

    /// The Slurm executor's settings for work under `sharedDirectory`, jobs named `<jobName>-<batch key>`.
    func slurmSettings(jobName: String, sharedDirectory: String) -> SlurmSettings {
        var settings = executor(sharedDirectory: sharedDirectory).slurmSettings(jobName: jobName)
        settings.pollIntervalSeconds = pollIntervalSeconds
        return settings
    }

    private static func onPath(_ name: String) -> Bool {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
    }
}

/// The experiments whose Slurm jobs run under this server, and which of them a user cancelled:
/// a cancelled one `scancel`s its jobs, one stopped by a shutdown leaves them to Slurm.
final class SlurmRunControls: @unchecked Sendable {
    private let lock = NSLock()
    private var running: Set<String> = []
    private var cancelled: Set<String> = []

    func started(_ id: String) { lock.withLock { _ = running.insert(id) } }

    func finished(_ id: String) {
        lock.withLock {
            running.remove(id)
            cancelled.remove(id)
        }
    }

    func requestCancel(_ id: String) { lock.withLock { if running.contains(id) { cancelled.insert(id) } } }

    /// What the executor of `id` should do once its task is cancelled (`stop` set): `.cancel` for a
    /// user's cancel, `.detach` for a shutdown; `nil` while it runs on.
    func interruption(_ id: String, stop: CancellationFlag) -> SlurmExecutor.Interruption? {
        guard stop.isSet else { return nil }
        return lock.withLock { cancelled.contains(id) } ? .cancel : .detach
    }
}

/// The Slurm job ids of one experiment, in submission order.
final class SlurmJobLedger {
    private(set) var jobIDs: [String] = []

    /// Adds the jobs recorded for `batch`; `true` when there were new ones.
    @discardableResult
    func note(_ batch: SlurmBatch) -> Bool {
        let fresh = ((try? batch.submissions()) ?? []).map(\.jobID).filter { !jobIDs.contains($0) }
        for id in fresh where !jobIDs.contains(id) { jobIDs.append(id) }
        return !fresh.isEmpty
    }
}

/// A search's candidates on Slurm: Lab's `SlurmExecutor`, plus what a server needs around it —
/// no new batch once the search is cancelled, the job ids as they are submitted, and the end of a
/// search whose candidates keep failing on the cluster.
final class SlurmSearchExecutor: CandidateExecutor {
    /// A search fails once this many job arrays in a row ended with no result from any task (after
    /// `max_retries` resubmissions): its candidates keep failing on the cluster.
    static let failedArraysLimit = 2

    let slurm: SlurmExecutor
    let stop: CancellationFlag
    let ledger = SlurmJobLedger()
    /// Called with every job id so far when new ones were submitted.
    var onNewJobs: (([String]) -> Void)?
    private var failedArraysInARow = 0
    /// Whether any task wrote a result (a worker ran to its end).
    private(set) var anyWorkerResult = false
    /// The reason of the last candidate that ended without a result (Slurm state, stderr tail).
    private(set) var lastClusterFailure: String?

    init(slurm: SlurmExecutor, stop: CancellationFlag, interruption: @escaping () -> SlurmExecutor.Interruption?) {
        self.slurm = slurm
        self.stop = stop
        slurm.interruption = interruption
        slurm.onPoll = { [weak self] batch in
            guard let self, self.ledger.note(batch) else { return }
            self.onNewJobs?(self.ledger.jobIDs)
        }
    }

    func evaluate(_ specs: [CandidateSpec]) throws -> [CandidateResult] {
        if stop.isSet { throw CancellationError() }
        let results: [CandidateResult]
        do {
            results = try slurm.evaluate(specs)
        } catch let error as SlurmError {
            if case .interrupted = error { throw CancellationError() }
            throw error
        }
        let batch = slurm.batch(for: specs)
        let withoutResult = results.filter { !FileManager.default.fileExists(atPath: batch.resultPath($0.id)) }
        if withoutResult.count < results.count { anyWorkerResult = true }
        if let last = withoutResult.last { lastClusterFailure = last.reason }
        failedArraysInARow = !results.isEmpty && withoutResult.count == results.count ? failedArraysInARow + 1 : 0
        if failedArraysInARow >= Self.failedArraysLimit {
            throw LabError.invalid("the search's candidates keep failing on Slurm: \(Self.failedArraysLimit) job arrays in a row "
                                   + "ended without any result; last: \(lastClusterFailure ?? "?")")
        }
        return results
    }
}

extension LabWorkbench {
    // MARK: - Searches on Slurm

    /// Runs (or continues) a search whose candidates train on `cluster`, on the calling thread.
    static func searchOnSlurm(_ request: SearchRequest, cluster: SlurmCluster, threads: Int, stop: CancellationFlag,
                              controls: SlurmRunControls, report: @escaping (SearchProgress) -> Void) throws -> SearchProgress {
        var config = experimentConfig(request, threads: threads)
        config.executor = cluster.executor(sharedDirectory: cluster.searchDirectory(request.searchID))
        config.workers = cluster.candidatesPerArray
        var settings = ExperimentRunner.slurmSettings(config)
        settings.pollIntervalSeconds = cluster.pollIntervalSeconds
        let id = request.searchID
        let executor = SlurmSearchExecutor(slurm: try SlurmExecutor(settings: settings), stop: stop) {
            controls.interruption(id, stop: stop)
        }
        try FileManager.default.createDirectory(at: request.outputDirectory, withIntermediateDirectories: true)
        let runner = try LabWorkbench.makeRunner(request, config: config, executor: executor)
        // The latest progress, re-sent with the job ids whenever a job array is submitted.
        var latest = SearchProgress(architecturesEvaluated: 0, bestArchitecture: nil, bestMetrics: [:])
        func send(_ progress: SearchProgress) {
            latest = progress
            latest.slurmJobIDs = executor.ledger.jobIDs
            report(latest)
        }
        executor.onNewJobs = { _ in send(latest) }
        let observer = ProgressObserver(task: request.task, report: send)
        observer.onStart = { alreadyEvaluated in
            latest = LabWorkbench.progress(evaluated: alreadyEvaluated, best: runner.best, task: request.task)
        }
        runner.observers = [observer]
        let summary = try runner.run()
        if !executor.anyWorkerResult, let reason = executor.lastClusterFailure {
            throw LabError.invalid("every candidate of the search failed on Slurm; last: \(reason)")
        }
        var result = LabWorkbench.progress(evaluated: summary.evaluated, best: summary.best, task: request.task)
        result.slurmJobIDs = executor.ledger.jobIDs
        return result
    }

    // MARK: - Training on Slurm

    /// The spec of a training job on Slurm: the model's architecture and space, the job's dataset,
    /// hyperparameters and seed, trained with the cluster's CPUs per task, checkpointed after every
    /// epoch in the job's shared directory. It depends only on the stored job, so a restarted server
    /// finds the same batch (and re-attaches to its job).
    static func trainingSpec(_ request: TrainingRequest, cluster: SlurmCluster) throws -> CandidateSpec {
        let directory = cluster.trainingDirectory(request.jobID)
        let space = try SpaceReference.resolve(request.model.space)
        var spec = CandidateSpec(
            id: 0, architecture: request.model.architecture, spaceYAML: space.yaml, spaceName: request.model.space,
            dataset: datasetName(request.dataset), validationSplit: request.validationSplit, datasetSeed: request.seed,
            training: request.training, seed: request.seed, threads: cluster.executor.cpusPerTask)
        spec.checkpointPath = (directory as NSString).appendingPathComponent("checkpoint.h5")
        if request.initialArtifactPath != nil {
            spec.initialModelPath = (directory as NSString).appendingPathComponent("initial-model.h5")
            spec.initialModelName = request.initializedFrom
        }
        return spec
    }

    /// Trains `request` as one Slurm job and writes its model file (the server's copy of the
    /// worker's weights) to `<artifactDirectory>/<job id>.h5`; on the calling thread.
    static func trainOnSlurm(_ request: TrainingRequest, cluster: SlurmCluster, stop: CancellationFlag,
                             controls: SlurmRunControls, report: @escaping (TrainingProgress) -> Void) throws -> TrainingOutcome {
        let directory = cluster.trainingDirectory(request.jobID)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let spec = try trainingSpec(request, cluster: cluster)
        if let source = request.initialArtifactPath, let copy = spec.initialModelPath, !FileManager.default.fileExists(atPath: copy) {
            // The nodes read the starting weights from the shared directory, not the server's.
            try copyAtomically(source, to: copy)
        }
        let slurm = try SlurmExecutor(settings: cluster.slurmSettings(jobName: "naslab-\(request.jobID)", sharedDirectory: directory))
        let id = request.jobID
        slurm.interruption = { controls.interruption(id, stop: stop) }
        let ledger = SlurmJobLedger()
        var epochs = [EpochMetrics]()
        var checkpointDate: Date?
        slurm.onPoll = { batch in
            var changed = ledger.note(batch)
            if let path = spec.checkpointPath,
               let date = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date, date != checkpointDate,
               let read = try? TrainingCheckpoint.epochs(atPath: path) {
                checkpointDate = date
                if read != epochs {
                    epochs = read
                    changed = true
                }
            }
            if changed { report(TrainingProgress(epochs: epochs, slurmJobIDs: ledger.jobIDs)) }
        }
        let result: CandidateResult
        do {
            guard let only = try slurm.evaluate([spec]).first else { throw LabError.invalid("the Slurm executor returned no result") }
            result = only
        } catch let error as SlurmError {
            guard case .interrupted(_, let cancelled) = error else { throw error }
            if !cancelled.isEmpty, let path = spec.checkpointPath { try? FileManager.default.removeItem(atPath: path) }
            throw CancellationError()
        }
        guard result.status == .completed, let weights = result.weightsFile else {
            if let path = spec.checkpointPath { try? FileManager.default.removeItem(atPath: path) }
            throw LabError.invalid("training failed on Slurm (\(result.worker)): \(result.reason ?? "the worker wrote no weights")")
        }
        try FileManager.default.createDirectory(at: request.artifactDirectory, withIntermediateDirectories: true)
        let path = request.artifactDirectory.appendingPathComponent("\(request.jobID).h5").path
        try copyAtomically(weights, to: path)
        let model = try TrainedModel.load(from: path)
        for file in [spec.checkpointPath, spec.initialModelPath, weights].compactMap({ $0 }) {
            try? FileManager.default.removeItem(atPath: file)
        }
        var taskMetrics = [String: Double]()
        let primary = model.task.primaryMetric
        if !model.task.isClassification {
            taskMetrics["validation_" + primary] = result.validationScore
            taskMetrics["test_" + primary] = result.testScore
            for (name, value) in result.reported {
                if name.hasPrefix("val_") { taskMetrics["validation_" + name.dropFirst(4)] = value }
                if name.hasPrefix("test_") { taskMetrics[name] = value }
            }
            taskMetrics = taskMetrics.filter { $0.value.isFinite }
        }
        return TrainingOutcome(epochs: result.epochs, artifactPath: path, inputSchema: InputSchema(model),
                               testAccuracy: model.task.isClassification && result.testScore.isFinite ? result.testScore : nil,
                               resumedFromEpoch: result.resumedFromEpoch, taskMetrics: taskMetrics)
    }

    /// Copies `source` to a temporary sibling of `destination` and renames it into place.
    static func copyAtomically(_ source: String, to destination: String) throws {
        let temporary = destination + ".\(ProcessInfo.processInfo.processIdentifier).tmp"
        try? FileManager.default.removeItem(atPath: temporary)
        try FileManager.default.copyItem(atPath: source, toPath: temporary)
        guard rename(temporary, destination) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: temporary)
            throw LabError.invalid("cannot move \(temporary) to \(destination): \(reason)")
        }
    }
}
