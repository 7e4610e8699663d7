/// What happened to a candidate.
public enum CandidateStatus: String, Codable, Sendable, CaseIterable {
    /// Trained and evaluated.
    case accepted
    /// Not trained: rejected by a constraint (parameters, latency, memory …); see `reason`.
    case rejected
    /// Training or evaluation failed; see `reason`.
    case failed
}

/// One row of the candidate table: one evaluated (or rejected) architecture.
///
/// Unknown numbers are `Double.nan` (stored as NaN, exported as `null` in JSON and an empty CSV field).
/// Parameter, MAC and FLOP counts are stored as float64 so that they can be NaN (exact up to 2⁵³).
/// Two rows compare equal when every field is equal, NaN matching NaN.
public struct CandidateRow: Codable, Sendable, Equatable {
    public var id: Int64
    /// The architecture as text (e.g. its canonical JSON or YAML); at most the record's architecture capacity (UTF-8 bytes).
    public var architecture: String
    /// A stable hash of the architecture (e.g. NASCore's `stableHash`).
    public var hash: String
    /// The candidate it was derived from, or −1.
    public var parentID: Int64
    public var status: CandidateStatus
    /// Why it was rejected or failed ("" when accepted). Longer than the column: truncated, ending in "…".
    public var reason: String
    public var params: Double
    public var macs: Double
    public var flops: Double
    public var predictedLatencyMs: Double
    public var measuredLatencyMs: Double
    /// The validation value of the record's score metric (``RecordLayout/scoreMetric``: accuracy,
    /// mIoU or mAP@0.5), what searches rank by; column `val_<metric>`.
    public var validationScore: Double
    /// The test value of the score metric; column `test_<metric>`.
    public var testScore: Double
    /// Epochs trained (0 if not trained).
    public var epochs: Int64
    /// Wall-clock seconds spent on the candidate (estimation, training, evaluation).
    public var wallSeconds: Double
    /// Which worker evaluated it (e.g. `local-0`, a Slurm job id).
    public var worker: String

    public init(id: Int64, architecture: String, hash: String, parentID: Int64 = -1, status: CandidateStatus,
                reason: String = "", params: Double = .nan, macs: Double = .nan, flops: Double = .nan,
                predictedLatencyMs: Double = .nan, measuredLatencyMs: Double = .nan,
                validationScore: Double = .nan, testScore: Double = .nan, epochs: Int64 = 0,
                wallSeconds: Double = .nan, worker: String = "") {
        self.id = id
        self.architecture = architecture
        self.hash = hash
        self.parentID = parentID
        self.status = status
        self.reason = reason
        self.params = params
        self.macs = macs
        self.flops = flops
        self.predictedLatencyMs = predictedLatencyMs
        self.measuredLatencyMs = measuredLatencyMs
        self.validationScore = validationScore
        self.testScore = testScore
        self.epochs = epochs
        self.wallSeconds = wallSeconds
        self.worker = worker
    }

    var numbers: [Double] {
        [params, macs, flops, predictedLatencyMs, measuredLatencyMs, validationScore, testScore, wallSeconds]
    }

    public static func == (a: CandidateRow, b: CandidateRow) -> Bool {
        a.id == b.id && a.architecture == b.architecture && a.hash == b.hash && a.parentID == b.parentID
            && a.status == b.status && a.reason == b.reason && a.epochs == b.epochs && a.worker == b.worker
            && zip(a.numbers, b.numbers).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
    }
}

/// One epoch of one candidate's training curve. Unknown numbers are NaN.
public struct EpochRow: Codable, Sendable, Equatable {
    public var candidateID: Int64
    /// 1-based epoch number.
    public var epoch: Int64
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var validationLoss: Double
    public var validationAccuracy: Double

    public init(candidateID: Int64, epoch: Int64, trainLoss: Double, trainAccuracy: Double,
                validationLoss: Double = .nan, validationAccuracy: Double = .nan) {
        self.candidateID = candidateID
        self.epoch = epoch
        self.trainLoss = trainLoss
        self.trainAccuracy = trainAccuracy
        self.validationLoss = validationLoss
        self.validationAccuracy = validationAccuracy
    }

    public static func == (a: EpochRow, b: EpochRow) -> Bool {
        a.candidateID == b.candidateID && a.epoch == b.epoch
            && zip([a.trainLoss, a.trainAccuracy, a.validationLoss, a.validationAccuracy],
                   [b.trainLoss, b.trainAccuracy, b.validationLoss, b.validationAccuracy])
            .allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
    }
}

/// The two Pareto fronts kept in a record, as candidate ids.
public struct ParetoFronts: Codable, Sendable, Equatable {
    /// Non-dominated candidates for (validation accuracy ↑, latency ↓).
    public var accuracyVsLatency: [Int64]
    /// Non-dominated candidates for (validation accuracy ↑, parameters ↓).
    public var accuracyVsParams: [Int64]

    public init(accuracyVsLatency: [Int64], accuracyVsParams: [Int64]) {
        self.accuracyVsLatency = accuracyVsLatency
        self.accuracyVsParams = accuracyVsParams
    }
}
