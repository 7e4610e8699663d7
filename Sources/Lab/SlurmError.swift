import Foundation

/// Why the Slurm executor itself cannot go on (a failed candidate is a `.failed` result instead).
public enum SlurmError: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// A Slurm client command (`sbatch`, `squeue`, …) is not on `PATH`.
    case commandNotFound(String)
    /// The command could not be started at all.
    case launchFailed(command: String, reason: String)
    /// The command did not finish within `seconds` and was killed.
    case commandTimedOut(command: String, seconds: Double)
    /// The command exited with a non-zero status.
    case commandFailed(command: String, exitCode: Int32, standardError: String)
    /// The command succeeded but printed something that cannot be understood.
    case unexpectedOutput(command: String, output: String)
    /// `squeue` kept failing for longer than `SlurmSettings.controllerToleranceSeconds`.
    case controllerUnreachable(command: String, seconds: Double, lastError: String)
    /// A setting is out of range (`field` names the setting).
    case invalidSettings(field: String, message: String)
    /// The batch contains the same candidate id more than once.
    case duplicateCandidateIDs([Int])
    /// A file in the shared directory cannot be written or read.
    case fileSystem(path: String, reason: String)
    /// `SlurmExecutor.interruption` stopped the wait for batch `batch`; `cancelledJobs` lists the
    /// jobs cancelled with `scancel` (empty when the jobs were left to Slurm for a later re-attach).
    case interrupted(batch: String, cancelledJobs: [String])

    public var description: String {
        switch self {
        case .commandNotFound(let name):
            return "Slurm: '\(name)' is not on PATH (install the Slurm client tools, or run on a login node)"
        case .launchFailed(let command, let reason):
            return "Slurm: cannot start '\(command)': \(reason)"
        case .commandTimedOut(let command, let seconds):
            return "Slurm: '\(command)' did not finish within \(Self.format(seconds)) s (is slurmctld reachable?)"
        case .commandFailed(let command, let exitCode, let standardError):
            let detail = standardError.trimmingCharacters(in: .whitespacesAndNewlines)
            return "Slurm: '\(command)' exited with status \(exitCode)" + (detail.isEmpty ? "" : ": \(detail)")
        case .unexpectedOutput(let command, let output):
            return "Slurm: '\(command)' printed unexpected output: \(output.prefix(500))"
        case .controllerUnreachable(let command, let seconds, let lastError):
            return "Slurm: '\(command)' kept failing for \(Self.format(seconds)) s; last error: \(lastError)"
        case .invalidSettings(let field, let message):
            return "Slurm settings: '\(field)' \(message)"
        case .duplicateCandidateIDs(let ids):
            return "Slurm: the batch contains candidate ids more than once: \(ids.map(String.init).joined(separator: ", "))"
        case .fileSystem(let path, let reason):
            return "Slurm: \(path): \(reason)"
        case .interrupted(let batch, let cancelledJobs):
            return cancelledJobs.isEmpty
                ? "Slurm: stopped waiting for batch \(batch); its jobs keep running (evaluating the same specs again re-attaches)"
                : "Slurm: batch \(batch) cancelled (scancel \(cancelledJobs.joined(separator: " ")))"
        }
    }

    public var errorDescription: String? { description }

    private static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(format: "%.1f", seconds)
    }
}
