import Foundation
import Records
import XCTest
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The server keeps its work: a real `naslab serve` process is killed (SIGKILL) or stopped (SIGTERM)
/// in the middle of a search or a training job and started again on the same data directory.
final class ServerLifecycleTests: XCTestCase {
    typealias E2E = EndToEndTests

    var directory: URL!
    var servers: [Process] = []

    override func setUp() {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("naslab-lifecycle-\(UUID().uuidString)")
    }

    override func tearDown() {
        for process in servers where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    func start(_ arguments: [String] = [], log: String? = nil) throws -> E2E.Server {
        let server = try E2E.startServer(dataDirectory: directory, arguments: arguments,
                                         log: log.map { directory.appendingPathComponent($0) })
        servers.append(server.process)
        return server
    }

    /// Polls `path` until `done` holds for its JSON (or fails after `seconds`).
    func wait(_ server: E2E.Server, _ path: String, seconds: Double = 120,
              until done: (E2E.Reply) -> Bool) async throws -> E2E.Reply {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let reply = try await E2E.request(server, "GET", path)
            if done(reply) { return reply }
            if Date() > deadline {
                XCTFail("\(path): condition not reached in \(seconds) s: \(reply.text)")
                return reply
            }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
    }

    static let budget = 5

    func startSearch(_ server: E2E.Server) async throws -> String {
        let search = try await E2E.request(server, "POST", "/v1/nas/searches", json: [
            "task_type": "image_classification", "dataset_id": "digits", "search_space": "small",
            "constraints": ["max_params": 30000], "budget": ["candidates": Self.budget, "epochs_per_candidate": 1], "seed": 4,
        ])
        XCTAssertEqual(search.status, 200, search.text)
        return try XCTUnwrap(search["id"] as? String)
    }

    /// The search's record holds exactly `budget` trained candidates with contiguous ids, none twice.
    func checkRecord(_ search: E2E.Reply, file: StaticString = #filePath, line: UInt = #line) throws {
        let path = try XCTUnwrap(search["record_path"] as? String)
        let rows = try Records.ExperimentRecord.openReadOnly(path: path).readCandidates()
        let ids = rows.map(\.id)
        XCTAssertEqual(ids, Array(0..<Int64(ids.count)), "record ids contiguous, each once", file: file, line: line)
        XCTAssertEqual(rows.filter { $0.status != .rejected }.count, Self.budget, "exactly the budget trained", file: file, line: line)
    }

    func testSIGKILLMidSearchThenRestartCompletesTheSameSearch() async throws {
        var server = try start()
        let id = try await startSearch(server)
        _ = try await wait(server, "/v1/nas/searches/\(id)") { ($0["architectures_evaluated"] as? Int ?? 0) >= 2 }
        kill(server.process.processIdentifier, SIGKILL)
        server.process.waitUntilExit()

        server = try start()
        let done = try await wait(server, "/v1/nas/searches/\(id)") { ["completed", "failed", "cancelled"].contains($0["status"] as? String) }
        XCTAssertEqual(done["status"] as? String, "completed", done.text)
        XCTAssertEqual(done["architectures_evaluated"] as? Int, Self.budget, done.text)
        XCTAssertEqual(done["restarts"] as? Int, 1, done.text)
        XCTAssertTrue((done["restart_reason"] as? String ?? "").contains("resumed from its record"), done.text)
        try checkRecord(done)
        // Everything the server writes is in its data directory, the latency table included.
        XCTAssertEqual(done["latency_policy"] as? String, "predicted")
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory.appendingPathComponent("latency-table.h5").path))
    }

    func testSIGTERMDrainsWith503ExitsZeroAndTheSearchResumes() async throws {
        var server = try start(["--grace-period", "60", "--log-format", "json"], log: "first.log")
        let id = try await startSearch(server)
        _ = try await wait(server, "/v1/nas/searches/\(id)") { ($0["architectures_evaluated"] as? Int ?? 0) >= 2 }
        kill(server.process.processIdentifier, SIGTERM)
        // While the candidate in training finishes, new jobs are refused with 503 and Retry-After.
        let refused = try await E2E.request(server, "POST", "/v1/nas/searches", json: [
            "task_type": "classification", "dataset_id": "digits", "constraints": ["max_params": 30000],
        ])
        XCTAssertEqual(refused.status, 503, refused.text)
        XCTAssertEqual(refused.headers["retry-after"], "30")
        XCTAssertTrue(refused.text.contains("\"type\":\"service_unavailable\""), refused.text)
        let health = try await E2E.request(server, "GET", "/v1/health")
        XCTAssertEqual(health.status, 200, "reads are still served while draining")
        server.process.waitUntilExit()
        XCTAssertEqual(server.process.terminationStatus, 0, "a drained server exits 0")
        XCTAssertEqual(server.process.terminationReason, .exit)
        // Structured logs: every line one JSON object; one per request (the 503 among them).
        let log = try String(contentsOf: directory.appendingPathComponent("first.log"), encoding: .utf8)
        var entries = [[String: Any]]()
        for line in log.split(separator: "\n") where line.hasPrefix("{") {
            entries.append(try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], String(line)))
        }
        XCTAssertTrue(entries.contains { $0["message"] as? String == "draining" }, log)
        XCTAssertTrue(entries.contains { $0["message"] as? String == "request" && $0["status"] as? Int == 503
            && $0["path"] as? String == "/v1/nas/searches" && $0["duration_ms"] as? NSNumber != nil }, log)
        XCTAssertTrue(entries.contains { $0["message"] as? String == "job state" && $0["job"] as? String == id
            && $0["status"] as? String == "running" }, log)

        server = try start()
        let resumed = try await E2E.request(server, "GET", "/v1/nas/searches/\(id)")
        XCTAssertEqual(resumed["status"] as? String, "running", "still the same running search: \(resumed.text)")
        XCTAssertGreaterThanOrEqual(resumed["architectures_evaluated"] as? Int ?? 0, 2)
        let done = try await wait(server, "/v1/nas/searches/\(id)") { ["completed", "failed", "cancelled"].contains($0["status"] as? String) }
        XCTAssertEqual(done["status"] as? String, "completed", done.text)
        XCTAssertEqual(done["architectures_evaluated"] as? Int, Self.budget, done.text)
        XCTAssertEqual(done["restarts"] as? Int, 1, done.text)
        try checkRecord(done)
    }

    /// A training job killed mid-way resumes from its last epoch and ends exactly where an
    /// uninterrupted run of the same request ends; the queue limit answers 429 meanwhile.
    func testTrainingKilledMidwayResumesFromItsLastEpochAndMatchesAnUninterruptedRun() async throws {
        let options = ["--max-queued-jobs-per-org", "1"]
        var server = try start(options, log: "first.log")
        let architecture = "stem.width=8 stage1.depth=1 stage1.width=16 stage1.block0.op=conv stage1.block0.kernel=3 "
            + "stage2.depth=1 stage2.width=32 stage2.block0.op=conv stage2.block0.kernel=3"
        var jobs = [String]()
        for _ in 0..<2 {
            let model = try await E2E.request(server, "POST", "/v1/models", json: ["architecture": architecture, "space": "small"])
            let modelID = try XCTUnwrap(model["id"] as? String, model.text)
            let job = try await E2E.request(server, "POST", "/v1/models/\(modelID)/train", json: [
                "dataset_id": "digits", "seed": 3, "hyperparameters": ["epochs": 12, "optimizer": "adamw", "learning_rate": 0.003],
            ])
            XCTAssertEqual(job.status, 200, job.text)
            jobs.append(try XCTUnwrap(job["id"] as? String))
        }
        // One job runs, one waits: the organisation's queue (limit 1) is full.
        let model = try await E2E.request(server, "POST", "/v1/models", json: ["architecture": architecture, "space": "small"])
        let third = try await E2E.request(server, "POST", "/v1/models/\(model["id"] as? String ?? "")/train",
                                          json: ["dataset_id": "digits"])
        XCTAssertEqual(third.status, 429, third.text)
        XCTAssertEqual(third.headers["retry-after"], "30")
        XCTAssertTrue(third.text.contains("\"type\":\"rate_limit_error\""), third.text)

        let before = try await wait(server, "/v1/jobs/\(jobs[0])") {
            (($0["metrics"] as? [String: Any])?["epochs_completed"] as? Int ?? 0) >= 2
        }
        let epochsBefore = (before["metrics"] as? [String: Any])?["epochs_completed"] as? Int ?? 0
        kill(server.process.processIdentifier, SIGKILL)
        server.process.waitUntilExit()
        let log = try String(contentsOf: directory.appendingPathComponent("first.log"), encoding: .utf8)
        XCTAssertTrue(log.contains("job state") && log.contains(jobs[0]), "job transitions are logged: \(log)")
        XCTAssertTrue(log.contains("request") && log.contains("status=200") && log.contains("duration_ms="),
                      "one line per request: \(log)")

        server = try start(options)
        var finished = [[String: Any]]()
        for id in jobs {
            let done = try await wait(server, "/v1/jobs/\(id)") { ["completed", "failed", "cancelled"].contains($0["status"] as? String) }
            XCTAssertEqual(done["status"] as? String, "completed", done.text)
            finished.append(try XCTUnwrap(done["metrics"] as? [String: Any]))
            if id == jobs[0] {
                XCTAssertEqual(done["restarts"] as? Int, 1, done.text)
                let resumedFrom = try XCTUnwrap(finished[0]["resumed_from_epoch"] as? Int, done.text)
                XCTAssertGreaterThanOrEqual(resumedFrom, epochsBefore)
                XCTAssertLessThan(resumedFrom, 12)
                XCTAssertTrue((done["restart_reason"] as? String ?? "").contains("resumed from the checkpoint after epoch \(resumedFrom)"),
                              done.text)
            } else {
                XCTAssertEqual(done["restarts"] as? Int, 0, "the pending job was queued again, not restarted: \(done.text)")
                XCTAssertNil(finished[1]["resumed_from_epoch"])
            }
        }
        XCTAssertEqual(finished[0]["epochs_completed"] as? Int, 12)
        for key in ["test_accuracy", "validation_accuracy", "validation_loss", "train_loss", "train_accuracy"] {
            let interrupted = try XCTUnwrap(finished[0][key] as? Double, key)
            let uninterrupted = try XCTUnwrap(finished[1][key] as? Double, key)
            XCTAssertEqual(interrupted, uninterrupted, accuracy: 1e-12, "\(key): resumed run ≡ uninterrupted run")
        }
        // No checkpoint is left behind once a job has completed.
        let leftovers = FileManager.default.enumerator(atPath: directory.appendingPathComponent("models").path)?
            .compactMap { $0 as? String }.filter { $0.contains("checkpoint") } ?? []
        XCTAssertEqual(leftovers, [])
    }

    /// A second signal does not wait for the drain: the process exits at once (128 + SIGTERM) and
    /// the training job resumes from its last checkpoint on the next start.
    func testASecondSignalExitsAtOnceAndTheJobStillResumes() async throws {
        var server = try start(["--grace-period", "60"])
        let model = try await E2E.request(server, "POST", "/v1/models", json: [
            "space": "small", "architecture": "stem.width=16 stage1.depth=2 stage1.width=24 stage1.block0.op=conv "
                + "stage1.block0.kernel=5 stage1.block1.op=conv stage1.block1.kernel=5 stage2.depth=2 stage2.width=48 "
                + "stage2.block0.op=conv stage2.block0.kernel=5 stage2.block1.op=conv stage2.block1.kernel=5",
        ])
        // The space's largest network at batch size 1: an epoch takes ≥ 1 s (release build), so the
        // drain is still waiting for the epoch begun just before the first signal.
        let job = try await E2E.request(server, "POST", "/v1/models/\(model["id"] as? String ?? "")/train",
                                        json: ["dataset_id": "digits", "hyperparameters": ["epochs": 50, "batch_size": 1]])
        let id = try XCTUnwrap(job["id"] as? String, job.text)
        _ = try await wait(server, "/v1/jobs/\(id)") { (($0["metrics"] as? [String: Any])?["epochs_completed"] as? Int ?? 0) >= 1 }
        kill(server.process.processIdentifier, SIGTERM)
        try await Task.sleep(nanoseconds: 20_000_000)
        XCTAssertTrue(server.process.isRunning, "the first signal drains: the epoch in progress may finish")
        let signalled = Date()
        kill(server.process.processIdentifier, SIGTERM)
        server.process.waitUntilExit()
        XCTAssertLessThan(Date().timeIntervalSince(signalled), 2, "the second signal exits at once")
        XCTAssertEqual(server.process.terminationStatus, 128 + SIGTERM)

        server = try start()
        let resumed = try await wait(server, "/v1/jobs/\(id)") { ($0["restarts"] as? Int ?? 0) == 1 }
        XCTAssertEqual(resumed["status"] as? String, "running", resumed.text)
        XCTAssertTrue((resumed["restart_reason"] as? String ?? "").contains("resumed from the checkpoint after epoch"), resumed.text)
        let cancelled = try await E2E.request(server, "POST", "/v1/jobs/\(id)/cancel")
        XCTAssertEqual(cancelled["status"] as? String, "cancelled", cancelled.text)
    }
}
