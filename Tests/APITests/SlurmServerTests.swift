import Foundation
import Records
import TestSupport
import XCTest
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `naslab serve --executor slurm` in front of a real (single-node) Slurm cluster, over HTTP: two
/// organisations' searches run on the cluster at once, a training job runs as a Slurm job and its
/// model serves predictions, a cancel `scancel`s a search's jobs, and a server killed while a job
/// array runs re-attaches to it after a restart without submitting anything twice.
/// CI brings the cluster up with `.ci/slurm-up.sh`; elsewhere these tests skip with a message.
final class SlurmServerTests: XCTestCase {
    typealias E2E = EndToEndTests

    var directory: URL!
    var servers: [Process] = []

    override func setUp() {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("naslab-slurm-api-\(UUID().uuidString)")
    }

    override func tearDown() {
        for process in servers where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        // Nothing of this test stays queued: its jobs are named after its searches and jobs.
        let leftovers = ((try? Self.queue()) ?? []).filter { job in searchAndJobIDs.contains { job.name.hasPrefix("naslab-\($0)-") } }
        if !leftovers.isEmpty { _ = try? Self.tool(["scancel"] + leftovers.map(\.id)) }
        try? FileManager.default.removeItem(at: directory)
    }

    /// The ids of the searches and training jobs this test created (to clean up after a failure).
    var searchAndJobIDs: [String] = []

    // MARK: - Cluster and server

    func requireCluster() throws { try requireSlurmCluster("Slurm API tests") }

