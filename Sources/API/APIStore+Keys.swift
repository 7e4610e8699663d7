import Foundation
import GRDB

/// A freshly created API key. The secret is shown once; the store keeps only its SHA-256.
public struct CreatedAPIKey: Equatable, Sendable {
    /// The key's public identifier (`key_…`), safe to log.
    public var id: String
    public var organization: String
    /// The secret to send as `Authorization: Bearer <secret>`.
    public var secret: String
}

/// What the store knows about a key — never its secret or the secret's hash.
public struct APIKeyInfo: Codable, Equatable, Sendable {
    /// The public identifier (`key_…`).
    public var id: String
    public var organization: String
    /// Unix seconds.
    public var createdAt: Int64
    /// Unix seconds of the last authenticated request, to ``APIStore/lastUsedResolution`` seconds; `nil`: never used.
    public var lastUsedAt: Int64?
    /// Unix seconds of the revocation; `nil`: active.
    public var revokedAt: Int64?

    enum CodingKeys: String, CodingKey {
        case id, organization, createdAt = "created_at", lastUsedAt = "last_used_at", revokedAt = "revoked_at"
    }
}

extension APIStore {
    /// How stale a key's `last_used_at` may get before a request writes it again (seconds): a key
    /// in use costs one database write per minute, not one per request.
    public static let lastUsedResolution: Int64 = 60

    /// Creates a key for `organization` (created implicitly on its first key).
    ///
    /// - Parameter organization: 1–64 letters, digits, `-`, `_` or `.`.
    /// - Returns: The key; its secret (`nsk_` + 48 hexadecimal digits, 192 random bits) is not stored.
    /// - Throws: ``APIStoreError/invalidOrganization(_:)`` for a bad name.
    public func createAPIKey(organization: String) throws -> CreatedAPIKey {
        guard Self.isValidOrganization(organization) else { throw APIStoreError.invalidOrganization(organization) }
        let secret = Identifier.make("nsk_", hexDigits: 48)
        let key = CreatedAPIKey(id: Identifier.make("key_", hexDigits: 16), organization: organization, secret: secret)
        try database.write { db in
            try db.execute(sql: "INSERT INTO api_key (id, organization, key_hash, created_at) VALUES (?, ?, ?, ?)",
                           arguments: [key.id, organization, SHA256.hexDigest(of: Array(secret.utf8)), Self.now()])
        }
        return key
    }

    /// The organisation owning `secret`, or `nil` for an unknown or revoked key. Records the use
    /// (`last_used_at`, at most one write per key per ``lastUsedResolution`` seconds). The database
    /// is read on every call, so a key revoked by another process (`naslab keys revoke`) stops
    /// working with the next request.
    public func organization(forAPIKey secret: String) async throws -> String? {
        let hash = SHA256.hexDigest(of: Array(secret.utf8))
        let row = try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT id, organization, last_used_at FROM api_key WHERE key_hash = ? AND revoked_at IS NULL",
                             arguments: [hash])
        }
        guard let row else { return nil }
        let now = Self.now()
        let lastUsed: Int64? = row["last_used_at"]
        if lastUsed.map({ now - $0 >= Self.lastUsedResolution }) ?? true {
            let id: String = row["id"]
            try await database.write { db in
                try db.execute(sql: "UPDATE api_key SET last_used_at = ? WHERE id = ?", arguments: [now, id])
            }
        }
        return row["organization"]
    }

    /// Every key, oldest first (ties by id), active and revoked, without secrets.
    public func listAPIKeys() throws -> [APIKeyInfo] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT id, organization, created_at, last_used_at, revoked_at FROM api_key ORDER BY created_at, id")
                .map { APIKeyInfo(id: $0["id"], organization: $0["organization"], createdAt: $0["created_at"],
                                  lastUsedAt: $0["last_used_at"], revokedAt: $0["revoked_at"]) }
        }
    }

    /// Revokes the key with public id `id`; returns whether a key was revoked.
    @discardableResult
    public func revokeAPIKey(id: String) throws -> Bool {
        try database.write { db in
            try db.execute(sql: "UPDATE api_key SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                           arguments: [Self.now(), id])
            return db.changesCount > 0
        }
    }

    static func isValidOrganization(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64
            && name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-_.".unicodeScalars.contains($0) }
    }
}

/// Creates an API key for `organization` in the store of `dataDirectory` — the body of
/// `naslab keys create --org NAME [--data-dir DIR]`.
///
/// ```swift
/// let key = try createAPIKey(organization: "acme", dataDirectory: URL(fileURLWithPath: "data"))
/// print(key.secret)
/// ```
/// - Throws: ``APIStoreError`` for a bad name or an unusable data directory.
public func createAPIKey(organization: String, dataDirectory: URL) throws -> CreatedAPIKey {
    try APIStore(dataDirectory: dataDirectory).createAPIKey(organization: organization)
}
