import Foundation

/// The files of one batch in the shared directory, `<shared>/batches/<key>/`:
///
/// - `spec-<id>.json`: one spec per candidate (written by the coordinator),
/// - `result-<id>.json`: one result per candidate (written by the worker's batch script by rename),
/// - `submit-<n>.sh`: the sbatch script of the n-th submission (task i evaluates its i-th id),
/// - `submissions.tsv`: one line per submission: `<job id> TAB <kind> TAB <id,id,…>`,
/// - `job-id`: the id of the latest Slurm job of the batch,
/// - `logs/<job>_<task>.out|err`: the tasks' standard output and error.
public struct SlurmBatch: Equatable, Sendable {
    /// Why a submission was made.
    public enum SubmissionKind: String, Sendable {
        /// The batch's first submission.
        case initial
        /// Failed tasks resubmitted (counts against `SlurmSettings.maxRetries`).
        case retry
        /// Tasks resubmitted after a restart because their job is no longer known to Slurm.
        case resume
    }

    /// One `sbatch` call: array task `i` evaluates `candidateIDs[i]`.
    public struct Submission: Equatable, Sendable {
        public var jobID: String
        public var kind: SubmissionKind
        public var candidateIDs: [Int]
    }

    /// `ids-<ids>-h<hash>`: the sorted ids (runs written as `a_b`) and a hash of the specs' JSON.
    public var key: String
    public var directory: String

    /// The batch of `specs` under `sharedDirectory`.
    ///
    /// The key depends only on the specs, so a restarted coordinator that asks for the same batch
    /// finds the same directory; the hash keeps two experiments with equal ids apart.
    public init(specs: [CandidateSpec], sharedDirectory: String) {
        key = Self.key(for: specs)
        directory = URL(fileURLWithPath: sharedDirectory).appendingPathComponent("batches")
            .appendingPathComponent(key).path
    }

    static func key(for specs: [CandidateSpec]) -> String {
        let sorted = specs.sorted { $0.id < $1.id }
        var parts: [String] = []
        var index = 0
        while index < sorted.count {
            var end = index
            while end + 1 < sorted.count, sorted[end + 1].id == sorted[end].id + 1 { end += 1 }
            parts.append(end > index ? "\(sorted[index].id)_\(sorted[end].id)" : "\(sorted[index].id)")
            index = end + 1
        }
        var ids = parts.joined(separator: "-")
        if ids.count > 100 {
            ids = "\(sorted.first!.id)_\(sorted.last!.id)-n\(sorted.count)"
        }
        // FNV-1a over the deterministic (sorted keys) JSON of the specs.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        let encoder = SlurmResultFile.makeEncoder()
        for spec in sorted {
            let data = (try? encoder.encode(spec)) ?? Data("\(spec.id)".utf8)
            for byte in data {
                hash ^= UInt64(byte)
                hash = hash &* 0x100_0000_01b3
            }
        }
        let hex = String(hash, radix: 16)
        return "ids-\(ids)-h\(String(repeating: "0", count: 16 - hex.count) + hex)".replacingOccurrences(of: "--", with: "-")
    }

    public func specPath(_ id: Int) -> String { directory + "/spec-\(id).json" }
    public func resultPath(_ id: Int) -> String { directory + "/result-\(id).json" }
    public var logDirectory: String { directory + "/logs" }
    public var jobIDPath: String { directory + "/job-id" }
    var submissionsPath: String { directory + "/submissions.tsv" }
    func scriptPath(_ number: Int) -> String { directory + "/submit-\(number).sh" }
    public func standardErrorPath(jobID: String, task: Int) -> String { logDirectory + "/\(jobID)_\(task).err" }
    public func standardOutputPath(jobID: String, task: Int) -> String { logDirectory + "/\(jobID)_\(task).out" }

    /// The submissions recorded so far, oldest first.
    public func submissions() throws -> [Submission] {
        guard FileManager.default.fileExists(atPath: submissionsPath) else { return [] }
        guard let text = try? String(contentsOfFile: submissionsPath, encoding: .utf8) else {
            throw SlurmError.fileSystem(path: submissionsPath, reason: "cannot read the file")
        }
        var result: [Submission] = []
        for (number, line) in text.split(separator: "\n").enumerated() where !line.isEmpty {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 3, let kind = SubmissionKind(rawValue: String(fields[1])) else {
                throw SlurmError.fileSystem(path: submissionsPath, reason: "line \(number + 1) is not '<job id>\\t<kind>\\t<ids>': \(line)")
            }
            let ids = fields[2].split(separator: ",").compactMap { Int($0) }
            result.append(Submission(jobID: String(fields[0]), kind: kind, candidateIDs: ids))
        }
        return result
    }

    /// Appends `submission` to `submissions.tsv` and writes `job-id` (both atomically).
    func record(_ submission: Submission, after previous: [Submission]) throws {
        let lines = (previous + [submission]).map {
            "\($0.jobID)\t\($0.kind.rawValue)\t\($0.candidateIDs.map(String.init).joined(separator: ","))\n"
        }
        try SlurmResultFile.writeAtomically(Data(lines.joined().utf8), to: submissionsPath)
        try SlurmResultFile.writeAtomically(Data((submission.jobID + "\n").utf8), to: jobIDPath)
    }
}
