import Foundation
import Engine
import Lab

/// Runs training jobs and searches as tasks, records their transitions in the store and cancels them.
///
/// With no ``ModelWorkbench`` every submitted job is marked `failed` at once with the reason
/// ``JobRunner/noBackendReason`` — nothing is pretended.
actor JobRunner {
    static let noBackendReason =
        "no training backend configured: this server build has no ModelWorkbench (the Lab integration is not wired yet)"

    let store: APIStore
    let workbench: (any ModelWorkbench)?
    private var tasks: [String: Task<Void, Never>] = [:]

    init(store: APIStore, workbench: (any ModelWorkbench)?) {
        self.store = store
        self.workbench = workbench
    }

    /// Starts a training job already stored as `pending`; returns its record after dispatch.
    func submitTraining(_ request: TrainingRequest, record: ExperimentRecord) async throws -> ExperimentRecord {
        guard let workbench else {
            return try await store.transitionExperiment(id: record.id, to: .failed, failureReason: Self.noBackendReason) ?? record
        }
        let store = self.store
        let id = record.id
        tasks[id] = Task {
            do {
                guard try await store.transitionExperiment(id: id, to: .running) != nil else {
                    await self.finished(id)
                    return
                }
                try await store.updateModel(id: request.model.id, status: "training")
                let outcome = try await workbench.train(request) { progress in
                    try? await store.updateExperimentMetrics(id: id, metrics: Self.metrics(progress.epochs))
                }
                try await store.transitionExperiment(id: id, to: .completed, metrics: Self.metrics(outcome.epochs))
                try await store.updateModel(id: request.model.id, status: "trained", artifactPath: outcome.artifactPath)
            } catch is CancellationError {
                try? await store.updateModel(id: request.model.id, status: "created")
            } catch {
                try? await store.transitionExperiment(id: id, to: .failed, failureReason: String(describing: error))
                try? await store.updateModel(id: request.model.id, status: "failed")
            }
            await self.finished(id)
        }
        return record
    }

    /// Starts a search already stored as `pending`; returns its record after dispatch.
    func submitSearch(_ request: SearchRequest, record: ExperimentRecord) async throws -> ExperimentRecord {
        guard let workbench else {
            return try await store.transitionExperiment(id: record.id, to: .failed, failureReason: Self.noBackendReason) ?? record
        }
        let store = self.store
        let id = record.id
        let running = try await store.transitionExperiment(id: id, to: .running) ?? record
        tasks[id] = Task {
            do {
                let result = try await workbench.runSearch(request) { progress in
                    try? await store.updateExperimentMetrics(id: id, metrics: Self.metrics(progress))
                }
                try await store.transitionExperiment(id: id, to: .completed, metrics: Self.metrics(result))
            } catch is CancellationError {
            } catch {
                try? await store.transitionExperiment(id: id, to: .failed, failureReason: String(describing: error))
            }
            await self.finished(id)
        }
        return running
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
