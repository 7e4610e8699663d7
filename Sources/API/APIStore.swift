import Foundation
import GRDB

/// The API's persistent state — API keys, datasets, models, experiments (training jobs,
/// evaluations, NAS searches) and deployments — in one SQLite database (`naslab.sqlite`) in the
/// data directory, through GRDB.
///
/// Opening a store never changes job states; the server resumes the jobs a stop cut off
/// (``interruptedExperiments()``, `JobRunner.resumeInterrupted()`).
///
/// ```swift
/// let store = try APIStore(dataDirectory: URL(fileURLWithPath: "data"))
/// let key = try store.createAPIKey(organization: "acme")
/// ```
public final class APIStore: Sendable {
    /// The data directory holding the database and uploaded files.
    public let dataDirectory: URL
    let database: DatabaseQueue

    /// The database file name inside the data directory.
    public static let databaseFileName = "naslab.sqlite"

    /// Opens (creating if needed) the store in `dataDirectory` and brings its schema up to date.
    /// - Parameter dataDirectory: Created if missing.
    /// - Throws: ``APIStoreError`` when the directory cannot be created or the database opened.
    public init(dataDirectory: URL) throws {
        self.dataDirectory = dataDirectory
        do {
            try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        } catch {
            throw APIStoreError.cannotCreateDirectory(path: dataDirectory.path, reason: error.localizedDescription)
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.foreignKeysEnabled = true
        let path = dataDirectory.appendingPathComponent(Self.databaseFileName).path
        do {
            database = try DatabaseQueue(path: path, configuration: configuration)
            try Self.migrator.migrate(database)
        } catch {
            throw APIStoreError.cannotOpenDatabase(path: path, reason: String(describing: error))
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE api_key (
                    id TEXT PRIMARY KEY NOT NULL,
                    organization TEXT NOT NULL,
                    key_hash TEXT NOT NULL UNIQUE,
                    created_at INTEGER NOT NULL,
                    revoked_at INTEGER
                );
                CREATE TABLE dataset (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    id TEXT NOT NULL UNIQUE,
                    organization TEXT NOT NULL,
                    name TEXT NOT NULL,
                    format TEXT NOT NULL,
                    source TEXT NOT NULL,
                    path TEXT NOT NULL,
                    size_bytes INTEGER NOT NULL,
                    created_at INTEGER NOT NULL
                );
                CREATE INDEX dataset_organization ON dataset(organization, seq);
                CREATE TABLE model (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    id TEXT NOT NULL UNIQUE,
                    organization TEXT NOT NULL,
                    name TEXT NOT NULL,
                    architecture TEXT NOT NULL,
                    space TEXT NOT NULL,
                    architecture_checked INTEGER NOT NULL,
                    status TEXT NOT NULL,
                    artifact_path TEXT,
                    created_at INTEGER NOT NULL
                );
                CREATE INDEX model_organization ON model(organization, seq);
                CREATE TABLE experiment (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    id TEXT NOT NULL UNIQUE,
                    organization TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    name TEXT NOT NULL,
                    status TEXT NOT NULL,
                    model_id TEXT,
                    dataset_id TEXT,
                    parameters TEXT NOT NULL,
                    metrics TEXT NOT NULL,
                    failure_reason TEXT,
                    created_at INTEGER NOT NULL,
                    started_at INTEGER,
                    finished_at INTEGER
                );
                CREATE INDEX experiment_organization ON experiment(organization, seq);
                CREATE TABLE deployment (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    id TEXT NOT NULL UNIQUE,
                    organization TEXT NOT NULL,
                    model_id TEXT NOT NULL,
                    status TEXT NOT NULL,
                    replicas INTEGER NOT NULL,
                    instance_type TEXT NOT NULL,
                    auto_scaling TEXT NOT NULL,
                    endpoint_url TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    deleted_at INTEGER
                );
                """)
        }
        migrator.registerMigration("v2") { db in
            try db.execute(sql: """
                ALTER TABLE model ADD COLUMN input_schema TEXT;
                ALTER TABLE model ADD COLUMN source_search_id TEXT;
                ALTER TABLE deployment ADD COLUMN failure_reason TEXT;
                CREATE INDEX deployment_model ON deployment(model_id, seq);
                """)
        }
        migrator.registerMigration("v3") { db in
            try db.execute(sql: "ALTER TABLE api_key ADD COLUMN last_used_at INTEGER")
        }
        migrator.registerMigration("v4") { db in
            try db.execute(sql: """
                ALTER TABLE experiment ADD COLUMN restarts INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE experiment ADD COLUMN restart_reason TEXT;
                """)
        }
        migrator.registerMigration("v5") { db in
            // What a registered dataset is labelled with (classes, masks, boxes) and its inputs' task.
            try db.execute(sql: """
                ALTER TABLE dataset ADD COLUMN labels TEXT;
                ALTER TABLE dataset ADD COLUMN input_task TEXT;
                """)
        }
        migrator.registerMigration("v6") { db in
            // The Slurm jobs an experiment submitted (`naslab serve --executor slurm`), a JSON list.
            try db.execute(sql: "ALTER TABLE experiment ADD COLUMN slurm_job_ids TEXT")
        }
        return migrator
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970) }
}

/// Failures of the store itself (not of a request).
public enum APIStoreError: Error, Equatable, CustomStringConvertible {
    case cannotCreateDirectory(path: String, reason: String)
    case cannotOpenDatabase(path: String, reason: String)
    case invalidOrganization(String)

    public var description: String {
        switch self {
        case .cannotCreateDirectory(let path, let reason): "cannot create data directory \(path): \(reason)"
        case .cannotOpenDatabase(let path, let reason): "cannot open database \(path): \(reason)"
        case .invalidOrganization(let name):
            "invalid organisation name '\(name)': use 1–64 letters, digits, '-', '_' or '.'"
        }
    }
}

/// Random identifiers and secrets. These are not experiment randomness (which always takes a
/// `SeededGenerator`): they must be unguessable, so they come from the system's secure generator.
enum Identifier {
    /// `prefix` followed by `hexDigits` random lowercase hexadecimal digits.
    static func make(_ prefix: String, hexDigits: Int = 24) -> String {
        var generator = SystemRandomNumberGenerator()
        let digits = "0123456789abcdef".map { $0 }
        return prefix + String((0..<hexDigits).map { _ in digits[Int(generator.next() % 16)] })
    }
}
