import Foundation
import GRDB
import NASCore

/// A dataset as the API shows it: one of the built-ins or a registered file of an organisation.
public struct DatasetRecord: Equatable, Sendable {
    public var id: String
    /// `nil` for built-ins (visible to every organisation).
    public var organization: String?
    public var name: String
    /// `csv`, `idx` or `hdf5` (`builtin` datasets carry their own format).
    public var format: String
    /// `builtin`, `path` (a server-side file) or `upload`.
    public var source: String
    public var path: String
    public var sizeBytes: Int64
    public var createdAt: Int64
    /// What the dataset is labelled with (`nil`: not known — a file registered without a workbench
    /// to load it, or before labels were recorded).
    public var labels: DatasetLabels?

    public init(id: String, organization: String?, name: String, format: String, source: String, path: String, sizeBytes: Int64, createdAt: Int64,
                labels: DatasetLabels? = nil) {
        self.labels = labels
        self.id = id
        self.organization = organization
        self.name = name
        self.format = format
        self.source = source
        self.path = path
        self.sizeBytes = sizeBytes
        self.createdAt = createdAt
    }

    /// The built-in datasets, available to every organisation.
    public static let builtins: [DatasetRecord] = [
        DatasetRecord(id: "digits", organization: nil, name: "digits (8×8 handwritten digits, 1,797 samples)",
                      format: "csv", source: "builtin", path: "", sizeBytes: 0, createdAt: 0,
                      labels: DatasetLabels(inputTask: .imageClassification, kinds: [DatasetLabels.classes])),
        DatasetRecord(id: "fashion-mnist", organization: nil, name: "Fashion-MNIST (28×28 grey images, 70,000 samples)",
                      format: "idx", source: "builtin", path: "", sizeBytes: 0, createdAt: 0,
                      labels: DatasetLabels(inputTask: .imageClassification, kinds: [DatasetLabels.classes])),
        DatasetRecord(id: "fortunes", organization: nil, name: "fortunes (text: Debian fortune cookies, one class per category with ≥ 100 entries)",
                      format: "text", source: "builtin", path: "", sizeBytes: 0, createdAt: 0,
                      labels: DatasetLabels(inputTask: .textClassification, kinds: [DatasetLabels.classes])),
        DatasetRecord(id: "fashion-scenes", organization: nil,
                      name: "fashion scenes (segmentation and detection: 12,000 64×64 scenes of Fashion-MNIST items with masks and boxes)",
                      format: "hdf5", source: "builtin", path: "", sizeBytes: 0, createdAt: 0,
                      labels: DatasetLabels(inputTask: .imageClassification,
                                            kinds: [DatasetLabels.classes, DatasetLabels.masks, DatasetLabels.boxes])),
    ]

    var json: JSONValue {
        .object([
            "id": .string(id), "object": .string("dataset"), "name": .string(name), "format": .string(format),
            "source": .string(source), "size_bytes": .number(Double(sizeBytes)), "created_at": .number(Double(createdAt)),
            "labels": labels.map { .array($0.kinds.map(JSONValue.string)) } ?? .null,
            "tasks": labels.map { .array($0.tasks.map { .string($0.rawValue) }) } ?? .null,
        ])
    }
}

extension APIStore {
    /// Records a dataset file of `organization`.
    public func insertDataset(_ dataset: DatasetRecord) async throws {
        try await database.write { db in
            try db.execute(sql: """
                INSERT INTO dataset (id, organization, name, format, source, path, size_bytes, created_at, labels, input_task)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [dataset.id, dataset.organization, dataset.name, dataset.format, dataset.source,
                                 dataset.path, dataset.sizeBytes, dataset.createdAt,
                                 dataset.labels.map { $0.kinds.joined(separator: ",") }, dataset.labels?.inputTask.rawValue])
        }
    }

    /// The dataset `id` visible to `organization` (a built-in or its own), else `nil`.
    public func dataset(id: String, organization: String) async throws -> DatasetRecord? {
        if let builtin = DatasetRecord.builtins.first(where: { $0.id == id }) { return builtin }
        return try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM dataset WHERE id = ? AND organization = ?",
                             arguments: [id, organization]).map(Self.dataset(from:))
        }
    }

    /// The organisation's datasets, oldest first (built-ins not included).
    public func datasets(organization: String) async throws -> [DatasetRecord] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM dataset WHERE organization = ? ORDER BY seq",
                             arguments: [organization]).map(Self.dataset(from:))
        }
    }

    static func dataset(from row: Row) -> DatasetRecord {
        var labels: DatasetLabels?
        if let kinds: String = row["labels"], let taskName: String = row["input_task"], let task = TaskKind(rawValue: taskName) {
            labels = DatasetLabels(inputTask: task, kinds: kinds.split(separator: ",").map(String.init))
        }
        return DatasetRecord(id: row["id"], organization: row["organization"], name: row["name"], format: row["format"],
                             source: row["source"], path: row["path"], sizeBytes: row["size_bytes"], createdAt: row["created_at"],
                             labels: labels)
    }
}
