import Foundation
import GRDB

/// A deployment: a trained model loaded as `replicas` copies serving predictions.
public struct DeploymentRecord: Equatable, Sendable {
    /// `provisioning → running`, `→ failed` (with a reason) when loading fails, `deleted` once removed.
    public enum Status: String, Sendable, CaseIterable {
        case provisioning, running, failed, deleted
    }

    public var id: String
    public var organization: String
    public var modelID: String
    public var status: Status
    /// Replicas loaded at start (auto-scaling may add more up to `maxReplicas`).
    public var replicas: Int
    /// `cpu`, `gpu-small` or `gpu-large`.
    public var instanceType: String
    public var minReplicas: Int
    public var maxReplicas: Int
    public var endpointURL: String
    public var failureReason: String?
    public var createdAt: Int64
    public var deletedAt: Int64?

    func json(loadedReplicas: Int?) -> JSONValue {
        .object([
            "id": .string(id), "object": .string("deployment"), "model_id": .string(modelID),
            "status": .string(status.rawValue), "replicas": .number(Double(replicas)),
            "loaded_replicas": .number(Double(loadedReplicas ?? 0)), "instance_type": .string(instanceType),
            "auto_scaling": .object(["min_replicas": .number(Double(minReplicas)), "max_replicas": .number(Double(maxReplicas))]),
            "endpoint_url": .string(endpointURL), "failure_reason": failureReason.map(JSONValue.string) ?? .null,
            "created_at": .number(Double(createdAt)), "deleted_at": deletedAt.map { .number(Double($0)) } ?? .null,
        ])
    }
}

extension APIStore {
    public func insertDeployment(_ deployment: DeploymentRecord) async throws {
        let scaling = JSONValue.object(["min_replicas": .number(Double(deployment.minReplicas)),
                                        "max_replicas": .number(Double(deployment.maxReplicas))]).jsonText
        try await database.write { db in
            try db.execute(sql: """
                INSERT INTO deployment (id, organization, model_id, status, replicas, instance_type, auto_scaling, endpoint_url,
                                        created_at, deleted_at, failure_reason)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [deployment.id, deployment.organization, deployment.modelID, deployment.status.rawValue,
                                 deployment.replicas, deployment.instanceType, scaling, deployment.endpointURL,
                                 deployment.createdAt, deployment.deletedAt, deployment.failureReason])
        }
    }

    /// The deployment `id` of `organization`, else `nil`.
    public func deployment(id: String, organization: String) async throws -> DeploymentRecord? {
        try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM deployment WHERE id = ? AND organization = ?",
                             arguments: [id, organization]).map(Self.deployment(from:))
        }
    }

    /// The newest deployment of a model that is not deleted, else `nil`.
    public func activeDeployment(modelID: String, organization: String) async throws -> DeploymentRecord? {
        try await database.read { db in
            try Row.fetchOne(db, sql: """
                SELECT * FROM deployment WHERE model_id = ? AND organization = ? AND status != 'deleted'
                ORDER BY (status = 'running') DESC, seq DESC LIMIT 1
                """, arguments: [modelID, organization]).map(Self.deployment(from:))
        }
    }

    /// Every deployment still `provisioning` or `running` (to load again when the server starts).
    public func liveDeployments() async throws -> [DeploymentRecord] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM deployment WHERE status IN ('provisioning', 'running') ORDER BY seq")
                .map(Self.deployment(from:))
        }
    }

    /// A newest-first page of the organisation's deployments.
    public func deployments(organization: String, limit: Int, after: String?) async throws -> Page<DeploymentRecord> {
        try await page(table: "deployment", organization: organization, filters: [], limit: limit, after: after,
                       map: Self.deployment(from:))
    }

    /// Sets a deployment's status (never leaves `deleted`); returns the updated record.
    @discardableResult
    public func updateDeployment(id: String, status: DeploymentRecord.Status, failureReason: String? = nil) async throws -> DeploymentRecord? {
        try await database.write { db in
            try db.execute(sql: """
                UPDATE deployment SET status = ?, failure_reason = ?,
                    deleted_at = CASE WHEN ? = 'deleted' THEN ? ELSE deleted_at END
                WHERE id = ? AND status != 'deleted'
                """, arguments: [status.rawValue, failureReason, status.rawValue, Self.now(), id])
            return try Row.fetchOne(db, sql: "SELECT * FROM deployment WHERE id = ?", arguments: [id]).map(Self.deployment(from:))
        }
    }

    static func deployment(from row: Row) -> DeploymentRecord {
        var minimum = 1, maximum = 1
        let replicas: Int = row["replicas"]
        if case .object(let scaling) = JSONValue.fromText(row["auto_scaling"]) {
            if case .number(let n)? = scaling["min_replicas"] { minimum = Int(n) }
            if case .number(let n)? = scaling["max_replicas"] { maximum = Int(n) }
        } else {
            minimum = replicas
            maximum = replicas
        }
        return DeploymentRecord(
            id: row["id"], organization: row["organization"], modelID: row["model_id"],
            status: DeploymentRecord.Status(rawValue: row["status"]) ?? .failed, replicas: replicas,
            instanceType: row["instance_type"], minReplicas: minimum, maxReplicas: maximum, endpointURL: row["endpoint_url"],
            failureReason: row["failure_reason"], createdAt: row["created_at"], deletedAt: row["deleted_at"])
    }
}
