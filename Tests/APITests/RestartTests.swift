import API
import Hummingbird
import Foundation
import HummingbirdTesting
import XCTest

final class RestartTests: XCTestCase {
    func testRestartMarksInterruptedExperimentsFailed() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("naslab-restart-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        // A first server life: one job running, one pending, one completed.
        let key: String
        do {
            let store = try APIStore(dataDirectory: directory)
            key = try store.createAPIKey(organization: "acme").secret
            for (id, status) in [("job_train_run", ExperimentRecord.Status.running), ("job_train_wait", .pending),
                                 ("job_train_done", .completed)] {
                try await store.insertExperiment(ExperimentRecord(
                    id: id, organization: "acme", kind: .training, name: id, status: status, modelID: nil, datasetID: "digits",
                    parameters: .object([:]), metrics: .object([:]), failureReason: nil, createdAt: 1, startedAt: nil,
                    finishedAt: nil))
            }
            // Opening the store again (as `naslab keys create` does) must not touch running jobs.
            _ = try createAPIKey(organization: "acme", dataDirectory: directory)
            let stillRunning = try await APIStore(dataDirectory: directory).experiment(id: "job_train_run", organization: "acme")
            XCTAssertEqual(stillRunning?.status, .running)
        }
        // The second life starts through the same entry point as `naslab serve`.
        let app = try makeApplication(settings: ServerSettings(port: 0, dataDirectory: directory))
        var isDirectory: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory.appendingPathComponent("imports").path, isDirectory: &isDirectory))
        XCTAssertTrue(isDirectory.boolValue)
        try await app.test(.router) { client in
            var headers = HTTPFields()
            headers[.authorization] = "Bearer \(key)"
            for id in ["job_train_run", "job_train_wait"] {
                try await client.execute(uri: "/v1/jobs/\(id)", method: .get, headers: headers) { response in
                    let job = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])
                    XCTAssertEqual(job["status"] as? String, "failed")
                    XCTAssertEqual(job["failure_reason"] as? String, "server restarted")
                    XCTAssertNotNil(job["finished_at"] as? Int)
                }
            }
            try await client.execute(uri: "/v1/experiments?status=failed", method: .get, headers: headers) { response in
                let list = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])
                XCTAssertEqual((list["data"] as? [[String: Any]])?.count, 2)
            }
            try await client.execute(uri: "/v1/jobs/job_train_done", method: .get, headers: headers) { response in
                let job = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])
                XCTAssertEqual(job["status"] as? String, "completed")
                XCTAssertTrue(job["failure_reason"] is NSNull)
            }
        }
    }
}
