import API
import Hummingbird
import Foundation
import HummingbirdTesting
import XCTest

final class RestartTests: XCTestCase {
    /// Jobs a stop interrupted whose files or objects are gone are marked failed with the reason;
    /// completed ones are untouched; opening the store (as `naslab keys` does) changes nothing.
    func testInterruptedJobsThatCannotResumeAreFailedWithTheReason() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("naslab-restart-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let key: String
        do {
            let store = try APIStore(dataDirectory: directory)
            key = try store.createAPIKey(organization: "acme").secret
            for (id, status, model) in [("job_train_run", ExperimentRecord.Status.running, "model_gone"),
                                        ("job_train_wait", .pending, "model_gone"), ("job_train_done", .completed, nil)] {
                try await store.insertExperiment(ExperimentRecord(
                    id: id, organization: "acme", kind: .training, name: id, status: status, modelID: model, datasetID: "digits",
                    parameters: .object([:]), metrics: .object([:]), failureReason: nil, createdAt: 1, startedAt: nil,
                    finishedAt: nil))
            }
            _ = try createAPIKey(organization: "acme", dataDirectory: directory)
            let stillRunning = try await APIStore(dataDirectory: directory).experiment(id: "job_train_run", organization: "acme")
            XCTAssertEqual(stillRunning?.status, .running)
        }
        // The second life starts as `naslab serve` does.
        let server = try APIServer(settings: ServerSettings(port: 0, dataDirectory: directory, workbench: LabWorkbench(threads: 1)))
        await server.resumeInterruptedWork()
        var isDirectory: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory.appendingPathComponent("imports").path, isDirectory: &isDirectory))
        XCTAssertTrue(isDirectory.boolValue)
        for id in ["job_train_run", "job_train_wait"] {
            let job = try await server.store.experiment(id: id, organization: "acme")
            XCTAssertEqual(job?.status, .failed)
            XCTAssertEqual(job?.failureReason, "cannot resume after a server restart: its model 'model_gone' no longer exists")
            XCTAssertNotNil(job?.finishedAt)
        }
        let done = try await server.store.experiment(id: "job_train_done", organization: "acme")
        XCTAssertEqual(done?.status, .completed)
        XCTAssertNil(done?.failureReason)
        _ = key
    }

    /// Without a training backend nothing is pretended: interrupted jobs fail with that reason.
    func testWithoutABackendInterruptedJobsFail() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("naslab-restart-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try APIStore(dataDirectory: directory)
        try await store.insertExperiment(ExperimentRecord(
            id: "nas_run", organization: "acme", kind: .nasSearch, name: "s", status: .running, modelID: nil, datasetID: "digits",
            parameters: .object([:]), metrics: .object([:]), failureReason: nil, createdAt: 1, startedAt: 1, finishedAt: nil))
        let server = try APIServer(settings: ServerSettings(port: 0, dataDirectory: directory))
        await server.resumeInterruptedWork()
        let job = try await server.store.experiment(id: "nas_run", organization: "acme")
        XCTAssertEqual(job?.status, .failed)
        XCTAssertTrue(job?.failureReason?.hasPrefix("no training backend configured") ?? false, job?.failureReason ?? "")
    }
}
