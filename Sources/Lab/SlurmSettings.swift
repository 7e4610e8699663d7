import Foundation

/// How the Slurm executor submits candidate evaluations: the `executor: {kind: slurm, …}` section
/// of an experiment config. Every default is stated once, here; see `docs/slurm.md`.
///
/// ```swift
/// var settings = SlurmSettings(sharedDirectory: "/scratch/me/naslab")
/// settings.partition = "cpu"
/// settings.timeLimitMinutes = 30
/// let executor = try SlurmExecutor(settings: settings)
/// ```
public struct SlurmSettings: Equatable, Sendable {
    /// A directory that the coordinator and every compute node see under the same path
    /// (specs, results, sbatch scripts and logs go to `<sharedDirectory>/batches/<batch key>/`).
    public var sharedDirectory: String
    /// `--partition`; `nil` uses the cluster's default partition.
    public var partition: String? = nil
    /// `--time` in whole minutes for one candidate (Slurm enforces it with some delay).
    public var timeLimitMinutes: Int = 60
    /// `--cpus-per-task`; the worker should use as many compute threads.
    public var cpusPerTask: Int = 1
    /// Further `sbatch` arguments, e.g. `["--mem=4G", "--account=lab"]`.
    public var extraArguments: [String] = []
    /// How many times a failed task (failed, cancelled, timed out, no result…) is resubmitted.
    public var maxRetries: Int = 0
    /// Seconds between two `squeue` polls.
    public var pollIntervalSeconds: Double = 2
    /// The worker program and its first arguments; the executor appends `SPEC.json --output RESULT.json`.
    /// Default: this executable (`naslab`) followed by `evaluate`.
    public var workerCommand: [String] = SlurmSettings.defaultWorkerCommand()
    /// Shell lines run in the batch script before the worker, e.g. `module load swift`.
    public var setupCommands: [String] = []
    /// Prefix of the Slurm job name (`<jobName>-<batch key>`): letters, digits, `-`, `_`, `.`.
    public var jobName: String = "naslab"
    /// Time limit of one Slurm client command (`sbatch`, `squeue`, `scontrol`, `scancel`).
    public var commandTimeoutSeconds: Double = 60
    /// How long `squeue` may keep failing (controller down or restarting) before `evaluate` throws.
    public var controllerToleranceSeconds: Double = 300
    /// How long a task that Slurm reports `COMPLETED` may take to show its result file (shared
    /// file systems such as NFS may show new files late) before it counts as failed.
    public var resultGraceSeconds: Double = 30
    /// Optional bound on waiting for one batch; unfinished tasks are then cancelled and failed.
    public var maxWaitMinutes: Double? = nil

    public init(sharedDirectory: String) {
        self.sharedDirectory = sharedDirectory
    }

    /// `[<path of the running executable>, "evaluate"]`: the `naslab evaluate` subcommand.
    public static func defaultWorkerCommand() -> [String] {
        [currentExecutablePath(), "evaluate"]
    }

    /// The absolute path of the running executable (`/proc/self/exe` on Linux).
    static func currentExecutablePath() -> String {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            return path
        }
        let argument0 = CommandLine.arguments.first ?? "naslab"
        if argument0.hasPrefix("/") { return argument0 }
        if argument0.contains("/") {
            return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
                .appendingPathComponent(argument0).standardizedFileURL.path
        }
        return argument0
    }

    /// Throws `SlurmError.invalidSettings` for a value out of range.
    public func validate() throws {
        func invalid(_ field: String, _ message: String) -> SlurmError {
            .invalidSettings(field: field, message: message)
        }
        if sharedDirectory.isEmpty { throw invalid("shared_dir", "must not be empty") }
        if timeLimitMinutes < 1 { throw invalid("time_limit_minutes", "must be at least 1 (got \(timeLimitMinutes))") }
        if cpusPerTask < 1 { throw invalid("cpus_per_task", "must be at least 1 (got \(cpusPerTask))") }
        if maxRetries < 0 { throw invalid("max_retries", "must not be negative (got \(maxRetries))") }
        if !(pollIntervalSeconds > 0) { throw invalid("poll_interval_seconds", "must be positive (got \(pollIntervalSeconds))") }
        if workerCommand.isEmpty || workerCommand[0].isEmpty { throw invalid("worker_command", "must name a program") }
        if jobName.isEmpty || !jobName.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) {
            throw invalid("job_name", "may contain letters, digits, '-', '_' and '.' only (got '\(jobName)')")
        }
        if let partition, partition.isEmpty || partition.contains(where: \.isWhitespace) {
            throw invalid("partition", "must be a partition name (got '\(partition)')")
        }
        if !(commandTimeoutSeconds > 0) { throw invalid("command_timeout_seconds", "must be positive") }
        if controllerToleranceSeconds < 0 { throw invalid("controller_tolerance_seconds", "must not be negative") }
        if resultGraceSeconds < 0 { throw invalid("result_grace_seconds", "must not be negative") }
        if let maxWaitMinutes, !(maxWaitMinutes > 0) { throw invalid("max_wait_minutes", "must be positive") }
    }
}
