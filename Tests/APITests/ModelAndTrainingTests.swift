import API
import Hummingbird
import Foundation
import XCTest

final class ModelAndTrainingTests: XCTestCase {
    static let architecture = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|"

    func createModel(_ api: APIClient, name: String = "cell", as caller: APIClient.Caller = .acme) async throws -> String {
        let response = try await api.send(.post, "/v1/models", as: caller,
                                          json: #"{"name": "\#(name)", "architecture": "\#(Self.architecture)", "space": "nasbench201"}"#)
        XCTAssertEqual(response.status, .ok, response.text)
        return try XCTUnwrap(response["id"] as? String)
    }

    func testModelsAreStoredListedAndIsolated() async throws {
        let harness = try APITestHarness()
        defer { harness.removeFiles() }
        try await harness.test { api in
            let id = try await self.createModel(api)
            XCTAssertTrue(id.hasPrefix("model_"))
            let model = try await api.send(.get, "/v1/models/\(id)")
            XCTAssertEqual(model["architecture"] as? String, Self.architecture)
            XCTAssertEqual(model["space"] as? String, "nasbench201")
            XCTAssertEqual(model["status"] as? String, "created")
            XCTAssertEqual(model["architecture_checked"] as? Bool, false)
            assertError(try await api.send(.get, "/v1/models/\(id)", as: .globex), .notFound, type: "not_found_error")
            assertError(try await api.send(.get, "/v1/models/model_missing"), .notFound, type: "not_found_error")
            let listed7 = try await api.send(.get, "/v1/models", as: .globex); XCTAssertEqual(listed7.data.count, 0)

            var ids = [id]
            for index in 0..<4 { ids.append(try await self.createModel(api, name: "m\(index)")) }
            let first = try await api.send(.get, "/v1/models?limit=3")
            XCTAssertEqual(first.data.compactMap { $0["id"] as? String }, Array(ids.reversed().prefix(3)))
            XCTAssertEqual(first["has_more"] as? Bool, true)
            let second = try await api.send(.get, "/v1/models?limit=3&after=\(ids[2])")
            XCTAssertEqual(second.data.compactMap { $0["id"] as? String }, [ids[1], ids[0]])
            XCTAssertEqual(second["has_more"] as? Bool, false)

            assertError(try await api.send(.post, "/v1/models", json: #"{"space": "s"}"#),
                        .badRequest, type: "invalid_request_error", param: "architecture")
            assertError(try await api.send(.post, "/v1/models", json: #"{"architecture": ["a"], "space": "s"}"#),
                        .badRequest, type: "invalid_request_error", param: "architecture")
            assertError(try await api.send(.post, "/v1/models", json: #"{"architecture": "a", "space": "s", "layers": 3}"#),
                        .badRequest, type: "invalid_request_error", param: "layers")
            assertError(try await api.send(.post, "/v1/models", json: #"["architecture"]"#),
                        .badRequest, type: "invalid_request_error")
            assertError(try await api.send(.post, "/v1/models", json: #"{"architecture": "a",, }"#),
                        .badRequest, type: "invalid_request_error")
            assertError(try await api.send(.post, "/v1/models", json: ""), .badRequest, type: "invalid_request_error")
        }
    }

    func testTrainingRequestIsValidatedAndRecorded() async throws {
        let harness = try APITestHarness()
        defer { harness.removeFiles() }
        try await harness.test { api in
            let model = try await self.createModel(api)
            let job = try await api.send(.post, "/v1/models/\(model)/train", json: """
                {"dataset_id": "digits", "hyperparameters": {"epochs": 3, "batch_size": 32, "learning_rate": 0.01,
                 "optimizer": "adamw"}, "validation_split": 0.2}
                """)
            XCTAssertEqual(job.status, .ok, job.text)
            let id = try XCTUnwrap(job["id"] as? String)
            XCTAssertTrue(id.hasPrefix("job_train_"))
            XCTAssertEqual(job["object"] as? String, "training.job")
            XCTAssertEqual(job["model_id"] as? String, model)
            XCTAssertEqual(job["validation_split"] as? Double, 0.2)
            let hyperparameters = try XCTUnwrap(job["hyperparameters"] as? [String: Any])
            XCTAssertEqual(hyperparameters["epochs"] as? Int, 3)
            XCTAssertEqual(hyperparameters["batch_size"] as? Int, 32)
            XCTAssertEqual(hyperparameters["learning_rate"] as? Double, 0.01)
            XCTAssertEqual(hyperparameters["optimizer"] as? String, "adamw")
            XCTAssertEqual(hyperparameters["schedule"] as? String, "cosine")   // Lab's default filled in
            XCTAssertNotNil(job["created_at"] as? Int)
            // No ML backend in this build: the job is recorded and failed with that reason, never faked.
            XCTAssertEqual(job["status"] as? String, "failed")
            XCTAssertTrue((job["failure_reason"] as? String ?? "").contains("no training backend"))

            let fetched = try await api.send(.get, "/v1/jobs/\(id)")
            XCTAssertEqual(fetched["status"] as? String, "failed")
            XCTAssertEqual((fetched["hyperparameters"] as? [String: Any])?["epochs"] as? Int, 3)
            assertError(try await api.send(.get, "/v1/jobs/\(id)", as: .globex), .notFound, type: "not_found_error")
            assertError(try await api.send(.post, "/v1/jobs/\(id)/cancel"), .conflict, type: "conflict_error")
            assertError(try await api.send(.post, "/v1/jobs/\(id)/cancel", as: .globex), .notFound, type: "not_found_error")
            let defaults = try await api.send(.post, "/v1/models/\(model)/train", json: #"{"dataset_id": "fashion-mnist"}"#)
            XCTAssertEqual(defaults["validation_split"] as? Double, 0.1, defaults.text)
            XCTAssertEqual((defaults["hyperparameters"] as? [String: Any])?["epochs"] as? Int, 10)
            // 1 and 0 are numbers, not booleans; true is a boolean, not a number.
            let edge = try await api.send(.post, "/v1/models/\(model)/train", json: """
                {"dataset_id": "digits", "hyperparameters": {"epochs": 1, "warmup_epochs": 0, "nesterov": false}, "seed": 1}
                """)
            XCTAssertEqual(edge.status, .ok, edge.text)
            XCTAssertEqual((edge["hyperparameters"] as? [String: Any])?["epochs"] as? Int, 1)
            XCTAssertEqual((edge["hyperparameters"] as? [String: Any])?["nesterov"] as? Bool, false)
            XCTAssertEqual(edge["seed"] as? Int, 1)
        }
    }

    func testTrainingErrors() async throws {
        let harness = try APITestHarness(maxJSONBodyBytes: 2048)
        defer { harness.removeFiles() }
        try await harness.test { api in
            let model = try await self.createModel(api)
            let path = "/v1/models/\(model)/train"
            func expect(_ body: String, _ param: String?, file: StaticString = #filePath, line: UInt = #line) async throws {
                assertError(try await api.send(.post, path, json: body), .badRequest, type: "invalid_request_error",
                            param: param, file: file, line: line)
            }
            try await expect(#"{}"#, "dataset_id")
            try await expect(#"{"dataset_id": "digits", "epochs": 3}"#, "epochs")                       // unknown field
            try await expect(#"{"dataset_id": "digits", "hyperparameters": {"epoch": 3}}"#, "hyperparameters.epoch")
            try await expect(#"{"dataset_id": 7}"#, "dataset_id")                                     // wrong types
            try await expect(#"{"dataset_id": "digits", "hyperparameters": {"epochs": "10"}}"#, "hyperparameters.epochs")
            try await expect(#"{"dataset_id": "digits", "hyperparameters": {"epochs": true}}"#, "hyperparameters.epochs")
            try await expect(#"{"dataset_id": "digits", "hyperparameters": {"epochs": 2.5}}"#, "hyperparameters.epochs")
            try await expect(#"{"dataset_id": "digits", "hyperparameters": [1]}"#, "hyperparameters")
            try await expect(#"{"dataset_id": "digits", "validation_split": "0.1"}"#, "validation_split")
            try await expect(#"{"dataset_id": "digits", "hyperparameters": {"nesterov": 1}}"#, "hyperparameters.nesterov")
            try await expect(#"{"dataset_id": "digits", "hyperparameters": {"nesterov": "true"}}"#, "hyperparameters.nesterov")
            try await expect(#"{"dataset_id": "digits", "hyperparameters": {"epochs": null, "optimizer": ""}}"#,
                             "hyperparameters.optimizer")
            try await expect(#"{"dataset_id": "digits", "hyperparameters": {"epochs": 0}}"#, "hyperparameters.epochs") // range
            try await expect(#"{"dataset_id": "digits", "hyperparameters": {"epochs": 1e30}}"#, "hyperparameters.epochs")
            try await expect(#"{"dataset_id": "digits", "hyperparameters": {"learning_rate": 0}}"#, "hyperparameters.learning_rate")
            try await expect(#"{"dataset_id": "digits", "hyperparameters": {"optimizer": "lbfgs"}}"#, "hyperparameters.optimizer")
            try await expect(#"{"dataset_id": "digits", "validation_split": 0.9}"#, "validation_split")
            try await expect(#"{"dataset_id": "digits", "validation_split": 0}"#, "validation_split")
            try await expect(#"{"dataset_id": "digits", "hyperparameters": {"epochs": 2, "warmup_epochs": 5}}"#,
                             "hyperparameters.warmup_epochs")
            try await expect(#"{"dataset_id": "digits""#, nil)                                          // malformed
            assertError(try await api.send(.post, path, json: #"{"dataset_id": "nope"}"#), .notFound, type: "not_found_error",
                        param: "dataset_id")
            assertError(try await api.send(.post, "/v1/models/model_nope/train", json: #"{"dataset_id": "digits"}"#),
                        .notFound, type: "not_found_error")
            assertError(try await api.send(.post, path, as: .globex, json: #"{"dataset_id": "digits"}"#),
                        .notFound, type: "not_found_error")
            let padding = String(repeating: " ", count: 3000)
            assertError(try await api.send(.post, path, json: #"{"dataset_id": "digits"\#(padding)}"#),
                        .contentTooLarge, type: "request_too_large")
            // Nothing above created a job.
            let listed8 = try await api.send(.get, "/v1/experiments"); XCTAssertEqual(listed8.data.count, 0)
        }
    }
}
