import API
import Hummingbird
import Foundation
import XCTest

final class ExperimentsTests: XCTestCase {
    func record(_ id: String, organization: String = "acme", kind: ExperimentRecord.Kind = .training,
                status: ExperimentRecord.Status = .pending) -> ExperimentRecord {
        ExperimentRecord(id: id, organization: organization, kind: kind, name: "experiment \(id)", status: status,
                         modelID: nil, datasetID: "digits", parameters: .object([:]),
                         metrics: .object(["epochs_completed": .number(0)]), failureReason: nil,
                         createdAt: 1_700_000_000, startedAt: nil, finishedAt: nil)
    }

    func testPaginationAndFilters() async throws {
        let harness = try APITestHarness()
        defer { harness.removeFiles() }
        let ids = (0..<7).map { "job_train_\($0)" }
        for (index, id) in ids.enumerated() {
            try await harness.store.insertExperiment(record(id, kind: index == 3 ? .nasSearch : .training,
                                                            status: index.isMultiple(of: 2) ? .completed : .running))
        }
        try await harness.store.insertExperiment(record("job_train_other", organization: "globex"))
        try await harness.test { api in
            // GET /v1/health counts every organisation's jobs: 3 running (acme), 1 pending (globex).
            let health = try await api.send(.get, "/v1/health", as: .none)
            XCTAssertEqual(health.text, #"{"object":"health","queue":{"pending":1,"running":3},"status":"ok"}"#)
            let newestFirst = Array(ids.reversed())
            let first = try await api.send(.get, "/v1/experiments?limit=3")
            XCTAssertEqual(first.status, .ok, first.text)
            XCTAssertEqual(first["object"] as? String, "list")
            XCTAssertEqual(first.data.compactMap { $0["id"] as? String }, Array(newestFirst[0..<3]))
            XCTAssertEqual(first["has_more"] as? Bool, true)
            XCTAssertEqual(first.data.first?["object"] as? String, "experiment")
            XCTAssertEqual(first.data.first?["name"] as? String, "experiment job_train_6")
            XCTAssertEqual((first.data.first?["metrics"] as? [String: Any])?["epochs_completed"] as? Int, 0)
            XCTAssertEqual(first.data.first?["created_at"] as? Int, 1_700_000_000)
            let second = try await api.send(.get, "/v1/experiments?limit=3&after=\(newestFirst[2])")
            XCTAssertEqual(second.data.compactMap { $0["id"] as? String }, Array(newestFirst[3..<6]))
            XCTAssertEqual(second["has_more"] as? Bool, true)
            let last = try await api.send(.get, "/v1/experiments?limit=3&after=\(newestFirst[5])")
            XCTAssertEqual(last.data.compactMap { $0["id"] as? String }, [ids[0]])
            XCTAssertEqual(last["has_more"] as? Bool, false)
            let exact = try await api.send(.get, "/v1/experiments?limit=7")
            XCTAssertEqual(exact.data.count, 7)
            XCTAssertEqual(exact["has_more"] as? Bool, false)
            let all = try await api.send(.get, "/v1/experiments")   // default limit 20
            XCTAssertEqual(all.data.count, 7)
            XCTAssertEqual(all.data.first(where: { $0["id"] as? String == ids[3] })?["type"] as? String, "nas_search")

            let running = try await api.send(.get, "/v1/experiments?status=running")
            XCTAssertEqual(running.data.compactMap { $0["id"] as? String }, [ids[5], ids[3], ids[1]])
            let runningPage = try await api.send(.get, "/v1/experiments?status=running&limit=1&after=\(ids[5])")
            XCTAssertEqual(runningPage.data.compactMap { $0["id"] as? String }, [ids[3]])
            XCTAssertEqual(runningPage["has_more"] as? Bool, true)
            let listed2 = try await api.send(.get, "/v1/experiments?status=failed"); XCTAssertEqual(listed2.data.count, 0)

            let other = try await api.send(.get, "/v1/experiments", as: .globex)
            XCTAssertEqual(other.data.compactMap { $0["id"] as? String }, ["job_train_other"])

            for query in ["limit=0", "limit=101", "limit=abc", "limit=2.5"] {
                assertError(try await api.send(.get, "/v1/experiments?\(query)"), .badRequest, type: "invalid_request_error",
                            param: "limit")
            }
            assertError(try await api.send(.get, "/v1/experiments?status=done"), .badRequest, type: "invalid_request_error",
                        param: "status")
            assertError(try await api.send(.get, "/v1/experiments?sort=asc"), .badRequest, type: "invalid_request_error",
                        param: "sort")
            assertError(try await api.send(.get, "/v1/experiments?after=job_train_nope"), .badRequest,
                        type: "invalid_request_error", param: "after")
            // Another organisation's id is no cursor either.
            assertError(try await api.send(.get, "/v1/experiments?after=job_train_other"), .badRequest,
                        type: "invalid_request_error", param: "after")
            let listed3 = try await api.send(.get, "/v1/experiments?limit=100"); XCTAssertEqual(listed3.data.count, 7)
        }
    }

    func testCancelPendingJobAndSearch() async throws {
        let harness = try APITestHarness()
        defer { harness.removeFiles() }
        try await harness.store.insertExperiment(record("job_train_waiting"))
        try await harness.store.insertExperiment(record("nas_waiting", kind: .nasSearch, status: .running))
        try await harness.test { api in
            assertError(try await api.send(.post, "/v1/jobs/job_train_waiting/cancel", as: .globex), .notFound,
                        type: "not_found_error")
            let job = try await api.send(.post, "/v1/jobs/job_train_waiting/cancel")
            XCTAssertEqual(job.status, .ok, job.text)
            XCTAssertEqual(job["status"] as? String, "cancelled")
            XCTAssertEqual(job["failure_reason"] as? String, "cancelled by request")
            XCTAssertNotNil(job["finished_at"] as? Int)
            assertError(try await api.send(.post, "/v1/jobs/job_train_waiting/cancel"), .conflict, type: "conflict_error")
            let search = try await api.send(.post, "/v1/nas/searches/nas_waiting/cancel")
            XCTAssertEqual(search["status"] as? String, "cancelled", search.text)
            let listed4 = try await api.send(.get, "/v1/experiments?status=cancelled"); XCTAssertEqual(listed4.data.count, 2)
        }
    }

    func testFinalStatesNeverChange() async throws {
        let harness = try APITestHarness()
        defer { harness.removeFiles() }
        try await harness.store.insertExperiment(record("job_train_a"))
        let running = try await harness.store.transitionExperiment(id: "job_train_a", to: .running)
        XCTAssertEqual(running?.status, .running)
        XCTAssertNotNil(running?.startedAt)
        try await harness.store.updateExperimentMetrics(id: "job_train_a", metrics: .object(["epochs_completed": .number(2)]))
        let done = try await harness.store.transitionExperiment(id: "job_train_a", to: .completed)
        XCTAssertEqual(done?.metrics, .object(["epochs_completed": .number(2)]))
        XCTAssertNotNil(done?.finishedAt)
        let afterwards = try await harness.store.transitionExperiment(id: "job_train_a", to: .failed, failureReason: "late")
        XCTAssertNil(afterwards)
        try await harness.store.updateExperimentMetrics(id: "job_train_a", metrics: .object([:]))
        let stored = try await harness.store.experiment(id: "job_train_a", organization: "acme")
        XCTAssertEqual(stored?.status, .completed)
        XCTAssertNil(stored?.failureReason)
        XCTAssertEqual(stored?.metrics, .object(["epochs_completed": .number(2)]))
    }
}
