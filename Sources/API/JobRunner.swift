import Foundation
import Engine
import Lab

/// Runs training jobs and searches as tasks, records their transitions in the store and cancels them.
///
/// With no ``ModelWorkbench`` every submitted job is marked `failed` at once with the reason
/// ``JobRunner/noBackendReason`` — nothing is pretended.
///
/// At most `maxConcurrentJobs` (default 1) training jobs and searches run at once; the others stay
/// `pending` until a slot frees (first come, first served). A cancelled pending job never starts.
actor JobRunner {
    static let noBackendReason =
        "no training backend configured: this server was started without a ModelWorkbench (naslab serve uses LabWorkbench)"

    let store: APIStore
    let workbench: (any ModelWorkbench)?
    private var tasks: [String: Task<Void, Never>] = [:]
    let slots: JobSlots

    init(store: APIStore, workbench: (any ModelWorkbench)?, maxConcurrentJobs: Int = 1) {
        self.store = store
        self.workbench = workbench
        self.slots = JobSlots(count: maxConcurrentJobs)
    }

    /// Starts a training job already stored as `pending`; returns its record after dispatch.
    func submitTraining(_ request: TrainingRequest, record: ExperimentRecord) async throws -> ExperimentRecord {
        guard let workbench else {
            return try await store.transitionExperiment(id: record.id, to: .failed, failureReason: Self.noBackendReason) ?? record
        }
        let store = self.store
        let id = record.id
        let slots = self.slots
        let previousStatus = request.model.status == "training" ? "created" : request.model.status
        let immediate = await slots.tryAcquire()
        var current = record
        if immediate {
            current = try await store.transitionExperiment(id: id, to: .running) ?? record
            try await store.updateModel(id: request.model.id, status: "training")
        }
        tasks[id] = Task {
            if !immediate {
                await slots.acquire()
                guard (try? await store.transitionExperiment(id: id, to: .running)) ?? nil != nil else {
                    await slots.release()
                    await self.finished(id)
                    return
                }
                try? await store.updateModel(id: request.model.id, status: "training")
            }
            do {
                let outcome = try await workbench.train(request) { progress in
                    try? await store.updateExperimentMetrics(id: id, metrics: Self.metrics(progress.epochs))
                }
                var metrics = Self.metrics(outcome.epochs)
                if case .object(var fields) = metrics {
                    fields["test_accuracy"] = outcome.testAccuracy.map(JSONValue.number) ?? .null
                    metrics = .object(fields)
                }
                if try await store.transitionExperiment(id: id, to: .completed, metrics: metrics) != nil {
                    try await store.updateModel(id: request.model.id, status: "trained", artifactPath: outcome.artifactPath,
                                                inputSchema: outcome.inputSchema)
                } else {
                    try? await store.updateModel(id: request.model.id, status: previousStatus)
                }
            } catch is CancellationError {
                try? await store.updateModel(id: request.model.id, status: previousStatus)
            } catch {
                let failed = (try? await store.transitionExperiment(id: id, to: .failed, failureReason: String(describing: error))) ?? nil
                if failed != nil {
                    try? await store.updateModel(id: request.model.id, status: previousStatus == "trained" ? "trained" : "failed")
                } else {
                    try? await store.updateModel(id: request.model.id, status: previousStatus)
                }
            }
            await slots.release()
            await self.finished(id)
        }
        return current
    }

    /// Starts a search already stored as `pending`; returns its record after dispatch.
    func submitSearch(_ request: SearchRequest, record: ExperimentRecord) async throws -> ExperimentRecord {
        guard let workbench else {
            return try await store.transitionExperiment(id: record.id, to: .failed, failureReason: Self.noBackendReason) ?? record
        }
        let store = self.store
        let id = record.id
        let slots = self.slots
        let immediate = await slots.tryAcquire()
        var current = record
        if immediate { current = try await store.transitionExperiment(id: id, to: .running) ?? record }
        tasks[id] = Task {
            if !immediate {
                await slots.acquire()
                guard (try? await store.transitionExperiment(id: id, to: .running)) ?? nil != nil else {
                    await slots.release()
                    await self.finished(id)
                    return
                }
            }
            do {
                let result = try await workbench.runSearch(request) { progress in
                    try? await store.updateExperimentMetrics(id: id, metrics: Self.metrics(progress))
                }
                try await store.transitionExperiment(id: id, to: .completed, metrics: Self.metrics(result))
            } catch is CancellationError {
            } catch {
                _ = try? await store.transitionExperiment(id: id, to: .failed, failureReason: String(describing: error))
            }
            await slots.release()
            self.finished(id)
        }
        return current
    }

    /// Marks an experiment cancelled and cancels its task; `nil` when it had already finished.
    func cancel(id: String) async throws -> ExperimentRecord? {
        let record = try await store.transitionExperiment(id: id, to: .cancelled, failureReason: "cancelled by request")
        tasks.removeValue(forKey: id)?.cancel()
        return record
    }

    private func finished(_ id: String) { tasks[id] = nil }

    static func metrics(_ epochs: [EpochMetrics]) -> JSONValue {
        guard let last = epochs.last else { return .object(["epochs_completed": .number(0)]) }
        return .object([
            "epochs_completed": .number(Double(epochs.count)),
            "train_loss": .number(last.trainLoss), "train_accuracy": .number(last.trainAccuracy),
            "validation_loss": last.validationLoss.map(JSONValue.number) ?? .null,
            "validation_accuracy": last.validationAccuracy.map(JSONValue.number) ?? .null,
        ])
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
