import Foundation
import GRDB

/// A training job, an evaluation or a NAS search of an organisation — the rows of `/v1/experiments`.
public struct ExperimentRecord: Equatable, Sendable {
    /// What kind of work an experiment is.
    public enum Kind: String, Sendable, CaseIterable {
        case training, evaluation, nasSearch = "nas_search"
    }

    /// Lifecycle: `pending → running → completed | failed | cancelled`.
    public enum Status: String, Sendable, CaseIterable {
        case pending, running, completed, failed, cancelled

        /// Whether no further transition is possible.
        public var isFinal: Bool { self == .completed || self == .failed || self == .cancelled }
    }

    public var id: String
    public var organization: String
    public var kind: Kind
    public var name: String
    public var status: Status
    public var modelID: String?
    public var datasetID: String?
    /// The validated request (hyperparameters, constraints, …) as JSON.
    public var parameters: JSONValue
    /// Progress and results (`epoch`, `validation_accuracy`, `architectures_evaluated`, …) as a JSON object.
    public var metrics: JSONValue
    /// Why the experiment failed or was cancelled.
    public var failureReason: String?
    public var createdAt: Int64
    public var startedAt: Int64?
    public var finishedAt: Int64?
    /// How often a server restart interrupted this job while it ran (it then resumed or restarted).
    public var restarts: Int = 0
    /// What the last restart did (`resumed from epoch 2 of 5`, `restarted from scratch: no checkpoint`, …).
    public var restartReason: String?
    /// The Slurm jobs submitted for this experiment, in submission order (`naslab serve --executor
    /// slurm`: a search's job arrays, a training job's job; retries included). Empty when it ran locally.
    public var slurmJobIDs: [String] = []

    public init(id: String, organization: String, kind: Kind, name: String, status: Status, modelID: String?, datasetID: String?, parameters: JSONValue, metrics: JSONValue, failureReason: String?, createdAt: Int64, startedAt: Int64?, finishedAt: Int64?) {
        self.id = id
        self.organization = organization
        self.kind = kind
        self.name = name
        self.status = status
        self.modelID = modelID
        self.datasetID = datasetID
        self.parameters = parameters
        self.metrics = metrics
        self.failureReason = failureReason
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }

    var listJSON: JSONValue {
        var fields: [String: JSONValue] = [
            "id": .string(id), "object": .string("experiment"), "type": .string(kind.rawValue), "name": .string(name),
            "status": .string(status.rawValue), "created_at": .number(Double(createdAt)), "metrics": metrics,
            "failure_reason": failureReason.map(JSONValue.string) ?? .null,
        ]
        fields["model_id"] = modelID.map(JSONValue.string) ?? .null
        fields["dataset_id"] = datasetID.map(JSONValue.string) ?? .null
        fields.merge(executionJSON) { $1 }
        return .object(fields)
    }

    /// `restarts`, `restart_reason` and `slurm_job_ids`, shown by every view of a job.
    var executionJSON: [String: JSONValue] {
        ["restarts": .number(Double(restarts)), "restart_reason": restartReason.map(JSONValue.string) ?? .null,
         "slurm_job_ids": .array(slurmJobIDs.map(JSONValue.string))]
    }
}

/// The limits of ``APIStore/insertExperiment(_:limits:)``: how many jobs may wait as `pending`.
public struct QueueLimits: Sendable {
    public var server: Int
    public var organization: Int
    public init(server: Int, organization: Int) {
        self.server = server
        self.organization = organization
    }
}

/// A job was refused because a queue is full.
public struct QueueFull: Error, Equatable, Sendable {
    /// `server` or `organization`.
    public var scope: String
    public var limit: Int
}