    @discardableResult
    static func tool(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    struct QueuedJob: Equatable {
        var id: String
        var name: String
        var state: String
    }

    /// What `squeue` lists (pending, running and completing jobs; array tasks one per line).
    static func queue() throws -> [QueuedJob] {
        let (status, output) = try tool(["timeout", "10", "squeue", "-h", "-r", "-o", "%i|%j|%T"])
        guard status == 0 else { throw XCTSkip("squeue failed (\(status)): \(output)") }
        return output.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "|", maxSplits: 2).map(String.init)
            return fields.count == 3 ? QueuedJob(id: fields[0], name: fields[1], state: fields[2]) : nil
        }
    }

    /// The queued jobs of search or training job `id` (named `naslab-<id>-<batch key>`).
    static func queued(_ id: String) throws -> [QueuedJob] {
        try queue().filter { $0.name.hasPrefix("naslab-\(id)-") }
    }

    var sharedDirectory: URL { directory.appendingPathComponent("shared") }

    /// `naslab serve --executor slurm` on the test cluster: arrays of two candidates, one CPU per task.
    func startServer(log: String, environment: [String: String]? = nil, arguments: [String] = []) throws -> E2E.Server {
        try FileManager.default.createDirectory(at: sharedDirectory, withIntermediateDirectories: true)
        let server = try E2E.startServer(
            dataDirectory: directory,
            arguments: ["--executor", "slurm", "--shared-dir", sharedDirectory.path, "--cpus-per-task", "1",
                        "--time-limit-minutes", "10", "--candidates-per-array", "2", "--max-concurrent-searches", "4"] + arguments,
            log: directory.appendingPathComponent(log), environment: environment)
        servers.append(server.process)
        return server
    }

    func serverLog(_ name: String) -> String {
        (try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)) ?? ""
    }

    /// A key of another organisation on the same server.
    func otherOrganization(_ server: E2E.Server, _ organization: String) throws -> E2E.Server {
        let key = try E2E.run(try E2E.naslabExecutable(), ["keys", "create", "--org", organization, "--data-dir", directory.path])
        return E2E.Server(process: server.process, baseURL: server.baseURL, key: key)
    }

    func startSearch(_ server: E2E.Server, seed: Int, candidates: Int, epochs: Int = 1) async throws -> String {
        let search = try await E2E.request(server, "POST", "/v1/nas/searches", json: [
            "task_type": "image_classification", "dataset_id": "digits", "search_space": "small",
            "constraints": ["max_params": 30000], "budget": ["candidates": candidates, "epochs_per_candidate": epochs],
            "seed": seed, "searcher": "random",
        ])
        XCTAssertEqual(search.status, 200, search.text)
        let id = try XCTUnwrap(search["id"] as? String, search.text)
        searchAndJobIDs.append(id)
        return id
    }

    /// Polls `path` until `done` holds (or fails after `seconds`).
    func wait(_ server: E2E.Server, _ path: String, seconds: Double = 300,
              until done: (E2E.Reply) throws -> Bool) async throws -> E2E.Reply {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let reply = try await E2E.request(server, "GET", path)
            if try done(reply) { return reply }
            if Date() > deadline {
                XCTFail("\(path): condition not reached in \(seconds) s: \(reply.text)")
                return reply
            }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
    }

    static func isFinal(_ reply: E2E.Reply) -> Bool { ["completed", "failed", "cancelled"].contains(reply["status"] as? String) }

    static func jobIDs(_ reply: E2E.Reply) -> [String] { reply["slurm_job_ids"] as? [String] ?? [] }

    /// The Slurm jobs named in the search's record: each trained candidate's worker is `slurm-<job>_<task>`.
    func recordedJobs(_ search: E2E.Reply, file: StaticString = #filePath, line: UInt = #line) throws -> Set<String> {
        let path = try XCTUnwrap(search["record_path"] as? String, file: file, line: line)
        let rows = try Records.ExperimentRecord.openReadOnly(path: path).readCandidates().filter { $0.status != .rejected }
        var jobs = Set<String>()
        for row in rows {
            XCTAssertTrue(row.worker.hasPrefix("slurm-"), "candidate \(row.id) ran on \(row.worker)", file: file, line: line)
            jobs.insert(String(row.worker.dropFirst("slurm-".count).split(separator: "_").first ?? ""))
        }
        return jobs
    }

    // MARK: - Tests

    func testSearchesOfTwoOrganisationsRunOnSlurmAtOnceAndATrainedModelPredicts() async throws {
        try requireCluster()
        let server = try startServer(log: "server.log")
        let other = try otherOrganization(server, "lab-b")
        let first = try await startSearch(server, seed: 1, candidates: 4)
        let second = try await startSearch(other, seed: 2, candidates: 4)

        // Both searches' job arrays are in the queue at the same time.
        var together = false
        var progressSeen = Set<Int>()
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let queue = try Self.queue()
            if queue.contains(where: { $0.name.hasPrefix("naslab-\(first)-") }), queue.contains(where: { $0.name.hasPrefix("naslab-\(second)-") }) {
                together = true
            }
            let progress = try await E2E.request(server, "GET", "/v1/nas/searches/\(first)")
            if progress["status"] as? String == "running" { progressSeen.insert(progress["architectures_evaluated"] as? Int ?? -1) }
            if together && progressSeen.contains(2) || Self.isFinal(progress) { break }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
        XCTAssertTrue(together, "the job arrays of both searches should be in squeue at once; log:\n\(serverLog("server.log"))")

        var finished = [String: E2E.Reply]()
        for (client, id) in [(server, first), (other, second)] {
            let done = try await wait(client, "/v1/nas/searches/\(id)") {
                if ($0["status"] as? String) == "running" { progressSeen.insert($0["architectures_evaluated"] as? Int ?? -1) }
                return Self.isFinal($0)
            }
            XCTAssertEqual(done["status"] as? String, "completed", done.text + "\n" + serverLog("server.log"))
            XCTAssertEqual(done["architectures_evaluated"] as? Int, 4, done.text)
            let jobs = Self.jobIDs(done)
            XCTAssertEqual(jobs.count, 2, "two job arrays of two candidates: \(done.text)")
            XCTAssertEqual(try recordedJobs(done), Set(jobs), "the record names the Slurm jobs the search shows")
            finished[id] = done
        }
        XCTAssertTrue(progressSeen.contains(2), "progress after the first array came back: \(progressSeen.sorted())")
        XCTAssertTrue(Set(Self.jobIDs(finished[first]!)).isDisjoint(with: Self.jobIDs(finished[second]!)))
        // Each organisation sees only its own search.
        let foreign = try await E2E.request(other, "GET", "/v1/nas/searches/\(first)")
        XCTAssertEqual(foreign.status, 404, foreign.text)

        // A training job runs as one Slurm job; the server writes the model file; the model serves.
        let model = try await E2E.request(server, "POST", "/v1/models", json: ["from_search": first])
        XCTAssertEqual(model.status, 200, model.text)
        let modelID = try XCTUnwrap(model["id"] as? String)
        let job = try await E2E.request(server, "POST", "/v1/models/\(modelID)/train",
                                        json: ["dataset_id": "digits", "hyperparameters": ["epochs": 2], "seed": 3])
        XCTAssertEqual(job.status, 200, job.text)
        let jobID = try XCTUnwrap(job["id"] as? String)
        searchAndJobIDs.append(jobID)
        var queuedAsSlurmJob = false
        let trained = try await wait(server, "/v1/jobs/\(jobID)") {
            if !queuedAsSlurmJob, let slurmJob = Self.jobIDs($0).first {
                queuedAsSlurmJob = try Self.queue().contains { $0.id.hasPrefix(slurmJob + "_") && $0.name.hasPrefix("naslab-\(jobID)-") }
            }
            return Self.isFinal($0)
        }
        XCTAssertEqual(trained["status"] as? String, "completed", trained.text + "\n" + serverLog("server.log"))
        XCTAssertEqual(Self.jobIDs(trained).count, 1, trained.text)
        XCTAssertTrue(queuedAsSlurmJob, "the training job should be listed by squeue under its Slurm job id")
        let metrics = try XCTUnwrap(trained["metrics"] as? [String: Any])
        XCTAssertEqual(metrics["epochs_completed"] as? Int, 2, trained.text)
        XCTAssertNotNil(metrics["test_accuracy"] as? Double, trained.text)
        let artifact = directory.appendingPathComponent("models/\(modelID)/\(jobID).h5").path
        XCTAssertTrue(FileManager.default.fileExists(atPath: artifact), "the server writes the model file into its data directory")

        let deployment = try await E2E.request(server, "POST", "/v1/models/\(modelID)/deploy", json: [:])
        XCTAssertEqual(deployment.status, 200, deployment.text)
        let deploymentID = try XCTUnwrap(deployment["id"] as? String)
        let running = try await E2E.poll(server, "/v1/deployments/\(deploymentID)", until: ["running", "failed"])
        XCTAssertEqual(running["status"] as? String, "running", running.text)
        let image = (0..<64).map { Double($0 % 17) }
        let prediction = try await E2E.request(server, "POST", "/v1/models/\(modelID)/predict",
                                               json: ["inputs": ["images": [image]], "parameters": ["top_k": 3]])
        XCTAssertEqual(prediction.status, 200, prediction.text)
        XCTAssertEqual((prediction["predictions"] as? [[String: Any]])?.count, 3, prediction.text)
    }

    func testCancellingARunningSearchCancelsItsSlurmJobs() async throws {
        try requireCluster()
        let server = try startServer(log: "server.log")
        let id = try await startSearch(server, seed: 5, candidates: 8, epochs: 20)
        let deadline = Date().addingTimeInterval(120)
        var queued: [QueuedJob] = []
        while queued.isEmpty, Date() < deadline {
            queued = try Self.queued(id)
            if queued.isEmpty { try await Task.sleep(nanoseconds: 200_000_000) }
        }
        XCTAssertFalse(queued.isEmpty, "the search's job array should be queued; log:\n\(serverLog("server.log"))")
        let shown = try await wait(server, "/v1/nas/searches/\(id)", seconds: 30) { !Self.jobIDs($0).isEmpty }
        XCTAssertEqual(Set(Self.jobIDs(shown)), Set(queued.map { String($0.id.split(separator: "_").first ?? "") }), shown.text)

        let cancelled = try await E2E.request(server, "POST", "/v1/nas/searches/\(id)/cancel")
        XCTAssertEqual(cancelled.status, 200, cancelled.text)
        XCTAssertEqual(cancelled["status"] as? String, "cancelled", cancelled.text)
        // Gone from squeue within the poll interval (2 s), with a margin for scancel and the controller.
        let cancelledAt = Date()
        var left = try Self.queued(id)
        while !left.isEmpty, Date().timeIntervalSince(cancelledAt) < 8 {
            try await Task.sleep(nanoseconds: 200_000_000)
            left = try Self.queued(id)
        }
        XCTAssertEqual(left, [], "the cancelled search's Slurm jobs should leave the queue; log:\n\(serverLog("server.log"))")
        XCTAssertLessThan(Date().timeIntervalSince(cancelledAt), 8)
        // Nothing is submitted afterwards.
        try await Task.sleep(nanoseconds: 4_000_000_000)
        XCTAssertEqual(try Self.queued(id), [])
        let after = try await E2E.request(server, "GET", "/v1/nas/searches/\(id)")
        XCTAssertEqual(after["status"] as? String, "cancelled", after.text)
        XCTAssertEqual(Set(Self.jobIDs(after)), Set(Self.jobIDs(shown)), "no job submitted after the cancel: \(after.text)")
    }

    /// Tasks that keep failing are retried `--max-retries` times; the search then ends `failed`
    /// with the Slurm state and the worker's stderr tail.
    func testASearchWhoseTasksKeepFailingEndsFailedWithTheSlurmStateAndStderr() async throws {
        try requireCluster()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let worker = directory.appendingPathComponent("broken-worker.sh")
        try "#!/bin/sh\necho \"broken worker: cannot evaluate $1\" >&2\nexit 3\n".write(to: worker, atomically: true, encoding: .utf8)
        XCTAssertEqual(chmod(worker.path, 0o755), 0)
        let server = try startServer(log: "server.log", arguments: ["--worker-command", worker.path, "--max-retries", "1"])
        let id = try await startSearch(server, seed: 9, candidates: 4)
        let done = try await wait(server, "/v1/nas/searches/\(id)", seconds: 180) { Self.isFinal($0) }
        XCTAssertEqual(done["status"] as? String, "failed", done.text)
        let reason = done["failure_reason"] as? String ?? ""
        XCTAssertTrue(reason.contains("keep failing on Slurm"), reason)
        XCTAssertTrue(reason.contains("ended FAILED"), reason)
        XCTAssertTrue(reason.contains("exit code 3"), reason)
        XCTAssertTrue(reason.contains("broken worker: cannot evaluate"), "the stderr tail: \(reason)")
        XCTAssertTrue(reason.contains("retries exhausted"), reason)
        // Two arrays, each submitted once and retried once.
        XCTAssertEqual(Self.jobIDs(done).count, 4, done.text)
        XCTAssertEqual(try Self.queued(id), [])
    }

    func testKilledServerReattachesToItsJobArrayWithoutSubmittingTwice() async throws {
        try requireCluster()
        // Every sbatch call of the server goes through a wrapper that counts it.
        let bin = directory.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        let calls = directory.appendingPathComponent("sbatch-calls.log")
        let (_, found) = try Self.tool(["which", "sbatch"])
        let sbatch = found.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertFalse(sbatch.isEmpty)
        let wrapper = bin.appendingPathComponent("sbatch")
        try "#!/bin/sh\necho \"$*\" >> '\(calls.path)'\nexec '\(sbatch)' \"$@\"\n".write(to: wrapper, atomically: true, encoding: .utf8)
        XCTAssertEqual(chmod(wrapper.path, 0o755), 0)
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = bin.path + ":" + (environment["PATH"] ?? "/usr/bin:/bin")

        var server = try startServer(log: "first.log", environment: environment)
        let id = try await startSearch(server, seed: 7, candidates: 4, epochs: 3)
        // Kill the server while the search's first job array is queued or running.
        let deadline = Date().addingTimeInterval(120)
        var queued: [QueuedJob] = []
        while queued.isEmpty, Date() < deadline {
            queued = try Self.queued(id)
            if queued.isEmpty { try await Task.sleep(nanoseconds: 100_000_000) }
        }
        XCTAssertFalse(queued.isEmpty, "the search's job array should be queued; log:\n\(serverLog("first.log"))")
        let before = try await wait(server, "/v1/nas/searches/\(id)", seconds: 30) { !Self.jobIDs($0).isEmpty }
        XCTAssertEqual(before["architectures_evaluated"] as? Int, 0, before.text)
        kill(server.process.processIdentifier, SIGKILL)
        server.process.waitUntilExit()
        XCTAssertFalse(try Self.queued(id).isEmpty, "the job array outlives the server")

        server = try startServer(log: "second.log", environment: environment)
        let done = try await wait(server, "/v1/nas/searches/\(id)") { Self.isFinal($0) }
        XCTAssertEqual(done["status"] as? String, "completed", done.text + "\n" + serverLog("second.log"))
        XCTAssertEqual(done["architectures_evaluated"] as? Int, 4, done.text)
        XCTAssertEqual(done["restarts"] as? Int, 1, done.text)

        // One sbatch per job array: the array running at the kill was re-attached, not resubmitted.
        let jobs = Self.jobIDs(done)
        let submitted = try String(contentsOf: calls, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(jobs.count, 2, done.text)
        XCTAssertEqual(submitted.count, jobs.count, "sbatch calls: \(submitted)")
        XCTAssertTrue(jobs.contains(Self.jobIDs(before)[0]), "the first array's job is the one the search finished with")
        XCTAssertEqual(try recordedJobs(done), Set(jobs))
        // Each batch directory records exactly one submission.
        let batches = sharedDirectory.appendingPathComponent("searches/\(id)/batches")
        let keys = try FileManager.default.contentsOfDirectory(atPath: batches.path).sorted()
        XCTAssertEqual(keys.count, 2, "\(keys)")
        for key in keys {
            let lines = try String(contentsOf: batches.appendingPathComponent("\(key)/submissions.tsv"), encoding: .utf8)
                .split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "\(key): \(lines)")
            XCTAssertTrue(lines.first?.contains("\tinitial\t") ?? false, "\(key): \(lines)")
        }
    }
}
