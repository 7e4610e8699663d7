import API
import Foundation
import Hummingbird
import Lab
import XCTest

/// Training, deployment and prediction through the real `LabWorkbench` (in-process router).
final class WorkbenchRoutesTests: XCTestCase {
    static let architecture = "stem.width=8 stage1.depth=1 stage1.width=16 stage1.block0.op=conv stage1.block0.kernel=3 "
        + "stage2.depth=1 stage2.width=32 stage2.block0.op=conv stage2.block0.kernel=3"

    /// Polls `path` until `field` is one of `values` (at most `seconds`).
    static func poll(_ api: APIClient, _ path: String, field: String = "status", until values: Set<String>,
                     seconds: Double = 60) async throws -> APIResponse {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let response = try await api.send(.get, path)
            if let value = response[field] as? String, values.contains(value) { return response }
            if Date() > deadline {
                XCTFail("\(path): \(field) never reached \(values): \(response.text)")
                return response
            }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
    }

    /// A 1×8×8 image with values 0…16 (the digits' scale), deterministic in `seed`.
    static func image(_ seed: Int) -> [Double] {
        (0..<64).map { Double(($0 * 7 + seed * 13) % 17) }
    }

    func testTrainDeployPredictAndErrors() async throws {
        let harness = try APITestHarness(workbench: LabWorkbench(threads: 1))
        defer { harness.removeFiles() }
        try await harness.test { api in
            // Architectures are checked against their (shipped) space.
            let created = try await api.send(.post, "/v1/models", json: #"{"architecture": "\#(Self.architecture)", "space": "small"}"#)
            XCTAssertEqual(created.status, .ok, created.text)
            XCTAssertEqual(created["architecture_checked"] as? Bool, true)
            XCTAssertTrue(created["input_schema"] is NSNull)
            let model = try XCTUnwrap(created["id"] as? String)
            assertError(try await api.send(.post, "/v1/models", json: #"{"architecture": "stem.width=12", "space": "small"}"#),
                        .badRequest, type: "invalid_request_error", param: "architecture")
            assertError(try await api.send(.post, "/v1/models", json: #"{"architecture": "x", "space": "/etc/passwd"}"#),
                        .badRequest, type: "invalid_request_error", param: "architecture")

            // Not trained: no deployment; not deployed: no prediction.
            assertError(try await api.send(.post, "/v1/models/\(model)/deploy", json: "{}"), .conflict, type: "conflict_error")
            assertError(try await api.send(.post, "/v1/models/\(model)/predict", json: #"{"inputs": {"images": [[1]]}}"#),
                        .conflict, type: "conflict_error")

            let job = try await api.send(.post, "/v1/models/\(model)/train",
                                         json: #"{"dataset_id": "digits", "hyperparameters": {"epochs": 2, "batch_size": 32}, "seed": 3}"#)
            XCTAssertEqual(job.status, .ok, job.text)
            let jobID = try XCTUnwrap(job["id"] as? String)
            XCTAssertTrue(["pending", "running"].contains(job["status"] as? String ?? ""), job.text)
            let done = try await Self.poll(api, "/v1/jobs/\(jobID)", until: ["completed", "failed"])
            XCTAssertEqual(done["status"] as? String, "completed", done.text)
            let metrics = try XCTUnwrap(done["metrics"] as? [String: Any])
            XCTAssertEqual(metrics["epochs_completed"] as? Int, 2)
            let accuracy = try XCTUnwrap(metrics["validation_accuracy"] as? Double)
            XCTAssertGreaterThan(accuracy, 0.2, "2 epochs on digits should beat chance (0.1)")
            XCTAssertLessThanOrEqual(accuracy, 1)
            XCTAssertNotNil(metrics["test_accuracy"] as? Double)

            let trained = try await api.send(.get, "/v1/models/\(model)")
            XCTAssertEqual(trained["status"] as? String, "trained")
            let schema = try XCTUnwrap(trained["input_schema"] as? [String: Any], trained.text)
            XCTAssertEqual(schema["shape"] as? [Int], [1, 8, 8])
            XCTAssertEqual(schema["values_per_input"] as? Int, 64)
            XCTAssertEqual(schema["class_count"] as? Int, 10)
            XCTAssertEqual(schema["input_key"] as? String, "images")
            let weights = harness.dataDirectory.appendingPathComponent("models/\(model)/\(jobID).h5").path
            XCTAssertTrue(FileManager.default.fileExists(atPath: weights))

            // Deployment validation.
            assertError(try await api.send(.post, "/v1/models/\(model)/deploy", json: #"{"instance_type": "gpu-small"}"#),
                        .badRequest, type: "invalid_request_error", param: "instance_type")
            assertError(try await api.send(.post, "/v1/models/\(model)/deploy", json: #"{"instance_type": "tpu"}"#),
                        .badRequest, type: "invalid_request_error", param: "instance_type")
            assertError(try await api.send(.post, "/v1/models/\(model)/deploy", json: #"{"replicas": 0}"#),
                        .badRequest, type: "invalid_request_error", param: "replicas")
            assertError(try await api.send(.post, "/v1/models/\(model)/deploy",
                                           json: #"{"auto_scaling": {"min_replicas": 3, "max_replicas": 2}}"#),
                        .badRequest, type: "invalid_request_error", param: "auto_scaling.min_replicas")
            assertError(try await api.send(.post, "/v1/models/\(model)/deploy", as: .globex, json: "{}"),
                        .notFound, type: "not_found_error")

            let deployed = try await api.send(.post, "/v1/models/\(model)/deploy",
                                              json: #"{"replicas": 2, "auto_scaling": {"min_replicas": 1, "max_replicas": 3}}"#)
            XCTAssertEqual(deployed.status, .ok, deployed.text)
            let deployment = try XCTUnwrap(deployed["id"] as? String)
            XCTAssertEqual(deployed["object"] as? String, "deployment")
            XCTAssertTrue(["provisioning", "running"].contains(deployed["status"] as? String ?? ""))
            XCTAssertEqual(deployed["endpoint_url"] as? String, "http://127.0.0.1:8080/v1/deployments/\(deployment)/predict")
            let running = try await Self.poll(api, "/v1/deployments/\(deployment)", until: ["running", "failed"])
            XCTAssertEqual(running["status"] as? String, "running", running.text)
            XCTAssertEqual(running["loaded_replicas"] as? Int, 2)
            XCTAssertEqual((running["auto_scaling"] as? [String: Any])?["max_replicas"] as? Int, 3)

            // Predictions equal a second, independent predictor loaded from the saved file.
            let images = [Self.image(1), Self.image(2)]
            let body = try String(decoding: JSONSerialization.data(withJSONObject: ["inputs": ["images": images],
                                                                                   "parameters": ["top_k": 3]]), as: UTF8.self)
            let prediction = try await api.send(.post, "/v1/models/\(model)/predict", json: body)
            XCTAssertEqual(prediction.status, .ok, prediction.text)
            XCTAssertTrue((prediction["id"] as? String ?? "").hasPrefix("pred_"))
            XCTAssertEqual(prediction["object"] as? String, "prediction")
            XCTAssertEqual(prediction["model_id"] as? String, model)
            let items = try XCTUnwrap(prediction["predictions"] as? [[String: Any]])
            XCTAssertEqual(items.count, 6)
            let usage = try XCTUnwrap(prediction["usage"] as? [String: Any])
            XCTAssertEqual(usage["input_tokens"] as? Int, 128)
            XCTAssertNotNil(usage["latency_ms"] as? Double)
            let reference = try ModelPredictor(model: TrainedModel.load(from: weights))
                .predict(images.map { $0.map(Float.init) }, topK: 3)
            for (index, item) in items.enumerated() {
                let expected = reference[index / 3][index % 3]
                XCTAssertEqual(item["input_index"] as? Int, index / 3)
                XCTAssertEqual(item["label"] as? String, expected.label)
                XCTAssertEqual(item["class_index"] as? Int, expected.classIndex)
                XCTAssertEqual(try XCTUnwrap(item["score"] as? Double), expected.score, accuracy: 1e-9)
            }
            // The deployment's endpoint gives the same answer; temperature flattens the scores.
            let viaEndpoint = try await api.send(.post, "/v1/deployments/\(deployment)/predict", json: body)
            XCTAssertEqual((viaEndpoint["predictions"] as? [[String: Any]])?.compactMap { $0["score"] as? Double },
                           items.compactMap { $0["score"] as? Double })
            let hot = try await api.send(.post, "/v1/deployments/\(deployment)/predict", json: """
                {"inputs": {"features": \(Self.image(1))}, "parameters": {"top_k": 10, "temperature": 50}}
                """)
            let hotScores = (hot["predictions"] as? [[String: Any]])?.compactMap { $0["score"] as? Double } ?? []
            XCTAssertEqual(hotScores.count, 10, hot.text)
            XCTAssertEqual(hotScores.reduce(0, +), 1, accuracy: 1e-6)
            XCTAssertLessThan(hotScores.first ?? 1, items.first?["score"] as? Double ?? 0)
            XCTAssertEqual(hotScores, hotScores.sorted(by: >))

            // Bad inputs are 400s naming 'inputs' (or the parameter), never 500s.
            let path = "/v1/models/\(model)/predict"
            func expect(_ json: String, _ param: String?, file: StaticString = #filePath, line: UInt = #line) async throws {
                assertError(try await api.send(.post, path, json: json), .badRequest, type: "invalid_request_error",
                            param: param, file: file, line: line)
            }
            try await expect(#"{}"#, "inputs")
            try await expect(#"{"inputs": [[1, 2]]}"#, "inputs")
            try await expect(#"{"inputs": {"images": [[1, 2, 3]]}}"#, "inputs")
            try await expect(#"{"inputs": {"images": []}}"#, "inputs")
            try await expect(#"{"inputs": {"images": "cat"}}"#, "inputs")
            try await expect(#"{"inputs": {"images": [["a"]]}}"#, "inputs")
            try await expect(#"{"inputs": {"pixels": [[1]]}}"#, "inputs")
            try await expect(#"{"inputs": {"images": [[1]], "features": [[1]]}}"#, "inputs")
            try await expect(#"{"inputs": {"images": [\#(Self.image(1).map { _ in "1e39" }.joined(separator: ","))]}}"#, "inputs")
            try await expect(#"{"inputs": {"images": [\#(Self.image(1))]}, "parameters": {"top_k": 0}}"#, "parameters.top_k")
            try await expect(#"{"inputs": {"images": [\#(Self.image(1))]}, "parameters": {"temperature": 0}}"#, "parameters.temperature")
            try await expect(#"{"inputs": {"images": [\#(Self.image(1))]}, "parameters": {"beam": 2}}"#, "parameters.beam")
            try await expect(#"{"inputs": {"images": [NaN]}}"#, nil)

            assertError(try await api.send(.get, "/v1/deployments/\(deployment)", as: .globex), .notFound, type: "not_found_error")
            let listed = try await api.send(.get, "/v1/deployments?limit=1")
            XCTAssertEqual(listed.data.first?["id"] as? String, deployment)
            let deleted = try await api.send(.delete, "/v1/deployments/\(deployment)")
            XCTAssertEqual(deleted["status"] as? String, "deleted", deleted.text)
            assertError(try await api.send(.delete, "/v1/deployments/\(deployment)"), .conflict, type: "conflict_error")
            assertError(try await api.send(.post, path, json: body), .conflict, type: "conflict_error")
            assertError(try await api.send(.post, "/v1/deployments/\(deployment)/predict", json: body), .conflict, type: "conflict_error")
        }
    }

    func testJobsQueueOneAtATimeAndPendingJobsCancel() async throws {
        let harness = try APITestHarness(workbench: LabWorkbench(threads: 1))
        defer { harness.removeFiles() }
        try await harness.test { api in
            let search = try await api.send(.post, "/v1/nas/searches", json: """
                {"task_type": "classification", "dataset_id": "digits", "constraints": {"max_params": 20000},
                 "search_space": "small", "budget": {"candidates": 2, "epochs_per_candidate": 1}, "seed": 5}
                """)
            XCTAssertEqual(search.status, .ok, search.text)
            XCTAssertEqual(search["status"] as? String, "running")
            XCTAssertEqual(search["architectures_evaluated"] as? Int, 0)
            XCTAssertTrue(search["best_architecture"] is NSNull)
            XCTAssertGreaterThan(search["estimated_duration_hours"] as? Double ?? 0, 0)
            let searchID = try XCTUnwrap(search["id"] as? String)
            assertError(try await api.send(.post, "/v1/models", json: #"{"from_search": "\#(searchID)"}"#),
                        .conflict, type: "conflict_error", param: "from_search")

            // While the search holds the only slot, a training job waits as pending and can be cancelled.
            let model = try await api.send(.post, "/v1/models", json: #"{"architecture": "\#(Self.architecture)", "space": "small"}"#)
            let modelID = try XCTUnwrap(model["id"] as? String)
            let job = try await api.send(.post, "/v1/models/\(modelID)/train", json: #"{"dataset_id": "digits"}"#)
            XCTAssertEqual(job["status"] as? String, "pending", job.text)
            let jobID = try XCTUnwrap(job["id"] as? String)
            assertError(try await api.send(.post, "/v1/models/\(modelID)/train", json: #"{"dataset_id": "digits"}"#),
                        .conflict, type: "conflict_error")
            let cancelled = try await api.send(.post, "/v1/jobs/\(jobID)/cancel")
            XCTAssertEqual(cancelled["status"] as? String, "cancelled", cancelled.text)

            let done = try await Self.poll(api, "/v1/nas/searches/\(searchID)", until: ["completed", "failed"], seconds: 80)
            XCTAssertEqual(done["status"] as? String, "completed", done.text)
            XCTAssertEqual(done["architectures_evaluated"] as? Int, 2)
            let best = try XCTUnwrap(done["best_architecture"] as? String, done.text)
            XCTAssertGreaterThan(done["best_validation_accuracy"] as? Double ?? 0, 0)
            XCTAssertLessThanOrEqual(done["best_params"] as? Double ?? .infinity, 20000)
            let recordPath = try XCTUnwrap(done["record_path"] as? String)
            XCTAssertTrue(FileManager.default.fileExists(atPath: recordPath), recordPath)

            let fromSearch = try await api.send(.post, "/v1/models", json: #"{"from_search": "\#(searchID)", "name": "best"}"#)
            XCTAssertEqual(fromSearch.status, .ok, fromSearch.text)
            XCTAssertEqual(fromSearch["architecture"] as? String, best)
            XCTAssertEqual(fromSearch["space"] as? String, "small")
            XCTAssertEqual(fromSearch["from_search"] as? String, searchID)
            assertError(try await api.send(.post, "/v1/models", json: #"{"from_search": "\#(searchID)", "space": "small"}"#),
                        .badRequest, type: "invalid_request_error", param: "space")
            assertError(try await api.send(.post, "/v1/models", json: #"{"from_search": "nas_missing"}"#),
                        .notFound, type: "not_found_error", param: "from_search")
            // The cancelled job never ran.
            let after = try await api.send(.get, "/v1/jobs/\(jobID)")
            XCTAssertEqual(after["status"] as? String, "cancelled")
            XCTAssertTrue(after["started_at"] is NSNull, after.text)
            let untouched = try await api.send(.get, "/v1/models/\(modelID)")
            XCTAssertEqual(untouched["status"] as? String, "created")
        }
    }

    func testCancelledSearchStopsAtACandidateBoundaryAndFreesTheSlot() async throws {
        let harness = try APITestHarness(workbench: LabWorkbench(threads: 1))
        defer { harness.removeFiles() }
        try await harness.test { api in
            let search = try await api.send(.post, "/v1/nas/searches", json: """
                {"task_type": "classification", "dataset_id": "digits", "constraints": {"max_params": 50000},
                 "search_space": "small", "budget": {"candidates": 200, "epochs_per_candidate": 1}}
                """)
            let searchID = try XCTUnwrap(search["id"] as? String, search.text)
            let deadline = Date().addingTimeInterval(60)
            while (try await api.send(.get, "/v1/nas/searches/\(searchID)"))["architectures_evaluated"] as? Int ?? 0 < 1,
                  Date() < deadline {
                try await Task.sleep(nanoseconds: 50_000_000)
            }
            let cancelled = try await api.send(.post, "/v1/nas/searches/\(searchID)/cancel")
            XCTAssertEqual(cancelled["status"] as? String, "cancelled", cancelled.text)
            let evaluated = cancelled["architectures_evaluated"] as? Int ?? 0
            XCTAssertLessThan(evaluated, 200)

            // The next job gets the slot once the current candidate is done, long before 200 candidates.
            let model = try await api.send(.post, "/v1/models", json: #"{"architecture": "\#(Self.architecture)", "space": "small"}"#)
            let modelID = try XCTUnwrap(model["id"] as? String)
            let job = try await api.send(.post, "/v1/models/\(modelID)/train", json: #"{"dataset_id": "digits", "hyperparameters": {"epochs": 1}}"#)
            let jobID = try XCTUnwrap(job["id"] as? String)
            let done = try await Self.poll(api, "/v1/jobs/\(jobID)", until: ["completed", "failed"], seconds: 30)
            XCTAssertEqual(done["status"] as? String, "completed", done.text)
            let final = try await api.send(.get, "/v1/nas/searches/\(searchID)")
            XCTAssertEqual(final["status"] as? String, "cancelled")
            XCTAssertLessThanOrEqual(final["architectures_evaluated"] as? Int ?? 0, evaluated + 1)
        }
    }
}