extension APIStore {
    /// Stores a new experiment.
    /// - Parameter limits: When given, the insert is refused (``QueueFull``) if the server or the
    ///   experiment's organisation already has that many `pending` experiments — checked in the same
    ///   transaction as the insert, so concurrent requests cannot overshoot.
    public func insertExperiment(_ experiment: ExperimentRecord, limits: QueueLimits? = nil) async throws {
        try await database.write { db in
            if let limits {
                let all = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM experiment WHERE status = 'pending'") ?? 0
                guard all < limits.server else { throw QueueFull(scope: "server", limit: limits.server) }
                let own = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM experiment WHERE status = 'pending' AND organization = ?",
                                           arguments: [experiment.organization]) ?? 0
                guard own < limits.organization else { throw QueueFull(scope: "organization", limit: limits.organization) }
            }
            try db.execute(sql: """
                INSERT INTO experiment (id, organization, kind, name, status, model_id, dataset_id, parameters, metrics,
                                        failure_reason, created_at, started_at, finished_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [experiment.id, experiment.organization, experiment.kind.rawValue, experiment.name,
                                 experiment.status.rawValue, experiment.modelID, experiment.datasetID,
                                 experiment.parameters.jsonText, experiment.metrics.jsonText, experiment.failureReason,
                                 experiment.createdAt, experiment.startedAt, experiment.finishedAt])
        }
    }

    /// The experiment `id` of `organization` (optionally of one kind), else `nil`.
    public func experiment(id: String, organization: String, kind: ExperimentRecord.Kind? = nil) async throws -> ExperimentRecord? {
        let record = try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM experiment WHERE id = ? AND organization = ?",
                             arguments: [id, organization]).map(Self.experiment(from:))
        }
        if let kind, record?.kind != kind { return nil }
        return record
    }

    /// A newest-first page of the organisation's experiments, optionally of one status.
    /// - Throws: `UnknownCursor` (a 400 for the routes) when `after` is not one of them.
    public func experiments(organization: String, status: ExperimentRecord.Status?, limit: Int,
                            after: String?) async throws -> Page<ExperimentRecord> {
        try await page(table: "experiment", organization: organization,
                       filters: status.map { [("status", $0.rawValue)] } ?? [],
                       limit: limit, after: after, map: Self.experiment(from:))
    }

    /// Moves a non-final experiment to `status`; returns the updated record, or `nil` when it was
    /// already final (a final state never changes).
    ///
    /// - Parameters:
    ///   - metrics: Replaces the metrics object when given.
    ///   - failureReason: Recorded for `failed` / `cancelled`.
    @discardableResult
    public func transitionExperiment(id: String, to status: ExperimentRecord.Status, metrics: JSONValue? = nil,
                                     failureReason: String? = nil) async throws -> ExperimentRecord? {
        try await database.write { db in
            let now = Self.now()
            try db.execute(sql: """
                UPDATE experiment SET status = ?, metrics = COALESCE(?, metrics), failure_reason = COALESCE(?, failure_reason),
                    started_at = CASE WHEN ? = 'running' AND started_at IS NULL THEN ? ELSE started_at END,
                    finished_at = CASE WHEN ? IN ('completed', 'failed', 'cancelled') THEN ? ELSE finished_at END
                WHERE id = ? AND status IN ('pending', 'running')
                """, arguments: [status.rawValue, metrics?.jsonText, failureReason, status.rawValue, now,
                                 status.rawValue, now, id])
            guard db.changesCount > 0 else { return nil }
            return try Row.fetchOne(db, sql: "SELECT * FROM experiment WHERE id = ?", arguments: [id]).map(Self.experiment(from:))
        }
    }

    /// The number of experiments of every organisation that are `pending` and `running` (for `GET /v1/health`).
    public func queueDepth() async throws -> (pending: Int, running: Int) {
        try await database.read { db in
            let pending = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM experiment WHERE status = 'pending'") ?? 0
            let running = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM experiment WHERE status = 'running'") ?? 0
            return (pending, running)
        }
    }

    /// Whether the model has a training job still `pending` or `running`.
    public func hasActiveTraining(modelID: String) async throws -> Bool {
        try await database.read { db in
            try Bool.fetchOne(db, sql: """
                SELECT EXISTS (SELECT 1 FROM experiment WHERE model_id = ? AND kind = 'training' AND status IN ('pending', 'running'))
                """, arguments: [modelID]) ?? false
        }
    }

    /// Replaces the metrics of a running experiment (progress reports); ignored once final.
    public func updateExperimentMetrics(id: String, metrics: JSONValue) async throws {
        try await database.write { db in
            try db.execute(sql: "UPDATE experiment SET metrics = ? WHERE id = ? AND status IN ('pending', 'running')",
                           arguments: [metrics.jsonText, id])
        }
    }

    /// Every experiment still `pending` or `running` — the work a stop interrupted — oldest first.
    public func interruptedExperiments() async throws -> [ExperimentRecord] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM experiment WHERE status IN ('pending', 'running') ORDER BY seq")
                .map(Self.experiment(from:))
        }
    }

    /// Records that a restart interrupted a running experiment: `restarts` + 1 and what happened.
    @discardableResult
    public func recordRestart(id: String, reason: String) async throws -> ExperimentRecord? {
        try await database.write { db in
            try db.execute(sql: "UPDATE experiment SET restarts = restarts + 1, restart_reason = ? WHERE id = ?",
                           arguments: [reason, id])
            return try Row.fetchOne(db, sql: "SELECT * FROM experiment WHERE id = ?", arguments: [id]).map(Self.experiment(from:))
        }
    }

    /// Adds Slurm job ids to an experiment's `slurm_job_ids` (each once, in the order first seen);
    /// ignored once the experiment is final.
    public func addSlurmJobIDs(id: String, _ jobIDs: [String]) async throws {
        guard !jobIDs.isEmpty else { return }
        try await database.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT slurm_job_ids FROM experiment WHERE id = ? AND status IN ('pending', 'running')",
                                             arguments: [id]) else { return }
            var known = Self.slurmJobIDs(row["slurm_job_ids"])
            let fresh = jobIDs.filter { !known.contains($0) }
            guard !fresh.isEmpty else { return }
            known += fresh.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
            try db.execute(sql: "UPDATE experiment SET slurm_job_ids = ? WHERE id = ?",
                           arguments: [JSONValue.array(known.map(JSONValue.string)).jsonText, id])
        }
    }

    static func slurmJobIDs(_ text: String?) -> [String] {
        guard let text, case .array(let items) = JSONValue.fromText(text) else { return [] }
        return items.compactMap { if case .string(let id) = $0 { return id } else { return nil } }
    }

    static func experiment(from row: Row) -> ExperimentRecord {
        var record = ExperimentRecord(
            id: row["id"], organization: row["organization"],
            kind: ExperimentRecord.Kind(rawValue: row["kind"]) ?? .training, name: row["name"],
            status: ExperimentRecord.Status(rawValue: row["status"]) ?? .failed,
            modelID: row["model_id"], datasetID: row["dataset_id"],
            parameters: JSONValue.fromText(row["parameters"]), metrics: JSONValue.fromText(row["metrics"]),
            failureReason: row["failure_reason"], createdAt: row["created_at"], startedAt: row["started_at"],
            finishedAt: row["finished_at"])
        record.restarts = row["restarts"] ?? 0
        record.restartReason = row["restart_reason"]
        record.slurmJobIDs = slurmJobIDs(row["slurm_job_ids"])
        return record
    }
}
