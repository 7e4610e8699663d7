import Foundation
import Engine
import Lab
import Logging

/// Runs training jobs and searches as tasks, records their transitions in the store (and logs
/// them), resumes the ones a stop interrupted, and stops them for a shutdown.
///
/// With no ``ModelWorkbench`` every submitted job is marked `failed` at once with the reason
/// ``JobRunner/noBackendReason`` — nothing is pretended.
///
/// At most `maxConcurrentJobs` (default 1) training jobs and searches run at once; the others stay
/// `pending` until a slot frees (first come, first served). A cancelled pending job never starts.
///
/// Work survives the server (docs/api.md, "Restarts, shutdown and back-pressure"):
/// - ``drain(graceSeconds:)`` (SIGTERM/SIGINT) refuses new jobs, asks the running ones to stop at
///   their next boundary (a search after its current candidate, training after its current epoch)
///   and leaves every job's status as it is: `running` and `pending` jobs are the next server's.
/// - ``resumeInterrupted()`` (server start) continues them: searches from their HDF5 record,
///   training from its last per-epoch checkpoint, pending jobs queued in their original order.
actor JobRunner {
    static let noBackendReason =
        "no training backend configured: this server was started without a ModelWorkbench (naslab serve uses LabWorkbench)"

    let store: APIStore
    let workbench: (any ModelWorkbench)?
    let slots: JobSlots
    let logger: Logger
    private var tasks: [String: Task<Void, Never>] = [:]
    /// Jobs cancelled by a user request (not by a shutdown).
    private var cancelledByRequest: Set<String> = []
    /// Set by ``drain(graceSeconds:)``: no job starts any more.
    private(set) var isDraining = false

    init(store: APIStore, workbench: (any ModelWorkbench)?, maxConcurrentJobs: Int = 1,
         logger: Logger = Logger(label: "naslab.jobs")) {
        self.store = store
        self.workbench = workbench
        self.slots = JobSlots(count: maxConcurrentJobs)
        self.logger = logger
    }

    // MARK: - Transitions

    /// Moves a job to `status` in the store and logs the transition (one line per change).
    @discardableResult
    func transition(_ id: String, to status: ExperimentRecord.Status, metrics: JSONValue? = nil,
                    failureReason: String? = nil) async throws -> ExperimentRecord? {
        let record = try await store.transitionExperiment(id: id, to: status, metrics: metrics, failureReason: failureReason)
        if let record {
            var metadata: Logger.Metadata = ["job": "\(id)", "kind": "\(record.kind.rawValue)", "status": "\(status.rawValue)"]
            if let failureReason { metadata["reason"] = "\(failureReason)" }
            logger.info("job state", metadata: metadata)
        }
        return record
    }

    /// Runs in a job's task once it may start: takes a slot unless `immediate` already did and moves
    /// the job to `running`; `false` when it must not run (cancelled, final, shutting down).
    private nonisolated func start(_ id: String, immediate: Bool) async -> Bool {
        if immediate { return true }
        await slots.acquire()
        if Task.isCancelled {
            await slots.release()
            return false
        }
        guard (try? await transition(id, to: .running)) ?? nil != nil else {
            await slots.release()
            return false
        }
        return true
    }

    // MARK: - Training

    /// Starts a training job already stored as `pending` (or `running`, when resuming); returns its
    /// record after dispatch. While draining, the job stays `pending` for the next server.
    func submitTraining(_ request: TrainingRequest, record: ExperimentRecord) async throws -> ExperimentRecord {
        guard let workbench else {
            return try await transition(record.id, to: .failed, failureReason: Self.noBackendReason) ?? record
        }
        if isDraining { return record }
        let store = self.store
        let id = record.id
        let modelID = request.model.id
        let previousStatus = request.model.status == "training"
            ? (request.model.artifactPath == nil ? "created" : "trained") : request.model.status
        let immediate = await slots.tryAcquire()
        var current = record
        if immediate {
            current = try await transition(id, to: .running) ?? record
            try await store.updateModel(id: modelID, status: "training")
        }
        tasks[id] = Task {
            guard await self.start(id, immediate: immediate) else {
                await self.finished(id)
                return
            }
            if !immediate { try? await store.updateModel(id: modelID, status: "training") }
            do {
                let outcome = try await workbench.train(request) { progress in
                    try? await store.addSlurmJobIDs(id: id, progress.slurmJobIDs)
                    try? await store.updateExperimentMetrics(id: id, metrics: Self.metrics(progress))
                }
                var metrics = Self.metrics(TrainingProgress(epochs: outcome.epochs, resumedFromEpoch: outcome.resumedFromEpoch))
                if case .object(var fields) = metrics {
                    fields["test_accuracy"] = outcome.testAccuracy.map(JSONValue.number) ?? .null
                    for (name, value) in outcome.taskMetrics { fields[name] = .number(value) }
                    metrics = .object(fields)
                }
                if try await self.transition(id, to: .completed, metrics: metrics) != nil {
                    try await store.updateModel(id: modelID, status: "trained", artifactPath: outcome.artifactPath,
                                                inputSchema: outcome.inputSchema)
                } else {
                    try? await store.updateModel(id: modelID, status: previousStatus)
                }
            } catch is CancellationError {
                // A user's cancel: the job is already `cancelled`; its checkpoint is of no use.
                // A shutdown: everything stays as it is, for the next server to resume.
                if await self.wasCancelledByRequest(id) {
                    try? await store.updateModel(id: modelID, status: previousStatus)
                    try? FileManager.default.removeItem(at: request.checkpointURL)
                }
            } catch {
                let failed = (try? await self.transition(id, to: .failed, failureReason: String(describing: error))) ?? nil
                try? await store.updateModel(id: modelID, status: failed != nil && previousStatus != "trained" ? "failed" : previousStatus)
            }
            await slots.release()
            await self.finished(id)
        }
        return current
    }

    // MARK: - Searches

    /// Starts a search already stored as `pending` (or `running`, when resuming); returns its record
    /// after dispatch. While draining, the search stays `pending` for the next server.
    func submitSearch(_ request: SearchRequest, record: ExperimentRecord) async throws -> ExperimentRecord {
        guard let workbench else {
            return try await transition(record.id, to: .failed, failureReason: Self.noBackendReason) ?? record
        }
        if isDraining { return record }
        let store = self.store
        let id = record.id
        let immediate = await slots.tryAcquire()
        var current = record
        if immediate { current = try await transition(id, to: .running) ?? record }
        tasks[id] = Task {
            guard await self.start(id, immediate: immediate) else {
                await self.finished(id)
                return
            }
            do {
                let result = try await workbench.runSearch(request) { progress in
                    try? await store.addSlurmJobIDs(id: id, progress.slurmJobIDs)
                    try? await store.updateExperimentMetrics(id: id, metrics: Self.metrics(progress))
                }
                try await self.transition(id, to: .completed, metrics: Self.metrics(result))
            } catch is CancellationError {
                // Cancelled by a user (already `cancelled`) or stopped for a shutdown (stays `running`;
                // its record holds every finished candidate).
            } catch {
                _ = try? await self.transition(id, to: .failed, failureReason: String(describing: error))
            }
            await slots.release()
            await self.finished(id)
        }
        return current
    }

    /// Marks an experiment cancelled and cancels its task (and, through the workbench, its Slurm
    /// jobs); `nil` when it had already finished.
    func cancel(id: String) async throws -> ExperimentRecord? {
        let record = try await transition(id, to: .cancelled, failureReason: "cancelled by request")
        if record != nil {
            cancelledByRequest.insert(id)
            workbench?.cancelRequested(experimentID: id)
        }
        tasks[id]?.cancel()
        return record
    }

    private func wasCancelledByRequest(_ id: String) -> Bool { cancelledByRequest.contains(id) }

    private func finished(_ id: String) {
        tasks[id] = nil
        cancelledByRequest.remove(id)
    }

    // MARK: - Shutdown and restart

    /// Stops taking jobs and asks every running one to stop at its next boundary; waits until all
    /// have stopped or `graceSeconds` have passed.
    /// - Returns: The ids of jobs still running when the grace period ended (they resume from their
    ///   last finished candidate or epoch on the next start).
    func drain(graceSeconds: Double) async -> [String] {
        isDraining = true
        logger.info("draining", metadata: ["jobs": "\(tasks.count)", "grace_seconds": "\(graceSeconds)"])
        for task in tasks.values { task.cancel() }
        let deadline = Date().addingTimeInterval(graceSeconds)
        while !tasks.isEmpty, Date() < deadline {
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
        return tasks.keys.sorted()
    }

    /// Continues the work a stop interrupted, once, when the server starts: `running` jobs first (each
    /// from its record or checkpoint, with `restarts` + 1 and the reason), then `pending` jobs in their
    /// original order. A job whose files are gone or unreadable is marked `failed` with the reason.
    /// - Returns: The number of jobs resumed or queued again.
    @discardableResult
    func resumeInterrupted(dataDirectory: URL) async -> Int {
        guard let interrupted = try? await store.interruptedExperiments() else { return 0 }
        var resumed = 0
        for record in interrupted.filter({ $0.status == .running }) + interrupted.filter({ $0.status == .pending }) {
            do {
                try await resume(record, dataDirectory: dataDirectory)
                resumed += 1
            } catch {
                _ = try? await transition(record.id, to: .failed, failureReason: "cannot resume after a server restart: \(error)")
                if record.kind == .training, let modelID = record.modelID,
                   let model = try? await store.model(id: modelID, organization: record.organization), model.status == "training" {
                    try? await store.updateModel(id: modelID, status: model.artifactPath == nil ? "created" : "trained")
                }
            }
        }
        return resumed
    }

    private func resume(_ record: ExperimentRecord, dataDirectory: URL) async throws {
        guard let workbench else {
            try await transition(record.id, to: .failed, failureReason: Self.noBackendReason)
            return
        }
        guard let datasetID = record.datasetID,
              let dataset = try await store.dataset(id: datasetID, organization: record.organization) else {
            throw LabError.invalid("its dataset '\(record.datasetID ?? "?")' no longer exists")
        }
        let wasRunning = record.status == .running
        switch record.kind {
        case .nasSearch:
            var request = try APIRoutes.searchRequest(from: record, dataset: dataset, dataDirectory: dataDirectory)
            request.resume = true
            if wasRunning {
                try await noteRestart(record.id, reason: try workbench.recordedCandidates(request).map {
                    "server restarted: resumed from its record (\($0) candidate(s) recorded)"
                } ?? "server restarted before the search wrote its record: started from scratch")
            }
            _ = try await submitSearch(request, record: record)
        case .training:
            guard let modelID = record.modelID, var model = try await store.model(id: modelID, organization: record.organization) else {
                throw LabError.invalid("its model '\(record.modelID ?? "?")' no longer exists")
            }
            if model.status != "training" { model.status = "training" }
            let request = try APIRoutes.trainingRequest(from: record, model: model, dataset: dataset, dataDirectory: dataDirectory)
            if wasRunning {
                try await noteRestart(record.id, reason: try workbench.checkpointedEpochs(request).map {
                    "server restarted: resumed from the checkpoint after epoch \($0) of \(request.training.epochs)"
                } ?? "server restarted before the first epoch finished (no checkpoint): training restarted from scratch")
            }
            _ = try await submitTraining(request, record: record)
        case .evaluation:
            throw LabError.invalid("evaluations are not resumable")
        }
    }

    /// Records and logs that a restart interrupted the running job `id` and what resuming it does.
    private func noteRestart(_ id: String, reason: String) async throws {
        try await store.recordRestart(id: id, reason: reason)
        logger.info("job resumed", metadata: ["job": "\(id)", "reason": "\(reason)"])
    }

    // MARK: - Metrics

    static func metrics(_ progress: TrainingProgress) -> JSONValue {
        var fields: [String: JSONValue] = ["epochs_completed": .number(Double(progress.epochs.count))]
        if let resumed = progress.resumedFromEpoch { fields["resumed_from_epoch"] = .number(Double(resumed)) }
        guard let last = progress.epochs.last else { return .object(fields) }
        fields["train_loss"] = .number(last.trainLoss)
        fields["train_accuracy"] = .number(last.trainAccuracy)
        fields["validation_loss"] = last.validationLoss.map(JSONValue.number) ?? .null
        fields["validation_accuracy"] = last.validationAccuracy.map(JSONValue.number) ?? .null
        return .object(fields)
    }

    static func metrics(_ progress: SearchProgress) -> JSONValue {
        var fields: [String: JSONValue] = ["architectures_evaluated": .number(Double(progress.architecturesEvaluated))]
        fields["best_architecture"] = progress.bestArchitecture.map(JSONValue.string) ?? .null
        for (name, value) in progress.bestMetrics { fields["best_" + name] = .number(value) }
        return .object(fields)
    }
}

/// A counting semaphore for jobs: `acquire` waits (first come, first served) until a slot is free.
actor JobSlots {
    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(count: Int) { free = max(1, count) }

    func tryAcquire() -> Bool {
        guard free > 0, waiting.isEmpty else { return false }
        free -= 1
        return true
    }

    func acquire() async {
        if tryAcquire() { return }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty { free += 1 } else { waiting.removeFirst().resume() }
    }
}
