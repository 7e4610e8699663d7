import Engine
import Foundation
import Records

/// The engine's process-level set-up, for tools that do not import the engine (thread counts are a
/// job's ``ComputeContext``, not a process setting).
public enum EngineSettings {
    /// Re-executes the program with OpenBLAS's optimised kernels when it fell back to generic ones
    /// (see `EngineConfiguration.relaunchWithOptimizedOpenBLASIfNeeded`); `NASLAB_GENERIC_BLAS=1` opts out.
    public static func relaunchWithOptimizedBLASIfNeeded() {
        guard ProcessInfo.processInfo.environment["NASLAB_GENERIC_BLAS"] != "1" else { return }
        EngineConfiguration.relaunchWithOptimizedOpenBLASIfNeeded()
    }
}

/// Retrains a recorded candidate from everything stored in the record and compares.
///
/// With the record's thread count the retrained candidate must be bit-identical (same metrics,
/// same weights). With another thread count (`threads:`) bit-identity is not expected — the
/// engine and OpenBLAS split floating-point sums differently — so the differences are reported
/// and the reproduction passes when the validation and test accuracy each differ by at most
/// `crossThreadAccuracyTolerance`.
public struct Reproduction {
    /// Largest |Δ| of validation or test accuracy accepted when the thread count differs from the
    /// record's (0.02 = 2 percentage points).
    public static let crossThreadAccuracyTolerance = 0.02

    public var candidateID: Int64
    public var recorded: CandidateRow
    public var reproduced: CandidateResult
    public var weightsCompared: Bool
    public var maxWeightDifference: Float
    /// Same status, bit-identical metrics and (when compared) weights.
    public var identical: Bool
    /// Threads used here, and the threads each candidate of the record was trained with.
    public var threads: Int
    public var recordedThreads: Int
    /// Largest |Δ| over the final validation and test accuracy.
    public var maxAccuracyDifference: Double
    /// Largest |Δ| over every compared metric (final accuracies and the per-epoch train/validation
    /// loss and accuracy).
    public var maxMetricDifference: Double
    /// The verdict: `identical` with the record's thread count; otherwise same status and
    /// `maxAccuracyDifference <= crossThreadAccuracyTolerance`.
    public var passed: Bool
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
        // The threads each candidate got (ExperimentRunner.threadsPerCandidate).
        let recordedThreads = config.executor.kind == "slurm"
            ? config.executor.cpusPerTask : max(1, record.metadata.environment.threadCount / max(1, config.workers))
        let threadCount = max(1, threads ?? recordedThreads)
        let sameThreads = threadCount == recordedThreads
        var training = config.training
        if let scheduler = config.scheduler { training.epochs = scheduler.maxEpochs }
        var spec = CandidateSpec(
            id: Int(id), architecture: row.architecture, spaceYAML: record.metadata.searchSpaceYAML, spaceName: config.space,
            dataset: config.dataset, validationSplit: config.validationSplit, datasetSeed: config.seed,
            training: training, seed: CandidateTraining.candidateSeed(experimentSeed: config.seed, candidateID: Int(id)),
            threads: threadCount)
        // Multi-fidelity: retrain from scratch, in one go, to the epochs the candidate reached
        // through its rungs, on the same max_epochs schedule (continued rungs must match it exactly).
        if config.scheduler != nil, row.epochs > 0 { spec.trainEpochs = Int(row.epochs) }
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
        let sameStatus = result.status.rawValue == recordedStatus
        func same(_ a: Double, _ b: Double) -> Bool { a == b || (a.isNaN && b.isNaN) }
        let sameMetrics = sameStatus && same(result.validationScore, row.validationScore)
            && same(result.testScore, row.testScore)
        let identical = sameMetrics && sameWeights

