import Foundation
import XCTest

/// `naslab keys list` / `naslab keys revoke` as separate processes against a running `naslab serve`.
final class KeyManagementTests: XCTestCase {
    struct Listed: Decodable {
        var id: String
        var organization: String
        var created_at: Int64
        var last_used_at: Int64?
        var revoked_at: Int64?
    }

    static func keys(_ executable: URL, _ directory: URL) throws -> (list: [Listed], text: String) {
        let json = try EndToEndTests.run(executable, ["keys", "list", "--data-dir", directory.path, "--json"])
        let table = try EndToEndTests.run(executable, ["keys", "list", "--data-dir", directory.path])
        return (try JSONDecoder().decode([Listed].self, from: Data(json.utf8)), json + "\n" + table)
    }

    /// Runs naslab and returns its exit status and standard error.
    static func status(_ executable: URL, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let error = Pipe()
        process.standardError = error
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let data = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testListShowsUseNeverSecretsAndRevokeTakesEffectOnTheRunningServer() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("naslab-keys-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try EndToEndTests.startServer(dataDirectory: directory)
        defer {
            server.process.terminate()
            server.process.waitUntilExit()
        }
        let executable = try EndToEndTests.naslabExecutable()
        let other = try EndToEndTests.run(executable, ["keys", "create", "--org", "other", "--data-dir", directory.path])

        var (listed, text) = try Self.keys(executable, directory)
        XCTAssertEqual(listed.map(\.organization).sorted(), ["e2e", "other"])
        XCTAssertTrue(listed.allSatisfy { $0.id.hasPrefix("key_") && $0.last_used_at == nil && $0.revoked_at == nil })
        XCTAssertFalse(text.contains(server.key) || text.contains(other) || text.contains("nsk_"), text)
        XCTAssertTrue(text.contains("never") && text.contains("active"), text)

        let before = try await EndToEndTests.request(server, "GET", "/v1/experiments")
        XCTAssertEqual(before.status, 200, before.text)
        (listed, _) = try Self.keys(executable, directory)
        let used = try XCTUnwrap(listed.first { $0.organization == "e2e" })
        let now = Int64(Date().timeIntervalSince1970)
        XCTAssertEqual(Double(try XCTUnwrap(used.last_used_at)), Double(now), accuracy: 30)
        XCTAssertNil(listed.first { $0.organization == "other" }?.last_used_at)

        // Revoked by another process: the running server refuses the key with the next request.
        XCTAssertEqual(try EndToEndTests.run(executable, ["keys", "revoke", used.id, "--data-dir", directory.path]), "revoked \(used.id)")
        let after = try await EndToEndTests.request(server, "GET", "/v1/experiments")
        XCTAssertEqual(after.status, 401, after.text)
        XCTAssertTrue(after.text.contains("authentication_error"), after.text)
        let otherReply = try await EndToEndTests.request(
            EndToEndTests.Server(process: server.process, baseURL: server.baseURL, key: other), "GET", "/v1/experiments")
        XCTAssertEqual(otherReply.status, 200, "other keys keep working")
        (listed, text) = try Self.keys(executable, directory)
        XCTAssertNotNil(listed.first { $0.id == used.id }?.revoked_at)
        XCTAssertTrue(text.contains("revoked"), text)

        // Revoking twice or an unknown id: exit 1 with a clear message.
        let (again, againError) = try Self.status(executable, ["keys", "revoke", used.id, "--data-dir", directory.path])
        XCTAssertEqual(again, 1)
        XCTAssertTrue(againError.contains("already revoked"), againError)
        let (unknown, unknownError) = try Self.status(executable, ["keys", "revoke", "key_nope", "--data-dir", directory.path])
        XCTAssertEqual(unknown, 1)
        XCTAssertTrue(unknownError.contains("no API key 'key_nope'"), unknownError)
    }
}
