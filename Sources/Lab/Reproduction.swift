import Engine
import Foundation
import Records

/// Process-wide compute settings, for tools that do not import the engine.
public enum EngineSettings {
    public static func setThreads(_ count: Int) { EngineConfiguration.setThreadCount(count) }
    public static var threads: Int { EngineConfiguration.threadCount }
}

/// Retrains a recorded candidate from everything stored in the record and compares.
public struct Reproduction {
    public var candidateID: Int64
    public var recorded: CandidateRow
    public var reproduced: CandidateResult
    public var weightsCompared: Bool
    public var maxWeightDifference: Float
    public var identical: Bool
    public var report: String

    /// - Parameters:
    ///   - candidateID: which candidate (default: the record's best).
    ///   - threads: compute threads (default: the record's); bit-identical results need the same count.
    public static func run(recordPath: String, candidateID: Int? = nil, threads: Int? = nil) throws -> Reproduction {
        let record = try ExperimentRecord.openReadOnly(path: recordPath)
        defer { try? record.close() }
        let config = try ExperimentConfig.parse(yaml: record.metadata.configYAML, file: "\(recordPath):/config_yaml")
        let rows = try record.readCandidates()
        let storedBest = try record.bestCandidateID()
        guard let id = candidateID.map(Int64.init) ?? storedBest else {
            throw LabError.invalid("\(recordPath): no best candidate recorded; pass --candidate ID")
        }
        guard let row = rows.first(where: { $0.id == id }) else {
            throw LabError.invalid("\(recordPath): no candidate \(id) (ids 0...\(rows.count - 1))")
        }
        guard row.status != .rejected else {
            throw LabError.invalid("\(recordPath): candidate \(id) was rejected (\(row.reason)); it was never trained")
        }
        guard config.evaluator.kind == "training" else {
            throw LabError.invalid("\(recordPath): a tabular search has nothing to retrain")
        }
        let threadCount = threads ?? (record.metadata.environment.threadCount / max(1, config.workers))
        EngineConfiguration.setThreadCount(max(1, threadCount))
        let spec = CandidateSpec(
            id: Int(id), architecture: row.architecture, spaceYAML: record.metadata.searchSpaceYAML, spaceName: config.space,
            dataset: config.dataset, validationSplit: config.validationSplit, datasetSeed: config.seed,
            training: config.training, seed: CandidateTraining.candidateSeed(experimentSeed: config.seed, candidateID: Int(id)),
            threads: threadCount)
        let directory = NSTemporaryDirectory() + "naslab-reproduce-\(ProcessInfo.processInfo.processIdentifier)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = CandidateTraining.evaluate(spec, datasets: DatasetCache(), weightsDirectory: directory, worker: "reproduce")
        var weightsCompared = false
        var maxDiff: Float = 0
        var sameWeights = true
        if (try record.bestCandidateID()) == id, let file = result.weightsFile {
            let stored = try record.bestWeights()
            let fresh = try WeightsFile.read(file)
            weightsCompared = true
            let freshByName = Dictionary(uniqueKeysWithValues: fresh.map { ($0.name, $0.values) })
            for t in stored {
                guard let v = freshByName[t.name], v.count == t.values.count else { sameWeights = false; continue }
                for i in v.indices { maxDiff = max(maxDiff, abs(v[i] - t.values[i])); if v[i] != t.values[i] { sameWeights = false } }
            }
        }
        let recordedStatus = row.status == .accepted ? "completed" : "failed"
        let sameMetrics = result.status.rawValue == recordedStatus
            && (result.validationAccuracy == row.validationAccuracy || (result.validationAccuracy.isNaN && row.validationAccuracy.isNaN))
            && (result.testAccuracy == row.testAccuracy || (result.testAccuracy.isNaN && row.testAccuracy.isNaN))
        let identical = sameMetrics && sameWeights
        var report = "candidate \(id): \(row.architecture)\n"
        report += "threads: \(threadCount) (record: \(record.metadata.environment.threadCount) for \(config.workers) worker(s))\n"
        report += String(format: "validation accuracy: recorded %.6f, reproduced %.6f (difference %.2e)\n",
                         row.validationAccuracy, result.validationAccuracy, result.validationAccuracy - row.validationAccuracy)
        report += String(format: "test accuracy:       recorded %.6f, reproduced %.6f (difference %.2e)\n",
                         row.testAccuracy, result.testAccuracy, result.testAccuracy - row.testAccuracy)
        if weightsCompared {
            report += "weights: \(sameWeights ? "bit-identical" : String(format: "differ (max |Δ| = %.3e)", maxDiff)) to the record's best weights\n"
        }
        report += identical ? "reproduced: identical" : "reproduced: DIFFERENT (same thread count and seed should give identical results)"
        return Reproduction(candidateID: id, recorded: row, reproduced: result, weightsCompared: weightsCompared,
                            maxWeightDifference: maxDiff, identical: identical, report: report)
    }
}
