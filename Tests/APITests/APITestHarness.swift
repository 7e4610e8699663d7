import API
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import XCTest

/// A fresh data directory, store, two organisations' keys and the in-process application.
struct APITestHarness {
    let dataDirectory: URL
    let store: APIStore
    let settings: ServerSettings
    let acmeKey: String
    let globexKey: String

    init(maxJSONBodyBytes: Int = 1 << 20, maxUploadBytes: Int = 1 << 20, workbench: (any ModelWorkbench)? = nil) throws {
        dataDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("naslab-api-tests-\(UUID().uuidString)")
        store = try APIStore(dataDirectory: dataDirectory)
        settings = ServerSettings(dataDirectory: dataDirectory, maxJSONBodyBytes: maxJSONBodyBytes,
                                  maxUploadBytes: maxUploadBytes, workbench: workbench)
        acmeKey = try store.createAPIKey(organization: "acme").secret
        globexKey = try store.createAPIKey(organization: "globex").secret
    }

    var importDirectory: URL { settings.datasetImportRoots[0] }

    func application() -> some ApplicationProtocol {
        Application(router: buildRouter(store: store, settings: settings))
    }

    func removeFiles() { try? FileManager.default.removeItem(at: dataDirectory) }

    /// Runs `body` against the router in-process.
    func test(_ body: @Sendable @escaping (APIClient) async throws -> Void) async throws {
        let acmeKey = acmeKey, globexKey = globexKey
        try await application().test(.router) { client in
            try await body(APIClient(client: client, acmeKey: acmeKey, globexKey: globexKey))
        }
    }
}

/// A decoded response.
struct APIResponse {
    var status: HTTPResponse.Status
    var json: Any?
    var text: String

    var object: [String: Any] { json as? [String: Any] ?? [:] }
    var error: [String: Any] { object["error"] as? [String: Any] ?? [:] }
    var errorType: String? { error["type"] as? String }
    var errorParam: String? { error["param"] as? String }
    var errorMessage: String { error["message"] as? String ?? "" }
    subscript(key: String) -> Any? { object[key] }
    var data: [[String: Any]] { object["data"] as? [[String: Any]] ?? [] }
}

struct APIClient: Sendable {
    let client: any TestClientProtocol
    let acmeKey: String
    let globexKey: String

    enum Caller { case acme, globex, none, raw(String) }

    func send(_ method: HTTPRequest.Method, _ uri: String, as caller: Caller = .acme, json: String? = nil,
              bytes: [UInt8]? = nil, contentType: String? = nil) async throws -> APIResponse {
        var headers = HTTPFields()
        switch caller {
        case .acme: headers[.authorization] = "Bearer \(acmeKey)"
        case .globex: headers[.authorization] = "Bearer \(globexKey)"
        case .none: break
        case .raw(let value): headers[.authorization] = value
        }
        var body: ByteBuffer?
        if let json {
            body = ByteBuffer(string: json)
            headers[.contentType] = contentType ?? "application/json"
        } else if let bytes {
            body = ByteBuffer(bytes: bytes)
            headers[.contentType] = contentType ?? "application/octet-stream"
        }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body) { response in
            let text = String(buffer: response.body)
            let json = try? JSONSerialization.jsonObject(with: Data(text.utf8))
            return APIResponse(status: response.status, json: json, text: text)
        }
    }
}

/// Asserts the one error shape, its status, type and (optionally) param.
func assertError(_ response: APIResponse, _ status: HTTPResponse.Status, type: String, param: String? = nil,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(response.status, status, response.text, file: file, line: line)
    XCTAssertEqual(response.errorType, type, response.text, file: file, line: line)
    XCTAssertFalse(response.errorMessage.isEmpty, "error without message: \(response.text)", file: file, line: line)
    XCTAssertTrue(response.error.keys.contains("param"), "error without param key: \(response.text)", file: file, line: line)
    if let param { XCTAssertEqual(response.errorParam, param, response.text, file: file, line: line) }
}
