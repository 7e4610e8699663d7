import Foundation

/// Evaluates candidates as Slurm job arrays: one array task per candidate, through a shared directory.
///
/// `evaluate(_:)` writes each spec to `<shared>/batches/<key>/spec-<id>.json`, submits one
/// `sbatch --array` whose task `i` runs `<worker command> spec-<id>.json --output <result>` (by
/// default `naslab evaluate`), polls `squeue` until every task has ended, and returns the results
/// written by the workers. A task that fails, is cancelled, times out, runs out of memory, loses its
/// node, or ends without a result becomes a `.failed` result whose reason names the Slurm state and
/// quotes the end of the task's standard error; with `maxRetries > 0` such tasks are first
/// resubmitted as a new array.
///
/// Resume: the batch directory depends only on the specs, and the submitted job id is recorded there
/// (`job-id`, `submissions.tsv`). A restarted coordinator that asks for the same batch again does not
/// resubmit: it reuses the results already written and keeps polling the recorded job; only when
/// Slurm no longer knows that job are the candidates still missing a result submitted again.
///
/// Workers only write result files; the coordinator alone writes the experiment record.
///
/// ```swift
/// var settings = SlurmSettings(sharedDirectory: "/shared/me/naslab")
/// settings.partition = "cpu"
/// let executor = try SlurmExecutor(settings: settings)
/// let results = try executor.evaluate(specs)   // one per spec, in the order of `specs`
/// ```
public final class SlurmExecutor: CandidateExecutor {
    public let settings: SlurmSettings
    /// Receives one line per notable event (submission, retry, lost job); `nil` to stay silent.
    public var log: ((String) -> Void)?

    /// Why a wait for a batch stops before every task has ended (see ``interruption``).
    public enum Interruption: String, Sendable {
        /// Stop waiting and leave the jobs to Slurm: evaluating the same specs again (a restarted
        /// coordinator) re-attaches to them without submitting anything.
        case detach
        /// `scancel` every job of the batch, then stop: nothing of it stays queued or running.
        case cancel
    }

    /// Asked while `evaluate(_:)` waits (every ``interruptionCheckSeconds``, on the evaluating
    /// thread): a non-`nil` answer stops the wait, with `scancel` for `.cancel`, and `evaluate`
    /// throws `SlurmError.interrupted`. `nil` (the default): wait until every task has ended.
    public var interruption: (() -> Interruption?)?
    /// How often ``interruption`` is asked while waiting between two polls.
    public static let interruptionCheckSeconds = 0.1
    /// Called on the evaluating thread after every poll of a batch (its submissions and result
    /// files are then up to date): progress displays, a server recording the job ids.
    public var onPoll: ((SlurmBatch) -> Void)?

    /// Slurm job states after which a task will not run again.
    public static let terminalStates: Set<String> = [
        "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
        "DEADLINE", "PREEMPTED", "REVOKED", "SPECIAL_EXIT",
    ]

    /// - Parameter settings: validated here; throws `SlurmError.invalidSettings`.
    public init(settings: SlurmSettings, log: ((String) -> Void)? = nil) throws {
        try settings.validate()
        self.settings = settings
        self.log = log
    }

    /// The directory and files of the batch of `specs`.
    public func batch(for specs: [CandidateSpec]) -> SlurmBatch {
        SlurmBatch(specs: specs, sharedDirectory: settings.sharedDirectory)
    }

    /// Evaluates `specs` on the cluster and returns one result per spec, in the order of `specs`.
    /// Throws `SlurmError` only when the cluster cannot be used (sbatch fails, squeue keeps failing,
    /// the shared directory is not writable…).
    public func evaluate(_ specs: [CandidateSpec]) throws -> [CandidateResult] {
        if specs.isEmpty { return [] }
        let batch = try submit(specs)
        return try wait(for: specs, in: batch)
    }

