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

extension APIStore {
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

    /// The organisation owning `secret`, or `nil` for an unknown or revoked key.
    public func organization(forAPIKey secret: String) async throws -> String? {
        let hash = SHA256.hexDigest(of: Array(secret.utf8))
        return try await database.read { db in
            try String.fetchOne(db, sql: "SELECT organization FROM api_key WHERE key_hash = ? AND revoked_at IS NULL",
                                arguments: [hash])
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
