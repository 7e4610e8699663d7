import Foundation
import GRDB

/// A model of an organisation: an architecture in a named search space, plus (once trained) its weights.
public struct ModelRecord: Equatable, Sendable {
    public var id: String
    public var organization: String
    public var name: String
    /// The architecture text in `space`.
    public var architecture: String
    /// The search-space name the architecture belongs to.
    public var space: String
    /// Whether the architecture was parsed and checked against its space (needs a ``ModelWorkbench``).
    public var architectureChecked: Bool
    /// `created`, `training`, `trained` or `failed`.
    public var status: String
    /// Where trained weights live (set by training).
    public var artifactPath: String?
    public var createdAt: Int64
    /// What the trained model takes and returns (set by training).
    public var inputSchema: InputSchema?
    /// The NAS search whose best architecture this model was created from.
    public var sourceSearchID: String?

    public init(id: String, organization: String, name: String, architecture: String, space: String, architectureChecked: Bool, status: String, artifactPath: String?, createdAt: Int64, inputSchema: InputSchema? = nil, sourceSearchID: String? = nil) {
        self.inputSchema = inputSchema
        self.sourceSearchID = sourceSearchID
        self.id = id
        self.organization = organization
        self.name = name
        self.architecture = architecture
        self.space = space
        self.architectureChecked = architectureChecked
        self.status = status
        self.artifactPath = artifactPath
        self.createdAt = createdAt
    }

    var json: JSONValue {
        .object([
            "id": .string(id), "object": .string("model"), "name": .string(name),
            "architecture": .string(architecture), "space": .string(space),
            "architecture_checked": .bool(architectureChecked), "status": .string(status),
            "created_at": .number(Double(createdAt)),
            "input_schema": inputSchema?.json ?? .null,
            "from_search": sourceSearchID.map(JSONValue.string) ?? .null,
        ])
    }
}

extension APIStore {
    public func insertModel(_ model: ModelRecord) async throws {
        try await database.write { db in
            try db.execute(sql: """
                INSERT INTO model (id, organization, name, architecture, space, architecture_checked, status, artifact_path,
                                   created_at, input_schema, source_search_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [model.id, model.organization, model.name, model.architecture, model.space,
                                 model.architectureChecked, model.status, model.artifactPath, model.createdAt,
                                 model.inputSchema?.json.jsonText, model.sourceSearchID])
        }
    }

    /// The model `id` of `organization`, else `nil` (another organisation's model is `nil` too).
    public func model(id: String, organization: String) async throws -> ModelRecord? {
        try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM model WHERE id = ? AND organization = ?",
                             arguments: [id, organization]).map(Self.model(from:))
        }
    }

    /// A page of the organisation's models, newest first, after the model `after` (exclusive).
    public func models(organization: String, limit: Int, after: String?) async throws -> Page<ModelRecord> {
        try await page(table: "model", organization: organization, filters: [], limit: limit, after: after, map: Self.model(from:))
    }

    /// Sets a model's status (and its weights' path and input schema when given).
    public func updateModel(id: String, status: String, artifactPath: String? = nil, inputSchema: InputSchema? = nil) async throws {
        try await database.write { db in
            try db.execute(sql: """
                UPDATE model SET status = ?, artifact_path = COALESCE(?, artifact_path), input_schema = COALESCE(?, input_schema)
                WHERE id = ?
                """, arguments: [status, artifactPath, inputSchema?.json.jsonText, id])
        }
    }

    static func model(from row: Row) -> ModelRecord {
        ModelRecord(id: row["id"], organization: row["organization"], name: row["name"], architecture: row["architecture"],
                    space: row["space"], architectureChecked: row["architecture_checked"], status: row["status"],
                    artifactPath: row["artifact_path"], createdAt: row["created_at"],
                    inputSchema: (row["input_schema"] as String?).flatMap { InputSchema.from(JSONValue.fromText($0)) },
                    sourceSearchID: row["source_search_id"])
    }
}

/// One page of a cursor-paginated list.
public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    /// Whether more items follow the last one.
    public var hasMore: Bool
}

/// The cursor of a page does not name an object of the caller's list.
struct UnknownCursor: Error {}

extension APIStore {
    /// Newest-first page of `table` rows of `organization`, after the row with id `after`.
    func page<Item>(table: String, organization: String, filters: [(column: String, value: String)],
                    limit: Int, after: String?, map: @escaping @Sendable (Row) -> Item) async throws -> Page<Item> {
        let filterSQL = filters.map { " AND \($0.column) = ?" }.joined()
        let filterValues = filters.map(\.value)
        return try await database.read { db in
            var sql = "SELECT * FROM \(table) WHERE organization = ?" + filterSQL
            var arguments: [any DatabaseValueConvertible] = [organization] + filterValues
            if let after {
                guard let seq = try Int64.fetchOne(db, sql: "SELECT seq FROM \(table) WHERE id = ? AND organization = ?",
                                                   arguments: [after, organization]) else {
                    throw UnknownCursor()
                }
                sql += " AND seq < ?"
                arguments.append(seq)
            }
            sql += " ORDER BY seq DESC LIMIT ?"
            arguments.append(limit + 1)
            let rows = try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments))
            return Page(items: rows.prefix(limit).map(map), hasMore: rows.count > limit)
        }
    }
}
