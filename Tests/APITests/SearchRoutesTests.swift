import API
import Hummingbird
import Foundation
import XCTest

final class SearchRoutesTests: XCTestCase {
    func testSearchIsValidatedAndRecorded() async throws {
        let harness = try APITestHarness()
        defer { harness.removeFiles() }
        try await harness.test { api in
            let search = try await api.send(.post, "/v1/nas/searches", json: """
                {"task_type": "image_classification", "dataset_id": "fashion-mnist",
                 "constraints": {"max_latency_ms": 5, "max_params": 100000}}
                """)
            XCTAssertEqual(search.status, .ok, search.text)
            let id = try XCTUnwrap(search["id"] as? String)
            XCTAssertTrue(id.hasPrefix("nas_"))
            XCTAssertEqual(search["object"] as? String, "nas.search")
            XCTAssertEqual(search["search_space"] as? String, "medium")
            XCTAssertEqual(search["architectures_evaluated"] as? Int, 0)
            XCTAssertTrue(search["best_architecture"] is NSNull)
            XCTAssertTrue(search["estimated_duration_hours"] is NSNull)   // only a workbench can estimate
            let constraints = try XCTUnwrap(search["constraints"] as? [String: Any])
            XCTAssertEqual(constraints["max_latency_ms"] as? Int, 5)
            XCTAssertEqual(constraints["max_params"] as? Int, 100_000)
            XCTAssertNil(constraints["max_flops"])
            // The CLI's defaults: its default searcher and the predicted-latency policy.
            XCTAssertEqual(search["searcher"] as? String, "regularized_evolution")
            XCTAssertEqual(search["latency_policy"] as? String, "predicted")
            let local = try await api.send(.post, "/v1/nas/searches", json: """
                {"task_type": "classification", "dataset_id": "digits", "searcher": "local_search",
                 "constraints": {"max_params": 100000}}
                """)
            XCTAssertEqual(local["searcher"] as? String, "local_search", local.text)
            XCTAssertEqual(search["status"] as? String, "failed")
            XCTAssertTrue((search["failure_reason"] as? String ?? "").contains("no training backend"))

            let fetched = try await api.send(.get, "/v1/nas/searches/\(id)")
            XCTAssertEqual(fetched["dataset_id"] as? String, "fashion-mnist")
            assertError(try await api.send(.get, "/v1/nas/searches/\(id)", as: .globex), .notFound, type: "not_found_error")
            assertError(try await api.send(.post, "/v1/nas/searches/\(id)/cancel"), .conflict, type: "conflict_error")
            // A search id is not a training job id.
            assertError(try await api.send(.get, "/v1/jobs/\(id)"), .notFound, type: "not_found_error")
        }
    }

    func testSearchErrors() async throws {
        let harness = try APITestHarness()
        defer { harness.removeFiles() }
        try await harness.test { api in
            func expect(_ body: String, _ param: String?, _ message: String? = nil,
                        file: StaticString = #filePath, line: UInt = #line) async throws {
                let response = try await api.send(.post, "/v1/nas/searches", json: body)
                assertError(response, .badRequest, type: "invalid_request_error", param: param, file: file, line: line)
                if let message {
                    XCTAssertTrue(response.errorMessage.contains(message), response.errorMessage, file: file, line: line)
                }
            }
            let constraints = #""constraints": {"max_params": 1000}"#
            // Dense tasks need a dataset with their labels (digits has classes only).
            try await expect(#"{"task_type": "detection", "dataset_id": "digits", \#(constraints)}"#, "task_type",
                             "needs a dataset with boxes")
            try await expect(#"{"task_type": "segmentation", "dataset_id": "digits", \#(constraints)}"#, "task_type",
                             "needs a dataset with masks")
            try await expect(#"{"task_type": "regression", "dataset_id": "digits", \#(constraints)}"#, "task_type", "must be one of")
            try await expect(#"{"dataset_id": "digits", \#(constraints)}"#, "task_type")
            try await expect(#"{"task_type": "classification", \#(constraints)}"#, "dataset_id")
            try await expect(#"{"task_type": "classification", "dataset_id": "digits"}"#, "constraints")
            try await expect(#"{"task_type": "classification", "dataset_id": "digits", "constraints": {}}"#, "constraints")
            try await expect(#"{"task_type": "classification", "dataset_id": "digits", "constraints": 5}"#, "constraints")
            try await expect(#"{"task_type": "classification", "dataset_id": "digits", "constraints": {"max_params": -1}}"#,
                             "constraints.max_params")
            try await expect(#"{"task_type": "classification", "dataset_id": "digits", "constraints": {"max_latency_ms": "5"}}"#,
                             "constraints.max_latency_ms")
            try await expect(#"{"task_type": "classification", "dataset_id": "digits", "constraints": {"max_memory": 5}}"#,
                             "constraints.max_memory")
            try await expect(#"{"task_type": "classification", "dataset_id": "digits", \#(constraints), "search_space": "huge"}"#,
                             "search_space")
            try await expect(#"{"task_type": "classification", "dataset_id": "digits", \#(constraints), "budget": 3}"#, "budget")
            try await expect(#"{"task_type": "classification", "dataset_id": "digits", \#(constraints), "searcher": "bayes"}"#,
                             "searcher", "must be one of")
            assertError(try await api.send(.post, "/v1/nas/searches",
                                           json: #"{"task_type": "classification", "dataset_id": "ds_nope", \#(constraints)}"#),
                        .notFound, type: "not_found_error", param: "dataset_id")
            let listed1 = try await api.send(.get, "/v1/experiments"); XCTAssertEqual(listed1.data.count, 0)
        }
    }
}
