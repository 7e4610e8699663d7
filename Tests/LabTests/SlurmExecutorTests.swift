import Foundation
import Lab
import NASCore
import Spaces
import TestSupport
import XCTest

/// Tests of `SlurmExecutor` against a real Slurm cluster (`.ci/slurm-up.sh DIR`, then export the
/// `SLURM_CONF` it prints). Without a reachable cluster the cluster tests skip; the file-format and
/// settings tests always run.
///
/// The worker is a small Python script written by the tests (the real `naslab evaluate` is tested
/// elsewhere): it reads the spec JSON, acts on its `architecture` text (`ok`, `sleep:N`, `fail:N`,
/// `noresult`, `flaky`) and writes a `CandidateResult` JSON whose numbers are derived from the spec.
final class SlurmExecutorTests: XCTestCase {
    private var sharedDirectory: URL!

    override func setUpWithError() throws {
        sharedDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("naslab-slurm-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: sharedDirectory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let sharedDirectory { try? FileManager.default.removeItem(at: sharedDirectory) }
    }

    // MARK: - Cluster tests

    func testBatchOfFourCompletesWithResultsInSpecOrder() throws {
        let executor = try makeExecutor()
        let specs = [14, 12, 15, 13].map { spec(id: $0, "ok") }
        let started = Date()
        let results = try executor.evaluate(specs)
        let seconds = Date().timeIntervalSince(started)

        XCTAssertEqual(results.map(\.id), [14, 12, 15, 13])
        let batch = executor.batch(for: specs)
        let jobID = try String(contentsOfFile: batch.jobIDPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertFalse(jobID.isEmpty)
        for (task, result) in results.enumerated() {
            XCTAssertEqual(result.status, .completed, "candidate \(result.id): \(result.reason ?? "")")
            // Values the worker computed from the spec file it read.
            XCTAssertEqual(result.validationScore, Double(result.id) / 100, accuracy: 1e-12)
            XCTAssertEqual(result.testScore, Double(1_000 + result.id) / 10_000, accuracy: 1e-12)
            XCTAssertEqual(result.epochs.count, 1)
            XCTAssertEqual(result.worker, "slurm-\(jobID)_\(task)")
            // The result file on disk, read back by a second reader (JSONSerialization).
            let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: batch.resultPath(result.id)))) as? [String: Any]
            XCTAssertEqual(object?["id"] as? Int, result.id)
            XCTAssertEqual(object?["worker"] as? String, "slurm-\(jobID)_\(task)", "the batch script exports NASLAB_WORKER")
            let log = try String(contentsOfFile: batch.standardOutputPath(jobID: jobID, task: task), encoding: .utf8)
            XCTAssertTrue(log.contains("evaluates candidate \(result.id)"), log)
        }
        let submissions = try batch.submissions()
        XCTAssertEqual(submissions.count, 1)
        XCTAssertEqual(submissions.first?.candidateIDs, [14, 12, 15, 13])
        XCTAssertEqual(submissions.first?.kind, .initial)
        XCTAssertEqual(try queue(jobID: jobID).count, 4, "one array of 4 tasks")
        print("SlurmExecutorTests: batch of 4 evaluated in \(String(format: "%.1f", seconds)) s")
    }

    func testCancelledTasksAreFailedAndTheOthersComplete() throws {
        let executor = try makeExecutor()
        // Two CPUs: tasks 0 and 1 start, 2 and 3 wait. Task 0 is cancelled while it runs, task 3
        // while it is still pending (Slurm then drops it from the queue altogether).
        let specs = [spec(id: 0, "sleep:60"), spec(id: 1, "sleep:4"), spec(id: 2, "ok"), spec(id: 3, "ok")]
        let batch = executor.batch(for: specs)
        let outcome = Background { try executor.evaluate(specs) }

        let jobID = try waitForJobID(batch)
        try waitUntil("task \(jobID)_0 runs while \(jobID)_3 waits") {
            let states = try self.queue(jobID: jobID)
            return states["\(jobID)_0"] == "RUNNING" && states["\(jobID)_3"] == "PENDING"
        }
        try command(["scancel", "\(jobID)_0", "\(jobID)_3"])
        let results = try outcome.value(timeout: 90)

        XCTAssertEqual(results.map(\.id), [0, 1, 2, 3])
        XCTAssertEqual(results.map(\.status), [.failed, .completed, .completed, .failed], results.compactMap(\.reason).joined(separator: "\n"))
        let running = results[0].reason ?? ""
        XCTAssertTrue(running.contains("Slurm task \(jobID)_0 ended CANCELLED"), running)
        XCTAssertEqual(results[0].worker, "slurm-\(jobID)_0")
        let pending = results[3].reason ?? ""
        XCTAssertTrue(pending.contains("\(jobID)_3") && pending.contains("CANCELLED while pending"), pending)
        for result in results[1...2] {
            XCTAssertEqual(result.validationScore, Double(result.id) / 100, accuracy: 1e-12)
        }
    }

    func testFailingWorkerIsFailedWithItsStandardError() throws {
        let executor = try makeExecutor()
        let specs = [spec(id: 5, "fail:3"), spec(id: 6, "ok"), spec(id: 7, "noresult")]
        let results = try executor.evaluate(specs)
        let jobID = try String(contentsOfFile: executor.batch(for: specs).jobIDPath, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)

        XCTAssertEqual(results.map(\.status), [.failed, .completed, .failed])
        let failed = results[0].reason ?? ""
        XCTAssertTrue(failed.contains("Slurm task \(jobID)_0 ended FAILED"), failed)
        XCTAssertTrue(failed.contains("exit code 3"), failed)
        XCTAssertTrue(failed.contains("deliberate failure of candidate 5"), "stderr tail missing: \(failed)")
        print("SlurmExecutorTests: failure reasons:\n\(failed)\n\(results[2].reason ?? "")")
        let noResult = results[2].reason ?? ""
        XCTAssertTrue(noResult.contains("exited 0 but wrote no result"), noResult)
        XCTAssertFalse(FileManager.default.fileExists(atPath: executor.batch(for: specs).resultPath(7)))
    }

    func testFailedTasksAreRetriedUpToMaxRetries() throws {
        let executor = try makeExecutor { $0.maxRetries = 1 }
        let specs = [spec(id: 20, "flaky"), spec(id: 21, "fail:2"), spec(id: 22, "ok")]
        let results = try executor.evaluate(specs)
        let submissions = try executor.batch(for: specs).submissions()

        // Failures found in the same poll are resubmitted together, otherwise one array each.
        XCTAssertEqual(submissions.first?.kind, .initial)
        XCTAssertEqual(submissions.first?.candidateIDs, [20, 21, 22])
        let retries = submissions.dropFirst()
        XCTAssertTrue(retries.allSatisfy { $0.kind == .retry }, "\(submissions)")
        XCTAssertEqual(retries.flatMap(\.candidateIDs).sorted(), [20, 21], "each failed task is resubmitted once, the others not")
        func lastTask(of id: Int) -> String? {
            submissions.last { $0.candidateIDs.contains(id) }
                .map { "\($0.jobID)_\($0.candidateIDs.firstIndex(of: id) ?? -1)" }
        }
        XCTAssertEqual(results[0].status, .completed, results[0].reason ?? "")
        XCTAssertEqual(results[0].worker, "slurm-\(lastTask(of: 20) ?? "?")", "the retry's task wrote the result")
        XCTAssertNotEqual(lastTask(of: 20), "\(submissions[0].jobID)_0")
        XCTAssertEqual(results[1].status, .failed)
        let reason = results[1].reason ?? ""
        XCTAssertTrue(reason.contains("failed 2 times"), reason)
        XCTAssertTrue(reason.contains("Slurm task \(lastTask(of: 21) ?? "?") ended FAILED"), "the reason names the last attempt: \(reason)")
        XCTAssertEqual(results[2].status, .completed)
        XCTAssertEqual(results[2].worker, "slurm-\(submissions[0].jobID)_2")
    }

    func testResumeReusesTheSubmittedJob() throws {
        let specs = (30..<34).map { spec(id: $0, "sleep:2") }
        // A coordinator submits and dies before the job ends…
        let first = try makeExecutor()
        try first.submit(specs)
        let batch = first.batch(for: specs)
        let jobID = try String(contentsOfFile: batch.jobIDPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertNotEqual(try queue(jobID: jobID).values.filter { $0 == "COMPLETED" }.count, 4, "the job must still be running")

        // …and a fresh one asks for the same batch.
        let results = try makeExecutor().evaluate(specs)
        XCTAssertEqual(results.map(\.id), Array(30..<34))
        XCTAssertEqual(results.map(\.status), Array(repeating: .completed, count: 4), results.compactMap(\.reason).joined(separator: "\n"))
        XCTAssertEqual(results.map(\.worker), (0..<4).map { "slurm-\(jobID)_\($0)" })
        XCTAssertEqual(try String(contentsOfFile: batch.jobIDPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), jobID)
        XCTAssertEqual(try batch.submissions().count, 1, "no second sbatch")
        let jobName = "naslab-\(batch.key)"
        let jobsOfBatch = try command(["squeue", "-h", "-t", "all", "-n", jobName, "-o", "%F"])
            .split(separator: "\n").map(String.init)
        XCTAssertEqual(Set(jobsOfBatch), [jobID], "Slurm knows exactly one job of this batch")
    }

    func testResumeAfterSlurmForgotTheJobSubmitsOnlyMissingCandidates() throws {
        let executor = try makeExecutor()
        let specs = [spec(id: 40, "ok"), spec(id: 41, "ok"), spec(id: 42, "ok")]
        let batch = executor.batch(for: specs)
        // The state a coordinator leaves when it dies after candidate 40 finished, and Slurm has
        // since purged the job (an id no live job has, or one naming another job).
        try FileManager.default.createDirectory(atPath: batch.logDirectory, withIntermediateDirectories: true)
        try "999999\tinitial\t40,41,42\n".write(toFile: batch.directory + "/submissions.tsv", atomically: true, encoding: .utf8)
        try "999999\n".write(toFile: batch.jobIDPath, atomically: true, encoding: .utf8)
        let earlier = CandidateResult(id: 40, status: .completed, validationScore: 0.777, testScore: 0.5, worker: "slurm-999999_0")
        try SlurmResultFile.write(earlier, to: batch.resultPath(40))

        let results = try executor.evaluate(specs)
        XCTAssertEqual(results[0].validationScore, 0.777, "the earlier result is reused, not recomputed")
        XCTAssertEqual(results[0].worker, "slurm-999999_0")
        XCTAssertEqual(results[1].validationScore, 0.41, accuracy: 1e-12)
        XCTAssertEqual(results[2].validationScore, 0.42, accuracy: 1e-12)
        let submissions = try batch.submissions()
        XCTAssertEqual(submissions.count, 2)
        XCTAssertEqual(submissions[1].kind, .resume)
        XCTAssertEqual(submissions[1].candidateIDs, [41, 42])
        XCTAssertEqual(results[1].worker, "slurm-\(submissions[1].jobID)_0")
    }

    func testSbatchErrorIsThrownWithContext() throws {
        let executor = try makeExecutor { $0.partition = "no-such-partition" }
        XCTAssertThrowsError(try executor.evaluate([spec(id: 50, "ok")])) { error in
            guard case SlurmError.commandFailed(let command, let exitCode, let standardError) = error else {
                return XCTFail("expected commandFailed, got \(error)")
            }
            XCTAssertTrue(command.hasPrefix("sbatch"), command)
            XCTAssertNotEqual(exitCode, 0)
            XCTAssertTrue(standardError.lowercased().contains("partition"), standardError)
            XCTAssertTrue("\(error)".contains("no-such-partition"), "\(error)")
        }
    }

    func testTimedOutTaskIsFailedWithTimeout() throws {
        guard ProcessInfo.processInfo.environment["NASLAB_SLOW_TESTS"] == "1" else {
            throw XCTSkip("slow (~2 min: Slurm enforces a 1-minute limit late); set NASLAB_SLOW_TESTS=1 to run")
        }
        let executor = try makeExecutor { $0.timeLimitMinutes = 1 }
        let results = try executor.evaluate([spec(id: 60, "sleep:300"), spec(id: 61, "ok")])
        XCTAssertEqual(results[0].status, .failed)
        XCTAssertTrue(results[0].reason?.contains("TIMEOUT") == true, results[0].reason ?? "")
        XCTAssertEqual(results[1].status, .completed)
    }

    /// The real worker, `naslab evaluate`, trains two small candidates as a Slurm array; the
    /// results equal those of training the same specs in this process.
    func testRealNaslabWorkerMatchesLocalTraining() throws {
        let naslab = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("naslab").path
        guard FileManager.default.isExecutableFile(atPath: naslab) else {
            throw XCTSkip("no naslab executable next to the test binary (\(naslab))")
        }
        let executor = try makeExecutor { $0.workerCommand = [naslab, "evaluate"] }
        // `naslab` re-executes itself with OpenBLAS's optimised kernels when OpenBLAS fell back to
        // generic ones; this test process keeps the kernels it has. Equal results need equal kernels,
        // so the worker (which inherits this environment through sbatch) is asked to keep them too.
        setenv("NASLAB_GENERIC_BLAS", "1", 1)
        defer { unsetenv("NASLAB_GENERIC_BLAS") }
        let space = try SpaceReference.resolve("small")
        var rng = SeededGenerator(seed: 11)
        var training = ExperimentConfig(name: "slurm-real").training
        training.epochs = 1
        let specs = (0..<2).map { id in
            CandidateSpec(id: 70 + id, architecture: space.space.text(of: space.space.sampleUniformly(using: &rng)),
                          spaceYAML: space.yaml, spaceName: "small", dataset: "digits", validationSplit: 0.2,
                          datasetSeed: 5, training: training,
                          seed: CandidateTraining.candidateSeed(experimentSeed: 5, candidateID: 70 + id), threads: 1)
        }
        let results = try executor.evaluate(specs)
        let jobID = try String(contentsOfFile: executor.batch(for: specs).jobIDPath, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)

        let local = try LocalExecutor(workers: 1, weightsDirectory: nil).evaluate(specs)
        for (index, (remote, reference)) in zip(results, local).enumerated() {
            XCTAssertEqual(remote.status, .completed, remote.reason ?? "")
            XCTAssertEqual(remote.worker, "slurm-\(jobID)_\(index)")
            XCTAssertEqual(remote.epochs.count, 1)
            XCTAssertTrue((0...1).contains(remote.validationScore), "\(remote.validationScore)")
            XCTAssertEqual(remote.validationScore, reference.validationScore, "candidate \(remote.id): same spec, same result")
            XCTAssertEqual(remote.testScore, reference.testScore)
            XCTAssertEqual(remote.epochs.map(\.trainLoss), reference.epochs.map(\.trainLoss))
            if let weights = remote.weightsFile {
                XCTAssertTrue(weights.hasPrefix(executor.batch(for: specs).directory), "weights in the shared directory: \(weights)")
                XCTAssertTrue(FileManager.default.fileExists(atPath: weights), weights)
            }
        }
    }

    // MARK: - Tests without a cluster

    func testBatchKeyDependsOnSpecsNotOrder() throws {
        let specs = [spec(id: 3, "ok"), spec(id: 1, "ok"), spec(id: 2, "ok"), spec(id: 7, "ok")]
        let key = SlurmBatch(specs: specs, sharedDirectory: "/s").key
        XCTAssertTrue(key.hasPrefix("ids-1_3-7-h"), key)
        XCTAssertEqual(SlurmBatch(specs: specs.reversed(), sharedDirectory: "/s").key, key)
        var changed = specs
        changed[0].seed += 1
        XCTAssertNotEqual(SlurmBatch(specs: changed, sharedDirectory: "/s").key, key, "another experiment with the same ids")
        XCTAssertEqual(SlurmBatch(specs: specs, sharedDirectory: "/s").directory, "/s/batches/\(key)")
        let many = (0..<500).filter { $0 % 2 == 0 }.map { spec(id: $0, "ok") }
        XCTAssertLessThan(SlurmBatch(specs: many, sharedDirectory: "/s").key.count, 130, "file names stay short")
    }

    func testResultFileRoundTripKeepsNaN() throws {
        let path = sharedDirectory.appendingPathComponent("result-9.json").path
        let failed = CandidateResult.failed(id: 9, reason: "diverged", worker: "slurm-1_0")
        try SlurmResultFile.write(failed, to: path)
        let back = try SlurmResultFile.readResult(at: path)
        XCTAssertEqual(back.id, 9)
        XCTAssertEqual(back.reason, "diverged")
        XCTAssertTrue(back.validationScore.isNaN)
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
        XCTAssertEqual(object?["validationScore"] as? String, "nan")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: sharedDirectory.path), ["result-9.json"], "no temporary file left")

        try Data("{\"id\": 9, \"status\": \"comp".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try SlurmResultFile.readResult(at: path)) { error in
            XCTAssertTrue("\(error)".contains(path), "\(error)")
        }
    }

    func testInvalidSettingsAreRejected() {
        var settings = SlurmSettings(sharedDirectory: sharedDirectory.path)
        settings.cpusPerTask = 0
        XCTAssertThrowsError(try SlurmExecutor(settings: settings)) { error in
            XCTAssertEqual(error as? SlurmError, .invalidSettings(field: "cpus_per_task", message: "must be at least 1 (got 0)"))
        }
        settings = SlurmSettings(sharedDirectory: sharedDirectory.path)
        settings.jobName = "bad name"
        XCTAssertThrowsError(try SlurmExecutor(settings: settings))
        settings = SlurmSettings(sharedDirectory: sharedDirectory.path)
        settings.maxRetries = -1
        XCTAssertThrowsError(try SlurmExecutor(settings: settings))
        XCTAssertEqual(SlurmSettings(sharedDirectory: "/s").workerCommand.last, "evaluate")
        XCTAssertTrue(SlurmSettings(sharedDirectory: "/s").workerCommand[0].hasPrefix("/"))
    }

    func testDuplicateCandidateIDsAreRejected() throws {
        let executor = try SlurmExecutor(settings: SlurmSettings(sharedDirectory: sharedDirectory.path))
        XCTAssertThrowsError(try executor.evaluate([spec(id: 1, "ok"), spec(id: 1, "ok")])) { error in
            XCTAssertEqual(error as? SlurmError, .duplicateCandidateIDs([1]))
        }
        XCTAssertEqual(try executor.evaluate([]), [])
    }

    // MARK: - Helpers

    private func spec(id: Int, _ behaviour: String) -> CandidateSpec {
        // The test's directory name in the YAML makes every test's batch keys (and job names) unique.
        CandidateSpec(id: id, architecture: behaviour, spaceYAML: "name: test\n# \(sharedDirectory.lastPathComponent)\n", spaceName: "test", dataset: "digits",
                      validationSplit: 0.1, datasetSeed: 7, training: ExperimentConfig(name: "slurm-test").training,
                      seed: UInt64(1_000 + id), threads: 1)
    }

    /// An executor on the real cluster with the test worker; skips when no cluster is reachable.
    private func makeExecutor(_ configure: (inout SlurmSettings) -> Void = { _ in }) throws -> SlurmExecutor {
        try Self.requireCluster()
        var settings = SlurmSettings(sharedDirectory: sharedDirectory.path)
        settings.workerCommand = [try writeWorker()]
        settings.pollIntervalSeconds = 0.3
        settings.timeLimitMinutes = 5
        settings.resultGraceSeconds = 5
        settings.maxWaitMinutes = 3
        settings.commandTimeoutSeconds = 20
        settings.controllerToleranceSeconds = 30
        configure(&settings)
        return try SlurmExecutor(settings: settings)
    }

    /// Throws `XCTSkip` unless a Slurm cluster answers (TestSupport's `requireSlurmCluster`).
    private static func requireCluster() throws { try requireSlurmCluster("Slurm cluster tests") }

    /// The test worker: `worker SPEC --output RESULT`.
    private func writeWorker() throws -> String {
        let path = sharedDirectory.appendingPathComponent("test-worker.py").path
        let script = #"""
        #!/usr/bin/env python3
        import json, os, sys, time
        spec_path, flag, output = sys.argv[1], sys.argv[2], sys.argv[3]
        assert flag == "--output", sys.argv
        with open(spec_path) as f:
            spec = json.load(f)
        identifier, behaviour = spec["id"], spec["architecture"]
        if behaviour.startswith("sleep:"):
            time.sleep(float(behaviour.split(":")[1]))
        elif behaviour.startswith("fail:"):
            print(f"test worker: deliberate failure of candidate {identifier}", file=sys.stderr)
            sys.exit(int(behaviour.split(":")[1]))
        elif behaviour == "noresult":
            sys.exit(0)
        elif behaviour == "flaky":
            marker = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"flaky-{identifier}")
            if not os.path.exists(marker):
                open(marker, "w").close()
                print("test worker: flaky first attempt fails", file=sys.stderr)
                sys.exit(1)
        else:
            time.sleep(0.2)
        result = {
            "id": identifier, "status": "completed",
            "validationScore": identifier / 100, "testScore": spec["seed"] / 10000, "reported": {},
            "epochs": [{"epoch": 0, "trainLoss": 0.5, "trainAccuracy": 0.8, "validationLoss": 0.6,
                        "validationAccuracy": identifier / 100, "learningRate": 0.05, "seconds": 0.2}],
            "wallSeconds": 0.2, "worker": os.environ.get("NASLAB_WORKER", "unknown"),
        }
        with open(output, "w") as f:
            json.dump(result, f)
        """#
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        return path
    }

    /// `squeue` states of the tasks of `jobID` (`"<job>_<task>": "RUNNING"`).
    private func queue(jobID: String) throws -> [String: String] {
        let text = try command(["squeue", "-h", "-r", "-j", jobID, "-t", "all", "-o", "%i %T"])
        var states: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2 { states[String(fields[0])] = String(fields[1]) }
        }
        return states
    }

    private func waitForJobID(_ batch: SlurmBatch, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        var jobID = ""
        try waitUntil("the job id is recorded", file: file, line: line) {
            jobID = (try? String(contentsOfFile: batch.jobIDPath, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            return !jobID.isEmpty
        }
        return jobID
    }

    private func waitUntil(_ what: String, seconds: Double = 30, file: StaticString = #filePath, line: UInt = #line,
                           _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return }
            Thread.sleep(forTimeInterval: 0.2)
        }
        XCTFail("timed out after \(seconds) s waiting until \(what)", file: file, line: line)
        throw SlurmError.commandTimedOut(command: "wait until \(what)", seconds: seconds)
    }

    @discardableResult
    private func command(_ arguments: [String]) throws -> String {
        let (status, output, error) = try Self.run(["timeout", "20"] + arguments)
        guard status == 0 else {
            throw SlurmError.commandFailed(command: arguments.joined(separator: " "), exitCode: status, standardError: error)
        }
        return output
    }

    private static func run(_ arguments: [String]) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self))
    }
}

/// Runs a throwing closure on another thread; `value(timeout:)` waits for it.
private final class Background<Value>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<Value, Error>?

    init(_ work: @escaping () throws -> Value) {
        DispatchQueue.global().async {
            self.result = Result { try work() }
            self.done.signal()
        }
    }

    func value(timeout: Double) throws -> Value {
        guard done.wait(timeout: .now() + timeout) == .success, let result else {
            throw SlurmError.commandTimedOut(command: "evaluate on a background thread", seconds: timeout)
        }
        return try result.get()
    }
}