        // |Δ| per metric; NaN on one side only counts as infinitely different.
        func difference(_ a: Double, _ b: Double) -> Double {
            if a.isNaN && b.isNaN { return 0 }
            if a.isNaN || b.isNaN { return .infinity }
            return abs(a - b)
        }
        let accuracyDifferences = [("validation accuracy", difference(result.validationScore, row.validationScore)),
                                   ("test accuracy", difference(result.testScore, row.testScore))]
        var epochDifferences = [(String, Double)]()
        let recordedEpochs = (try? record.readEpochs(candidateID: id)) ?? []
        if !recordedEpochs.isEmpty {
            var worst = [("train loss", 0.0), ("train accuracy", 0.0), ("validation loss", 0.0), ("validation accuracy", 0.0)]
            for e in result.epochs {
                guard let r = recordedEpochs.first(where: { $0.epoch == Int64(e.epoch + 1) }) else { continue }
                let d = [difference(e.trainLoss, r.trainLoss), difference(e.trainAccuracy, r.trainAccuracy),
                         difference(e.validationLoss ?? .nan, r.validationLoss),
                         difference(e.validationAccuracy ?? .nan, r.validationAccuracy)]
                for i in worst.indices { worst[i].1 = max(worst[i].1, d[i]) }
            }
            epochDifferences = worst.map { ("per-epoch \($0.0)", $0.1) }
        }
        let maxAccuracyDifference = accuracyDifferences.map(\.1).max() ?? 0
        let maxMetricDifference = (accuracyDifferences + epochDifferences).map(\.1).max() ?? 0
        let withinTolerance = sameStatus && maxAccuracyDifference <= crossThreadAccuracyTolerance
        let passed = sameThreads ? identical : (identical || withinTolerance)

        var report = "candidate \(id): \(row.architecture)\n"
        report += "threads: \(threadCount) (record: \(recordedThreads) per candidate; \(record.metadata.environment.threadCount) for \(config.workers) worker(s))\n"
        if !sameThreads {
            report += "note: the thread count differs from the record's, so bit-identical results are not expected (floating-point sums "
                + "are split differently); the reproduction passes when validation and test accuracy each differ by at most "
                + "\(crossThreadAccuracyTolerance) (rerun with --threads \(recordedThreads) to check bit for bit)\n"
        }
        report += String(format: "validation accuracy: recorded %.6f, reproduced %.6f (difference %.2e)\n",
                         row.validationScore, result.validationScore, result.validationScore - row.validationScore)
        report += String(format: "test accuracy:       recorded %.6f, reproduced %.6f (difference %.2e)\n",
                         row.testScore, result.testScore, result.testScore - row.testScore)
        if !sameStatus {
            report += "status: recorded \(recordedStatus), reproduced \(result.status.rawValue)\(result.reason.map { " (\($0))" } ?? "")\n"
        }
        if weightsCompared {
            report += "weights: \(sameWeights ? "bit-identical" : String(format: "differ (max |Δ| = %.3e)", maxDiff)) to the record's best weights\n"
        }
        if !identical {
            let parts = (accuracyDifferences + epochDifferences).map { String(format: "%@ %.3e", $0.0, $0.1) }
            report += String(format: "max |Δ| of metrics: %.3e (%@)\n", maxMetricDifference, parts.joined(separator: ", "))
        }
        if identical {
            report += sameThreads ? "reproduced: identical" : "reproduced: identical (bit for bit, even with another thread count)"
        } else if sameThreads {
            report += "reproduced: DIFFERENT (same thread count and seed should give identical results)"
        } else if passed {
            report += String(format: "reproduced: within tolerance (max |Δ| of validation/test accuracy %.4f ≤ %g; not bit-identical, as expected with another thread count)",
                             maxAccuracyDifference, crossThreadAccuracyTolerance)
        } else if !sameStatus {
            report += "reproduced: DIFFERENT (the candidate \(recordedStatus == "completed" ? "completed" : "failed") in the record but \(result.status.rawValue == "completed" ? "completed" : "failed") here)"
        } else {
            report += String(format: "reproduced: DIFFERENT beyond tolerance (max |Δ| of validation/test accuracy %.4f > %g)",
                             maxAccuracyDifference, crossThreadAccuracyTolerance)
        }
        return Reproduction(candidateID: id, recorded: row, reproduced: result, weightsCompared: weightsCompared,
                            maxWeightDifference: maxDiff, identical: identical, threads: threadCount, recordedThreads: recordedThreads,
                            maxAccuracyDifference: maxAccuracyDifference, maxMetricDifference: maxMetricDifference,
                            passed: passed, report: report)
    }
}