    /// Writes the specs and submits the batch unless it was submitted before (then nothing is
    /// submitted, except candidates that have neither a result nor a submission). Does not wait.
    @discardableResult
    public func submit(_ specs: [CandidateSpec]) throws -> SlurmBatch {
        let ids = specs.map(\.id)
        let duplicates = Dictionary(grouping: ids, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted()
        if !duplicates.isEmpty { throw SlurmError.duplicateCandidateIDs(duplicates) }
        let batch = batch(for: specs)
        let fileManager = FileManager.default
        do {
            try fileManager.createDirectory(atPath: batch.logDirectory, withIntermediateDirectories: true)
        } catch {
            throw SlurmError.fileSystem(path: batch.logDirectory, reason: "cannot create the directory: \(error.localizedDescription)")
        }
        for spec in specs {
            let path = batch.specPath(spec.id)
            let data = try SlurmResultFile.encode(spec, path: path)
            if fileManager.contents(atPath: path) != data {
                try SlurmResultFile.writeAtomically(data, to: path)
            }
        }
        let submissions = try batch.submissions()
        let submitted = Set(submissions.flatMap(\.candidateIDs))
        let unsubmitted = ids.filter { !submitted.contains($0) && !fileManager.fileExists(atPath: batch.resultPath($0)) }
        if !unsubmitted.isEmpty {
            _ = try submitTasks(unsubmitted, kind: submissions.isEmpty ? .initial : .resume, batch: batch)
        } else if let last = submissions.last {
            log?("slurm: batch \(batch.key) was submitted before (job \(last.jobID)); resuming")
        }
        return batch
    }

    /// Cancels every job recorded for the batch of `specs` (`scancel`). Results already written stay.
    public func cancel(_ specs: [CandidateSpec]) throws {
        try cancel(batch(for: specs))
    }

    /// Cancels every job recorded for `batch` (`scancel`); returns their ids.
    @discardableResult
    public func cancel(_ batch: SlurmBatch) throws -> [String] {
        let jobIDs = Set(try batch.submissions().map(\.jobID)).sorted()
        if jobIDs.isEmpty { return [] }
        _ = try SlurmCommand.check(["scancel"] + jobIDs, timeout: settings.commandTimeoutSeconds)
        return jobIDs
    }

    // MARK: - Submission

    private var submittedJobIDs: Set<String> = []

    private func jobName(_ batch: SlurmBatch) -> String { "\(settings.jobName)-\(batch.key)" }

    /// Writes the sbatch script for `ids`, submits it as one array and records the job id.
    private func submitTasks(_ ids: [Int], kind: SlurmBatch.SubmissionKind, batch: SlurmBatch) throws -> SlurmBatch.Submission {
        let previous = try batch.submissions()
        let scriptPath = batch.scriptPath(previous.count + 1)
        try SlurmResultFile.writeAtomically(Data(script(for: ids, batch: batch).utf8), to: scriptPath)
        _ = chmod(scriptPath, 0o755)
        var arguments = [
            "sbatch", "--parsable", "--array=0-\(ids.count - 1)", "--job-name=\(jobName(batch))",
            "--output=\(batch.logDirectory)/%A_%a.out", "--error=\(batch.logDirectory)/%A_%a.err",
            "--time=\(settings.timeLimitMinutes)", "--cpus-per-task=\(settings.cpusPerTask)",
        ]
        if let partition = settings.partition { arguments.append("--partition=\(partition)") }
        arguments += settings.extraArguments
        arguments.append(scriptPath)
        let output = try SlurmCommand.check(arguments, timeout: settings.commandTimeoutSeconds)
        let firstLine = output.split(separator: "\n").first.map(String.init) ?? ""
        let jobID = String(firstLine.split(separator: ";").first ?? "").trimmingCharacters(in: .whitespaces)
        guard !jobID.isEmpty, jobID.allSatisfy(\.isNumber) else {
            throw SlurmError.unexpectedOutput(command: SlurmCommand.describe(arguments), output: output)
        }
        let submission = SlurmBatch.Submission(jobID: jobID, kind: kind, candidateIDs: ids)
        try batch.record(submission, after: previous)
        submittedJobIDs.insert(jobID)
        log?("slurm: submitted job \(jobID) (\(kind.rawValue), \(ids.count) task\(ids.count == 1 ? "" : "s"): candidates \(ids.map(String.init).joined(separator: ", ")))")
        return submission
    }

    /// The batch script: task `i` evaluates `ids[i]`; the result is renamed into place only when
    /// the worker exits 0, so the coordinator never reads a partial file.
    func script(for ids: [Int], batch: SlurmBatch) -> String {
        let worker = settings.workerCommand.map(SlurmCommand.shellQuote).joined(separator: " ")
        var lines = [
            "#!/bin/bash",
            "# Written by NASLab's SlurmExecutor for batch \(batch.key): array task i evaluates the i-th id.",
            "set -u",
            "BATCH_DIR=\(SlurmCommand.shellQuote(batch.directory))",
            "IDS=(\(ids.map(String.init).joined(separator: " ")))",
            "TASK=${SLURM_ARRAY_TASK_ID:?not running as a Slurm array task}",
            "ID=${IDS[$TASK]:?no candidate for array task $TASK}",
            "export NASLAB_WORKER=\"slurm-${SLURM_ARRAY_JOB_ID}_${TASK}\"",
            "SPEC=\"$BATCH_DIR/spec-$ID.json\"",
            "RESULT=\"$BATCH_DIR/result-$ID.json\"",
            "PARTIAL=\"$BATCH_DIR/.result-$ID.json.${SLURM_ARRAY_JOB_ID}_${TASK}.tmp\"",
        ]
        lines += settings.setupCommands
        lines += [
            "echo \"naslab: $NASLAB_WORKER evaluates candidate $ID on $(hostname) at $(date -u +%FT%TZ)\"",
            "rm -f \"$PARTIAL\"",
            "\(worker) \"$SPEC\" --output \"$PARTIAL\"",
            "STATUS=$?",
            "if [ $STATUS -ne 0 ]; then",
            "    rm -f \"$PARTIAL\"",
            "    echo \"naslab: the worker exited with status $STATUS\" >&2",
            "    exit $STATUS",
            "fi",
            "if [ ! -s \"$PARTIAL\" ]; then",
            "    echo \"naslab: the worker exited 0 but wrote no result to $PARTIAL\" >&2",
            "    exit 65",
            "fi",
            "mv -f \"$PARTIAL\" \"$RESULT\"",
            "",
        ]
        return lines.joined(separator: "\n")
    }

    // MARK: - Polling

    /// One task as `squeue` lists it.
    struct TaskState: Equatable {
        var state: String
        var reason: String
    }

    enum JobQuery: Equatable {
        /// Slurm does not know the job (never submitted here, purged, or the id now names another job).
        case unknown
        case known([Int: TaskState])
    }

    private var controllerFailingSince: Date?

    /// The job's array tasks, or `nil` after a transient failure of `squeue` (retried next poll).
    private func query(jobID: String, batch: SlurmBatch) throws -> JobQuery? {
        let arguments = ["squeue", "-h", "-r", "-j", jobID, "-t", "all", "-o", "%i %T %j %r"]
        let output: SlurmCommandOutput
        do {
            output = try SlurmCommand.run(arguments, timeout: settings.commandTimeoutSeconds)
        } catch let error as SlurmError {
            if case .commandTimedOut = error { return try transientFailure(arguments, error.description) }
            throw error
        }
        if output.exitCode != 0 {
            if output.standardError.contains("Invalid job id") { return noteControllerReachable(.unknown) }
            return try transientFailure(arguments, "exit status \(output.exitCode): \(output.standardError.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return noteControllerReachable(Self.parseQueue(output.standardOutput, jobID: jobID, jobName: jobName(batch)))
    }

    private func noteControllerReachable(_ query: JobQuery) -> JobQuery {
        controllerFailingSince = nil
        return query
    }

    private func transientFailure(_ arguments: [String], _ message: String) throws -> JobQuery? {
        let now = Date()
        let since = controllerFailingSince ?? now
        controllerFailingSince = since
        let elapsed = now.timeIntervalSince(since)
        if elapsed > settings.controllerToleranceSeconds {
            throw SlurmError.controllerUnreachable(command: SlurmCommand.describe(arguments), seconds: elapsed, lastError: message)
        }
        log?("slurm: squeue failed (\(message)); retrying")
        return nil
    }

    /// Parses `squeue -h -r -o '%i %T %j %r'` lines of job `jobID`; lines of other job names are ignored.
    static func parseQueue(_ text: String, jobID: String, jobName: String) -> JobQuery {
        var tasks: [Int: TaskState] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: true).map(String.init)
            guard fields.count >= 3, fields[2] == jobName else { continue }
            let parts = fields[0].split(separator: "_", maxSplits: 1).map(String.init)
            guard parts.count == 2, parts[0] == jobID else { continue }
            let state = TaskState(state: fields[1], reason: fields.count > 3 ? fields[3] : "")
            for task in expandTaskList(parts[1]) { tasks[task] = state }
        }
        return tasks.isEmpty ? .unknown : .known(tasks)
    }

    /// `7` → [7]; `[2-4,7%2]` → [2, 3, 4, 7].
    static func expandTaskList(_ text: String) -> [Int] {
        var body = Substring(text)
        if body.hasPrefix("["), body.hasSuffix("]") { body = body.dropFirst().dropLast() }
        if let percent = body.firstIndex(of: "%") { body = body[..<percent] }
        var result: [Int] = []
        for piece in body.split(separator: ",") {
            let bounds = piece.split(separator: "-").compactMap { Int($0) }
            if bounds.count == 1 {
                result.append(bounds[0])
            } else if bounds.count == 2, bounds[0] <= bounds[1] {
                result += Array(bounds[0]...bounds[1])
            }
        }
        return result
    }

    // MARK: - Waiting

    /// Polls until every candidate of `specs` has a result or a final failure.
    private func wait(for specs: [CandidateSpec], in batch: SlurmBatch) throws -> [CandidateResult] {
        let ids = specs.map(\.id)
        let start = Date()
        var results: [Int: CandidateResult] = [:]
        var seenJobs: Set<String> = []
        var completedWithoutResultSince: [Int: Date] = [:]
        var missingPolls: [Int: Int] = [:]

        while true {
            var submissions = try batch.submissions()
            for id in ids where results[id] == nil {
                if let result = try readResult(id, batch: batch, submissions: submissions) { results[id] = result }
            }
            let pending = ids.filter { results[$0] == nil }
            if pending.isEmpty { break }

            // Where each pending candidate runs now: its latest submission.
            var current: [Int: (submission: SlurmBatch.Submission, task: Int)] = [:]
            for submission in submissions {
                for (task, id) in submission.candidateIDs.enumerated() { current[id] = (submission, task) }
            }
            var queries: [String: JobQuery] = [:]
            for jobID in Set(pending.compactMap { current[$0]?.submission.jobID }).sorted() {
                if let query = try query(jobID: jobID, batch: batch) { queries[jobID] = query }
            }

            var failures: [(id: Int, reason: String)] = []
            var lost: [Int] = []
            let now = Date()
            for id in pending {
                guard let (submission, task) = current[id] else { lost.append(id); continue }
                let name = "\(submission.jobID)_\(task)"
                guard let query = queries[submission.jobID] else { continue }
                switch query {
                case .unknown:
                    if !submittedJobIDs.contains(submission.jobID) && !seenJobs.contains(submission.jobID) {
                        lost.append(id)
                    } else {
                        failures.append((id, "Slurm job \(submission.jobID) is no longer known to Slurm and task \(name) left no result"))
                    }
                case .known(let tasks):
                    seenJobs.insert(submission.jobID)
                    guard let taskState = tasks[task] else {
                        missingPolls[id, default: 0] += 1
                        if missingPolls[id]! >= 2 {
                            failures.append((id, "Slurm task \(name) is no longer listed and left no result (an array task CANCELLED while pending disappears from the queue)"))
                        }
                        continue
                    }
                    missingPolls[id] = 0
                    if taskState.state == "COMPLETED" {
                        let since = completedWithoutResultSince[id] ?? now
                        completedWithoutResultSince[id] = since
                        if now.timeIntervalSince(since) >= settings.resultGraceSeconds {
                            failures.append((id, "Slurm task \(name) ended COMPLETED but no result file appeared within \(Int(settings.resultGraceSeconds)) s (\(batch.resultPath(id)))"))
                        }
                    } else if Self.terminalStates.contains(taskState.state) {
                        failures.append((id, describeEnd(of: name, state: taskState)))
                    }
                }
            }

            if !lost.isEmpty {
                log?("slurm: the jobs of candidates \(lost.map(String.init).joined(separator: ", ")) are no longer known to Slurm; submitting them again")
                _ = try submitTasks(lost, kind: .resume, batch: batch)
            }
            var retry: [Int] = []
            submissions = try batch.submissions()
            for (id, reason) in failures {
                if let result = try readResult(id, batch: batch, submissions: submissions) {
                    results[id] = result
                    continue
                }
                let (submission, task) = current[id]!
                let worker = "slurm-\(submission.jobID)_\(task)"
                var reason = reason + standardErrorTail(batch: batch, jobID: submission.jobID, task: task)
                let retriesUsed = submissions.filter { $0.kind == .retry && $0.candidateIDs.contains(id) }.count
                if retriesUsed < settings.maxRetries {
                    log?("slurm: candidate \(id) failed (\(reason.prefix(200))); retry \(retriesUsed + 1) of \(settings.maxRetries)")
                    retry.append(id)
                } else {
                    if retriesUsed > 0 { reason += "\n(failed \(retriesUsed + 1) times; retries exhausted)" }
                    results[id] = .failed(id: id, reason: reason, worker: worker)
                }
                completedWithoutResultSince[id] = nil
                missingPolls[id] = nil
            }
            if !retry.isEmpty { _ = try submitTasks(retry, kind: .retry, batch: batch) }

            if let maxWaitMinutes = settings.maxWaitMinutes, Date().timeIntervalSince(start) > maxWaitMinutes * 60 {
                try giveUp(on: ids.filter { results[$0] == nil }, batch: batch, results: &results)
                break
            }
            onPoll?(batch)
            try sleepUntilNextPoll(batch: batch)
        }
        onPoll?(batch)
        return ids.map { results[$0]! }
    }

    /// Sleeps `pollIntervalSeconds`, asking ``interruption`` in between; an interruption cancels
    /// the batch's jobs (`.cancel`) and throws `SlurmError.interrupted`.
    private func sleepUntilNextPoll(batch: SlurmBatch) throws {
        let wakeUp = Date().addingTimeInterval(settings.pollIntervalSeconds)
        while true {
            if let interruption = interruption?() {
                var cancelled: [String] = []
                if interruption == .cancel {
                    cancelled = try cancel(batch)
                    log?("slurm: batch \(batch.key) cancelled (jobs \(cancelled.joined(separator: ", ")))")
                } else {
                    log?("slurm: stopped waiting for batch \(batch.key); its jobs stay with Slurm")
                }
                throw SlurmError.interrupted(batch: batch.key, cancelledJobs: cancelled)
            }
            let left = wakeUp.timeIntervalSinceNow
            if left <= 0 { return }
            Thread.sleep(forTimeInterval: min(left, Self.interruptionCheckSeconds))
        }
    }

    /// Cancels the unfinished tasks after `maxWaitMinutes` and records them as failed.
    private func giveUp(on ids: [Int], batch: SlurmBatch, results: inout [Int: CandidateResult]) throws {
        let submissions = try batch.submissions()
        var current: [Int: String] = [:]
        for submission in submissions {
            for (task, id) in submission.candidateIDs.enumerated() { current[id] = "\(submission.jobID)_\(task)" }
        }
        let tasks = ids.compactMap { current[$0] }
        if !tasks.isEmpty { _ = try? SlurmCommand.run(["scancel"] + tasks, timeout: settings.commandTimeoutSeconds) }
        for id in ids {
            if let result = try readResult(id, batch: batch, submissions: submissions) {
                results[id] = result
            } else {
                let task = current[id] ?? "?"
                results[id] = .failed(id: id, reason: "Slurm task \(task) did not finish within max_wait_minutes (\(settings.maxWaitMinutes ?? 0)); cancelled", worker: "slurm-\(task)")
            }
        }
    }

    /// The result of `id` if its file exists; the worker name is set to the Slurm task that wrote it.
    private func readResult(_ id: Int, batch: SlurmBatch, submissions: [SlurmBatch.Submission]) throws -> CandidateResult? {
        let path = batch.resultPath(id)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        var worker: String?
        for submission in submissions {
            if let task = submission.candidateIDs.firstIndex(of: id) { worker = "slurm-\(submission.jobID)_\(task)" }
        }
        do {
            var result = try SlurmResultFile.readResult(at: path)
            guard result.id == id else {
                return .failed(id: id, reason: "the result file \(path) is for candidate \(result.id), not \(id)", worker: worker ?? "slurm")
            }
            if let worker { result.worker = worker }
            return result
        } catch {
            return .failed(id: id, reason: "unreadable result file: \(error)", worker: worker ?? "slurm")
        }
    }

    /// "Slurm task 7_1 ended FAILED (NonZeroExitCode, exit code 3:0)".
    private func describeEnd(of task: String, state: TaskState) -> String {
        var details: [String] = []
        if !state.reason.isEmpty && state.reason != "None" { details.append(state.reason) }
        if let output = try? SlurmCommand.run(["scontrol", "show", "job", "-o", task], timeout: settings.commandTimeoutSeconds),
           output.exitCode == 0,
           let range = output.standardOutput.range(of: #"ExitCode=\S+"#, options: .regularExpression) {
            details.append("exit code " + output.standardOutput[range].dropFirst("ExitCode=".count))
        }
        return "Slurm task \(task) ended \(state.state)" + (details.isEmpty ? "" : " (\(details.joined(separator: ", ")))")
    }

    /// The last lines of the task's stderr log, prefixed by a newline, or a note that it is empty.
    private func standardErrorTail(batch: SlurmBatch, jobID: String, task: Int, maxLines: Int = 15, maxCharacters: Int = 2_000) -> String {
        let path = batch.standardErrorPath(jobID: jobID, task: task)
        guard let data = FileManager.default.contents(atPath: path) else { return "; no stderr log at \(path)" }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.isEmpty { return "; stderr (\(path)) is empty" }
        var tail = text.split(separator: "\n", omittingEmptySubsequences: false).suffix(maxLines).joined(separator: "\n")
        if tail.count > maxCharacters { tail = "…" + tail.suffix(maxCharacters) }
        return "; stderr tail (\(path)):\n\(tail)"
    }
}
