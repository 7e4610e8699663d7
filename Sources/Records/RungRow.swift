import Foundation
import HDF5Kit

/// One finished rung of a multi-fidelity search: a candidate trained (or continued) to `epochs`.
/// Unknown numbers are NaN; rows compare equal when every field is equal, NaN matching NaN.
public struct RungRow: Codable, Sendable, Equatable {
    public var candidateID: Int64
    /// The rung (0: the bottom, `min_epochs`).
    public var rung: Int64
    /// The epoch this rung's training started from: 0 for a candidate's first rung, the previous
    /// rung's `epochs` for a promoted one (it continues from its checkpoint, not from scratch).
    public var startEpoch: Int64
    /// The epochs the candidate has finished at the end of this rung.
    public var epochs: Int64
    public var status: CandidateStatus
    /// The validation value of the record's score metric at the end of the rung (`val_<metric>`).
    public var validationScore: Double
    /// The test value of the score metric at the end of the rung (`test_<metric>`).
    public var testScore: Double
    /// Wall-clock seconds of this rung's job (epochs `startEpoch + 1 … epochs` and evaluation).
    public var wallSeconds: Double
    public var worker: String

    public init(candidateID: Int64, rung: Int64, startEpoch: Int64, epochs: Int64, status: CandidateStatus,
                validationScore: Double = .nan, testScore: Double = .nan, wallSeconds: Double = .nan, worker: String = "") {
        self.candidateID = candidateID
        self.rung = rung
        self.startEpoch = startEpoch
        self.epochs = epochs
        self.status = status
        self.validationScore = validationScore
        self.testScore = testScore
        self.wallSeconds = wallSeconds
        self.worker = worker
    }

    public static func == (a: RungRow, b: RungRow) -> Bool {
        a.candidateID == b.candidateID && a.rung == b.rung && a.startEpoch == b.startEpoch && a.epochs == b.epochs
            && a.status == b.status && a.worker == b.worker
            && zip([a.validationScore, a.testScore, a.wallSeconds], [b.validationScore, b.testScore, b.wallSeconds])
                .allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
    }
}

extension ExperimentRecord {
    /// The columns of the `rungs` table of a record scored by `metric`.
    static func rungColumnNames(metric: String) -> [String] {
        ["candidate_id", "rung", "start_epoch", "epochs", "status", "val_" + metric, "test_" + metric, "wall_seconds", "worker"]
    }

    static func rungColumns(_ layout: RecordLayout) -> [HDF5Column] {
        [
            HDF5Column("candidate_id", .int64), HDF5Column("rung", .int64), HDF5Column("start_epoch", .int64),
            HDF5Column("epochs", .int64), HDF5Column("status", .string(capacity: 16)),
            HDF5Column("val_" + layout.scoreMetric, .float64), HDF5Column("test_" + layout.scoreMetric, .float64),
            HDF5Column("wall_seconds", .float64), HDF5Column("worker", .string(capacity: layout.workerCapacity)),
        ]
    }

    /// Appends one finished rung and flushes (the `rungs` table is created with the first row).
    public func appendRung(_ row: RungRow) throws {
        try locked {
            try requireWritable()
            guard row.worker.utf8.count <= layout.workerCapacity else {
                throw RecordError.invalidValue(path: path, detail: "candidate \(row.candidateID): worker has \(row.worker.utf8.count) bytes, the column holds \(layout.workerCapacity)")
            }
            if rungs == nil {
                rungs = try file.createTable("rungs", columns: ExperimentRecord.rungColumns(layout), chunkRows: 64, compressionLevel: 4)
            }
            try rungs!.append([
                .int(row.candidateID), .int(row.rung), .int(row.startEpoch), .int(row.epochs), .string(row.status.rawValue),
                .double(row.validationScore), .double(row.testScore), .double(row.wallSeconds), .string(row.worker),
            ])
            try file.flush()
        }
    }

    /// All complete rung rows in the order they were appended (empty for a record without rungs).
    public func readRungs() throws -> [RungRow] {
        try locked {
            guard let rungs else { return [] }
            return try rungs.readAll().compactMap { cells -> RungRow? in
                guard case let .string(statusText) = cells[4], let status = CandidateStatus(rawValue: statusText) else { return nil }
                func int(_ i: Int) -> Int64 { if case let .int(v) = cells[i] { return v }; return 0 }
                func double(_ i: Int) -> Double { if case let .double(v) = cells[i] { return v }; return .nan }
                let worker: String
                if case let .string(w) = cells[8] { worker = w } else { worker = "" }
                return RungRow(candidateID: int(0), rung: int(1), startEpoch: int(2), epochs: int(3), status: status,
                               validationScore: double(5), testScore: double(6), wallSeconds: double(7), worker: worker)
            }
        }
    }

    /// Drops trailing incomplete rung rows; returns each candidate's highest recorded epochs.
    func repairRungs() throws -> [HDF5Value: Int64] {
        guard let rungs else { return [:] }
        let rows = try rungs.readAll()
        var keep = rows.count
        while keep > 0, rows[keep - 1][4] == .string("") { keep -= 1 }
        if keep < rows.count { try rungs.resize(rowCount: keep) }
        var limits = [HDF5Value: Int64]()
        for row in rows.prefix(keep) {
            if case let .int(epochs) = row[3] { limits[row[0]] = max(limits[row[0]] ?? 0, epochs) }
        }
        return limits
    }

    /// Overwrites the row of candidate `row.id` (a multi-fidelity candidate trained further after
    /// its row was written), flushes and rewrites the live log.
    /// - Throws: ``RecordError/invalidValue(path:detail:)`` when the record has no row of that id.
    public func updateCandidate(_ row: CandidateRow) throws {
        try locked {
            try requireWritable()
            let rows = try readCandidates()
            guard let index = rows.firstIndex(where: { $0.id == row.id }) else {
                throw RecordError.invalidValue(path: path, detail: "no candidate \(row.id) to update")
            }
            try candidates.write(try cells(of: row), at: index)
            try file.flush()
            var updated = rows
            updated[index] = row
            try rewriteLiveLog(rows: updated)
        }
    }

    /// Replaces the multi-fidelity scheduler state (opaque JSON text, used to resume) and flushes.
    public func setSchedulerState(_ json: String) throws {
        try locked {
            try requireWritable()
            try replace("scheduler_state") { name in try file.writeString(name, json) }
        }
    }

    /// The last scheduler state, or `nil` when none was stored.
    public func schedulerState() throws -> String? {
        try locked {
            guard let name = current("scheduler_state") else { return nil }
            return try file.readString(name)
        }
    }
}
