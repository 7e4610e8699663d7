import API
import Foundation
import Hummingbird
import Lab
import TestSupport
import XCTest

/// Registered HDF5 files are loaded by the Datasets module and can be trained on.
final class RegisteredDatasetTests: XCTestCase {
    /// Writes a 2-class HDF5 dataset (x: N×1×4×4 float32, y: N) with h5py; skips without it.
    static func writeHDF5(_ path: String) throws {
        let python = try pythonWithH5py()   // h5py brings numpy
        let script = """
            import h5py, numpy as np
            rng = np.random.default_rng(0)
            y = np.arange(120) % 2
            x = rng.normal(size=(120, 1, 4, 4)).astype(np.float32) + y[:, None, None, None] * 2.0
            with h5py.File('\(path)', 'w') as f:
                f['x'] = x
                f['y'] = y.astype(np.int64)
                f.attrs['class_names'] = ['low', 'high']
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", script]
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "h5py could not write the fixture")
    }

    func testHDF5IsLoadedOnRegistrationAndTrainable() async throws {
        let harness = try APITestHarness(workbench: LabWorkbench(threads: 1))
        defer { harness.removeFiles() }
        try FileManager.default.createDirectory(at: harness.importDirectory, withIntermediateDirectories: true)
        let good = harness.importDirectory.appendingPathComponent("blobs.h5")
        try Self.writeHDF5(good.path)
        let fake = harness.importDirectory.appendingPathComponent("empty.h5")
        try Data([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a] + [UInt8](repeating: 0, count: 64)).write(to: fake)
        try await harness.test { api in
            // A file with the HDF5 signature but no readable /x, /y is refused by the loader.
            assertError(try await api.send(.post, "/v1/datasets", json: #"{"path": "\#(fake.path)"}"#),
                        .badRequest, type: "invalid_request_error", param: "path")
            let dataset = try await api.send(.post, "/v1/datasets", json: #"{"path": "\#(good.path)", "name": "blobs"}"#)
            XCTAssertEqual(dataset.status, .ok, dataset.text)
            let datasetID = try XCTUnwrap(dataset["id"] as? String)

            let model = try await api.send(.post, "/v1/models", json: #"{"architecture": "\#(WorkbenchRoutesTests.architecture)", "space": "small"}"#)
            let modelID = try XCTUnwrap(model["id"] as? String)
            let job = try await api.send(.post, "/v1/models/\(modelID)/train",
                                         json: #"{"dataset_id": "\#(datasetID)", "hyperparameters": {"epochs": 3, "batch_size": 16}}"#)
            let jobID = try XCTUnwrap(job["id"] as? String, job.text)
            let done = try await WorkbenchRoutesTests.poll(api, "/v1/jobs/\(jobID)", until: ["completed", "failed"])
            XCTAssertEqual(done["status"] as? String, "completed", done.text)
            let trained = try await api.send(.get, "/v1/models/\(modelID)")
            let schema = try XCTUnwrap(trained["input_schema"] as? [String: Any], trained.text)
            XCTAssertEqual(schema["shape"] as? [Int], [1, 4, 4])
            XCTAssertEqual(schema["classes"] as? [String], ["low", "high"])
        }
    }
}
