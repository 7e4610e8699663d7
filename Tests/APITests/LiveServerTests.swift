import API
import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest

/// The application built by `makeApplication` served over a real socket (as `naslab serve` does).
final class LiveServerTests: XCTestCase {
    func testServesOverHTTPWithLimits() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("naslab-live-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = try createAPIKey(organization: "acme", dataDirectory: directory)
        let app = try makeApplication(settings: ServerSettings(host: "127.0.0.1", port: 0, dataDirectory: directory,
                                                               maxJSONBodyBytes: 1024, maxUploadBytes: 2048))
        try await app.test(.live) { client in
            var headers = HTTPFields()
            try await client.execute(uri: "/v1/experiments", method: .get, headers: headers) { response in
                XCTAssertEqual(response.status, .unauthorized)
                XCTAssertTrue(String(buffer: response.body).contains("authentication_error"))
            }
            headers[.authorization] = "Bearer \(key.secret)"
            try await client.execute(uri: "/v1/experiments", method: .get, headers: headers) { response in
                XCTAssertEqual(response.status, .ok)
                XCTAssertEqual(response.headers[.contentType], "application/json; charset=utf-8")
                XCTAssertEqual(String(buffer: response.body), #"{"data":[],"first_id":null,"has_more":false,"last_id":null,"object":"list"}"#)
            }
            var json = headers
            json[.contentType] = "application/json"
            let big = ByteBuffer(string: #"{"architecture": "\#(String(repeating: "x", count: 2000))", "space": "s"}"#)
            try await client.execute(uri: "/v1/models", method: .post, headers: json, body: big) { response in
                XCTAssertEqual(response.status, .contentTooLarge)
                XCTAssertTrue(String(buffer: response.body).contains("request_too_large"))
            }
            var upload = headers
            upload[.contentType] = "application/octet-stream"
            let csv = ByteBuffer(string: "a,b\n1,2\n")
            try await client.execute(uri: "/v1/datasets?filename=small.csv", method: .post, headers: upload, body: csv) { response in
                XCTAssertEqual(response.status, .ok, String(buffer: response.body))
            }
            let large = ByteBuffer(string: String(repeating: "1,2\n", count: 1000))
            try await client.execute(uri: "/v1/datasets?filename=large.csv", method: .post, headers: upload, body: large) { response in
                XCTAssertEqual(response.status, .contentTooLarge)
            }
        }
    }
}
