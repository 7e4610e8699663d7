import API
import Hummingbird
import Foundation
import XCTest

final class AuthenticationTests: XCTestCase {
    func testEveryRouteRequiresAValidKey() async throws {
        let harness = try APITestHarness()
        defer { harness.removeFiles() }
        let revoked = try harness.store.createAPIKey(organization: "acme")
        XCTAssertTrue(try harness.store.revokeAPIKey(id: revoked.id))
        try await harness.test { api in
            for (method, uri) in [(HTTPRequest.Method.get, "/v1/experiments"), (.get, "/v1/datasets"), (.post, "/v1/models"),
                                  (.post, "/v1/nas/searches"), (.get, "/v1/no-such-route")] {
                assertError(try await api.send(method, uri, as: .none), .unauthorized, type: "authentication_error")
            }
            let response = try await api.send(.get, "/v1/experiments", as: .none)
            XCTAssertEqual(response.errorParam, nil)
            assertError(try await api.send(.get, "/v1/experiments", as: .raw("Basic abc")), .unauthorized, type: "authentication_error")
            assertError(try await api.send(.get, "/v1/experiments", as: .raw("Bearer")), .unauthorized, type: "authentication_error")
            assertError(try await api.send(.get, "/v1/experiments", as: .raw("Bearer nsk_0000")), .unauthorized,
                        type: "authentication_error")
            assertError(try await api.send(.get, "/v1/experiments", as: .raw("Bearer \(revoked.secret)")), .unauthorized,
                        type: "authentication_error")
            let ok = try await api.send(.get, "/v1/experiments")
            XCTAssertEqual(ok.status, .ok, ok.text)
            XCTAssertEqual(ok["object"] as? String, "list")
            // The one public route: GET /v1/health, without a key; other methods on it still need one.
            let health = try await api.send(.get, "/v1/health", as: .none)
            XCTAssertEqual(health.status, .ok, health.text)
            XCTAssertEqual(health.text, #"{"object":"health","queue":{"pending":0,"running":0},"status":"ok"}"#)
            assertError(try await api.send(.post, "/v1/health", as: .none), .unauthorized, type: "authentication_error")
        }
    }

    func testUnknownRouteWithKeyIsAJSON404() async throws {
        let harness = try APITestHarness()
        defer { harness.removeFiles() }
        try await harness.test { api in
            assertError(try await api.send(.get, "/v1/no-such-route"), .notFound, type: "not_found_error")
        }
    }

    func testKeysAreStoredHashedAndBelongToTheirOrganisation() async throws {
        let harness = try APITestHarness()
        defer { harness.removeFiles() }
        let key = try createAPIKey(organization: "initech", dataDirectory: harness.dataDirectory)
        XCTAssertTrue(key.secret.hasPrefix("nsk_"))
        XCTAssertEqual(key.secret.count, 52)
        let organization = try await harness.store.organization(forAPIKey: key.secret)
        XCTAssertEqual(organization, "initech")
        // The database file holds the SHA-256 of the secret, never the secret.
        let bytes = try Data(contentsOf: harness.dataDirectory.appendingPathComponent(APIStore.databaseFileName))
        let text = String(decoding: bytes, as: UTF8.self)
        XCTAssertFalse(text.contains(key.secret))
        XCTAssertTrue(text.contains(SHA256.hexDigest(of: Array(key.secret.utf8))))
        XCTAssertThrowsError(try harness.store.createAPIKey(organization: "bad name/with slash"))
        XCTAssertThrowsError(try harness.store.createAPIKey(organization: ""))
    }
}
