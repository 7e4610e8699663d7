import Foundation
import HDF5Kit

/// The column layout of a record, fixed when it is created: string column sizes (UTF-8 bytes)
/// and the name of the task metric in the score columns (`val_<metric>`, `test_<metric>`).
public struct RecordLayout: Sendable, Equatable {
    public var architectureCapacity: Int
    public var hashCapacity: Int
    public var reasonCapacity: Int
    public var workerCapacity: Int
    /// The metric the candidates are scored by (`TaskKind.primaryMetric`: `accuracy`, `miou`, `map50`).
    public var scoreMetric: String

    public init(architectureCapacity: Int = 4096, hashCapacity: Int = 64, reasonCapacity: Int = 1024, workerCapacity: Int = 64,
                scoreMetric: String = "accuracy") {
        self.architectureCapacity = architectureCapacity
        self.hashCapacity = hashCapacity
        self.reasonCapacity = reasonCapacity
        self.workerCapacity = workerCapacity
        self.scoreMetric = scoreMetric
    }

    public static let standard = RecordLayout()
}

/// An HDF5 experiment record (`Results/<name>.h5`), written while a search runs.
///
/// Layout, crash safety and reading with h5py/pandas: see docs/records.md. The record is held in
/// memory while it is written and every append is followed by a flush that replaces the file on
/// disk atomically (``H5File/Persistence/atomicReplace``), so a killed process (even `kill -9`,
/// even in the middle of a flush) loses no finished candidate and leaves a complete file that
/// h5py opens — also while the search runs — and that ``open(path:)`` can extend (resume).
///
/// ```swift
/// let record = try ExperimentRecord.create(path: "Results/run.h5", metadata: metadata)
/// try record.appendEpochs([EpochRow(candidateID: 0, epoch: 1, trainLoss: 0.9, trainAccuracy: 0.7)])
/// try record.appendCandidate(CandidateRow(id: 0, architecture: text, hash: stableHash(text), status: .accepted))
/// try record.setSearcherState(json)
/// // later, to resume:
/// let again = try ExperimentRecord.open(path: "Results/run.h5")
/// let done = try again.readCandidates()
/// ```
///
/// Thread-safe: all methods may be called from any thread (HDF5 work is serialised).
public final class ExperimentRecord: @unchecked Sendable {
    /// The `format` root attribute of every record.
    public static let formatName = "naslab-experiment-record"
    /// The current `format_version`.
    public static let formatVersion = 1

    public let path: String
    public let isWritable: Bool
    /// The experiment metadata stored at creation.
    public let metadata: RecordMetadata
    /// The string column sizes of this record.
    public let layout: RecordLayout

    /// The JSON Lines live log written next to the record (see ``liveLogPath(forRecord:)``), if enabled.
    public let liveLogPath: String?

    let file: H5File
    let candidates: HDF5Table
    private var epochs: HDF5Table
    /// `reported`: extra values of candidates by name (a tabular benchmark's report columns);
    /// `nil` in a read-only record written before the table existed.
    private var reported: HDF5Table?
    /// `rungs`: one row per finished multi-fidelity rung (see `RungRow`); created on first use.
    var rungs: HDF5Table?
    let lock = NSRecursiveLock()

    /// The candidate table's columns for a record scored by `metric`.
    static func candidateColumnNames(metric: String) -> [String] {
        ["id", "architecture", "hash", "parent_id", "status", "reason", "params", "macs", "flops",
         "latency_ms_predicted", "latency_ms_measured", "val_" + metric, "test_" + metric, "epochs", "wall_seconds", "worker"]
    }
    /// The index of the validation score column (`val_<metric>`).
    static let validationScoreColumn = 11
    static let epochColumnNames = ["candidate_id", "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"]

    static func candidateColumns(_ layout: RecordLayout) -> [HDF5Column] {
        [
            HDF5Column("id", .int64), HDF5Column("architecture", .string(capacity: layout.architectureCapacity)),
            HDF5Column("hash", .string(capacity: layout.hashCapacity)), HDF5Column("parent_id", .int64),
            HDF5Column("status", .string(capacity: 16)), HDF5Column("reason", .string(capacity: layout.reasonCapacity)),
            HDF5Column("params", .float64), HDF5Column("macs", .float64), HDF5Column("flops", .float64),
            HDF5Column("latency_ms_predicted", .float64), HDF5Column("latency_ms_measured", .float64),
            HDF5Column("val_" + layout.scoreMetric, .float64), HDF5Column("test_" + layout.scoreMetric, .float64),
            HDF5Column("epochs", .int64), HDF5Column("wall_seconds", .float64),
            HDF5Column("worker", .string(capacity: layout.workerCapacity)),
        ]
    }

    static let reportedColumnNames = ["candidate_id", "name", "value"]
    static let reportedColumns = [
        HDF5Column("candidate_id", .int64), HDF5Column("name", .string(capacity: 64)), HDF5Column("value", .float64),
    ]

    static let epochColumns = [
        HDF5Column("candidate_id", .int64), HDF5Column("epoch", .int64), HDF5Column("train_loss", .float64),
        HDF5Column("train_accuracy", .float64), HDF5Column("val_loss", .float64), HDF5Column("val_accuracy", .float64),
    ]

    private init(file: H5File, metadata: RecordMetadata, layout: RecordLayout, candidates: HDF5Table, epochs: HDF5Table,
                 reported: HDF5Table?, liveLogPath: String?) {
        self.reported = reported
        self.file = file
        self.liveLogPath = liveLogPath
        self.path = file.path
        self.isWritable = file.isWritable
        self.metadata = metadata
        self.layout = layout
        self.candidates = candidates
        self.epochs = epochs
    }

    // MARK: Create and open

    /// Creates a new record and writes the metadata; the file is flushed before returning.
    /// - Parameters:
    ///   - path: the `.h5` file; its directory is created if missing.
    ///   - metadata: config, search space, seed, environment.
    ///   - layout: string column sizes (default ``RecordLayout/standard``).
    ///   - overwrite: replace an existing file (default `false`: an existing file is an error, so results are never clobbered).
    ///   - liveLog: also append every candidate to a JSON Lines file next to the record, for live
    ///     readers that want one line per candidate as it comes (the HDF5 file can be read too). Default `false`.
    public static func create(path: String, metadata: RecordMetadata, layout: RecordLayout = .standard,
                              overwrite: Bool = false, liveLog: Bool = false) throws -> ExperimentRecord {
        try wrappingHDF5 {
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty {
                try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            let file = try H5File.create(path: path, truncate: overwrite, persistence: .atomicReplace)
            try file.setAttribute("format", formatName)
            try file.setAttribute("format_version", formatVersion)
            try file.setAttribute("name", metadata.name)
            try file.setAttribute("seed", number: metadata.seed)
            try file.setAttribute("created_at", metadata.createdAt)
            try file.setAttribute("best_candidate_id", -1)
            try file.writeString("config_yaml", metadata.configYAML)
            try file.writeString("search_space_yaml", metadata.searchSpaceYAML)
            let environment = try file.createGroup("environment")
            let e = metadata.environment
            try environment.setAttribute("naslab_version", e.naslabVersion)
            try environment.setAttribute("git_commit", e.gitCommit)
            try environment.setAttribute("cpu_model", e.cpuModel)
            try environment.setAttribute("thread_count", e.threadCount)
            try environment.setAttribute("openblas_version", e.openBLASVersion)
            try environment.setAttribute("hdf5_version", e.hdf5Version)
            let candidates = try file.createTable("candidates", columns: candidateColumns(layout), chunkRows: 8, compressionLevel: 1)
            let epochs = try file.createTable("epochs", columns: epochColumns, chunkRows: 256, compressionLevel: 4)
            let reported = try file.createTable("reported", columns: reportedColumns, chunkRows: 64, compressionLevel: 4)
            try file.flush()
            let record = ExperimentRecord(file: file, metadata: metadata, layout: layout, candidates: candidates, epochs: epochs,
                                          reported: reported, liveLogPath: liveLog ? liveLogPath(forRecord: path) : nil)
            try record.rewriteLiveLog(rows: [])
            return record
        }
    }

    /// Opens an existing record to append to it (resume). Repairs what a crash may leave behind:
    /// trailing incomplete table rows are dropped and half-replaced objects are completed.
    /// With `liveLog`, the JSON Lines live log is rewritten from the record's candidate table.
    public static func open(path: String, liveLog: Bool = false) throws -> ExperimentRecord {
        try open(path: path, mode: .readWrite, liveLog: liveLog)
    }

    /// The live log of the record at `path`: `run.h5` → `run.live.jsonl`.
    public static func liveLogPath(forRecord path: String) -> String {
        let base = path.hasSuffix(".h5") ? String(path.dropLast(3)) : path
        return base + ".live.jsonl"
    }

    /// Opens an existing record for reading only.
    public static func openReadOnly(path: String) throws -> ExperimentRecord {
        try open(path: path, mode: .readOnly)
    }

    private static func open(path: String, mode: H5File.Mode, liveLog: Bool = false) throws -> ExperimentRecord {
        try wrappingHDF5 {
            let file = try H5File.open(path: path, mode: mode, persistence: .atomicReplace)
            guard file.hasAttribute("format"), (try? file.stringAttribute("format")) == formatName else {
                throw RecordError.notARecord(path: path, detail: "missing root attribute format = \"\(formatName)\"")
            }
            let version = try file.intAttribute("format_version")
            guard version <= formatVersion else {
                throw RecordError.notARecord(path: path, detail: "format_version \(version) is newer than supported (\(formatVersion))")
            }
            // A crash while the epochs table was being rewritten leaves it under its staged name.
            let epochsName = !file.exists("epochs") && file.exists("epochs_new") ? "epochs_new" : "epochs"
            for name in ["candidates", epochsName, "config_yaml", "search_space_yaml", "environment"] where !file.exists(name) {
                throw RecordError.corrupt(path: path, detail: "missing '/\(name)'")
            }
            let environment = try file.openGroup("environment")
            let metadata = RecordMetadata(
                name: try file.stringAttribute("name"),
                configYAML: try file.readString("config_yaml"),
                searchSpaceYAML: try file.readString("search_space_yaml"),
                seed: try file.numberAttribute("seed", as: UInt64.self),
                createdAt: try file.stringAttribute("created_at"),
                environment: RecordEnvironment(
                    naslabVersion: try environment.stringAttribute("naslab_version"),
                    gitCommit: try environment.stringAttribute("git_commit"),
                    cpuModel: try environment.stringAttribute("cpu_model"),
                    threadCount: try environment.intAttribute("thread_count"),
                    openBLASVersion: try environment.stringAttribute("openblas_version"),
                    hdf5Version: try environment.stringAttribute("hdf5_version")))
            let candidates = try file.openTable("candidates")
            let epochs = try file.openTable(epochsName)
            let names = candidates.columns.map(\.name)
            let scoreColumn = names.count > validationScoreColumn ? names[validationScoreColumn] : ""
            let metric = scoreColumn.hasPrefix("val_") ? String(scoreColumn.dropFirst(4)) : ""
            guard !metric.isEmpty, names == candidateColumnNames(metric: metric) else {
                throw RecordError.corrupt(path: path, detail: "unexpected candidate columns \(candidates.columns.map(\.name))")
            }
            guard epochs.columns.map(\.name) == epochColumnNames else {
                throw RecordError.corrupt(path: path, detail: "unexpected epoch columns \(epochs.columns.map(\.name))")
            }
            func capacity(_ name: String) -> Int {
                if case let .string(capacity)? = candidates.columns.first(where: { $0.name == name })?.kind { return capacity }
                return 0
            }
            let layout = RecordLayout(architectureCapacity: capacity("architecture"), hashCapacity: capacity("hash"),
                                      reasonCapacity: capacity("reason"), workerCapacity: capacity("worker"), scoreMetric: metric)
            // Records written before the `reported` table get it when opened for writing.
            var reported: HDF5Table?
            if file.exists("reported") {
                reported = try file.openTable("reported")
                guard reported?.columns.map(\.name) == reportedColumnNames else {
                    throw RecordError.corrupt(path: path, detail: "unexpected reported columns \(reported?.columns.map(\.name) ?? [])")
                }
            } else if mode == .readWrite {
                reported = try file.createTable("reported", columns: reportedColumns, chunkRows: 64, compressionLevel: 4)
            }
            let record = ExperimentRecord(file: file, metadata: metadata, layout: layout, candidates: candidates, epochs: epochs,
                                          reported: reported,
                                          liveLogPath: liveLog && mode == .readWrite ? liveLogPath(forRecord: path) : nil)
            if file.exists("rungs") {
                let rungs = try file.openTable("rungs")
                guard rungs.columns.map(\.name) == rungColumnNames(metric: metric) else {
                    throw RecordError.corrupt(path: path, detail: "unexpected rungs columns \(rungs.columns.map(\.name))")
                }
                record.rungs = rungs
            }
            if mode == .readWrite {
                try record.repair()
                try record.rewriteLiveLog(rows: try record.readCandidates())
            }
            return record
        }
    }

    /// Drops trailing incomplete rows and completes interrupted replacements.
    private func repair() throws {
        for name in ["pareto", "best", "searcher_state", "scheduler_state", "epochs"] {
            let staged = name + "_new"
            guard file.exists(staged) else { continue }
            if file.exists(name) { try discard(staged) } else { try file.move(staged, to: name) }
        }
        let candidateRows = try candidates.readAll()
        let statusIndex = ExperimentRecord.candidateColumnNames(metric: layout.scoreMetric).firstIndex(of: "status")!
        var keep = candidateRows.count
        while keep > 0, candidateRows[keep - 1][statusIndex] == .string("") { keep -= 1 }
        if keep < candidateRows.count { try candidates.resize(rowCount: keep) }
        var epochRows = try epochs.readAll()
        var keepEpochs = epochRows.count
        while keepEpochs > 0, epochRows[keepEpochs - 1][1] == .int(0) { keepEpochs -= 1 }
        if keepEpochs < epochRows.count {
            try epochs.resize(rowCount: keepEpochs)
            epochRows.removeLast(epochRows.count - keepEpochs)
        }
        // Epochs of a candidate whose row was never written come from an interrupted evaluation;
        // a resumed search evaluates that id again, so drop them (rewritten via a staged copy).
        // Multi-fidelity candidates keep the epochs of their recorded rungs (and no later ones:
        // those come from an interrupted rung, which is trained again).
        let finished = Set(candidateRows.prefix(keep).map { $0[0] })
        let rungLimits = try repairRungs()
        let kept = epochRows.filter { row in
            if let limit = rungLimits[row[0]], case let .int(epoch) = row[1] { return epoch <= limit }
            return finished.contains(row[0])
        }
        if kept.count < epochRows.count {
            try replace("epochs") { name in
                let table = try file.createTable(name, columns: ExperimentRecord.epochColumns, chunkRows: 256, compressionLevel: 4)
                try table.append(rows: kept)
                table.close()
            }
            epochs.close()
            epochs = try file.openTable("epochs")
        }
        // Reported values are appended just before their candidate's row: trailing values of a
        // candidate whose row was never written come from an interrupted evaluation.
        if let reported {
            let values = try reported.readAll()
            var keepValues = values.count
            while keepValues > 0, !finished.contains(values[keepValues - 1][0]) || values[keepValues - 1][1] == .string("") {
                keepValues -= 1
            }
            if keepValues < values.count { try reported.resize(rowCount: keepValues) }
        }
        try file.flush()
    }

    /// Replaces the live log with `rows` (write to a temporary file, then rename).
    func rewriteLiveLog(rows: [CandidateRow]) throws {
        guard let liveLogPath else { return }
        let text = rows.map { CandidateExport.jsonObject($0, metric: layout.scoreMetric) + "\n" }.joined()
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: liveLogPath), options: .atomic)
        } catch {
            throw RecordError.invalidValue(path: path, detail: "cannot write live log '\(liveLogPath)': \(error.localizedDescription)")
        }
    }

    /// Appends one line to the live log.
    private func appendLiveLog(_ row: CandidateRow) throws {
        guard let liveLogPath else { return }
        guard let handle = FileHandle(forWritingAtPath: liveLogPath) else {
            throw RecordError.invalidValue(path: path, detail: "cannot open live log '\(liveLogPath)'")
        }
        defer { try? handle.close() }
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: Data((CandidateExport.jsonObject(row, metric: layout.scoreMetric) + "\n").utf8))
        } catch {
            throw RecordError.invalidValue(path: path, detail: "cannot append to live log '\(liveLogPath)': \(error.localizedDescription)")
        }
    }

    /// Closes the file (further calls throw). Releasing the record also closes it.
    public func close() throws {
        lock.lock(); defer { lock.unlock() }
        rungs?.close()
        candidates.close()
        epochs.close()
        reported?.close()
        try wrappingHDF5 { try file.close() }
    }

    func requireWritable() throws {
        guard isWritable else { throw RecordError.readOnly(path: path) }
    }

    func locked<T>(_ body: () throws -> T) throws -> T {
        lock.lock(); defer { lock.unlock() }
        return try wrappingHDF5(body)
    }

    // MARK: Appending

    /// Appends one candidate row and flushes the file.
    /// - Throws: ``RecordError/invalidValue(path:detail:)`` if the architecture, hash or worker text is longer
    ///   than its column (the reason is truncated instead, ending in "…").
    public func appendCandidate(_ row: CandidateRow) throws {
        try locked {
            try requireWritable()
            try candidates.append(try cells(of: row))
            try file.flush()
            try appendLiveLog(row)
        }
    }

    /// `row` in column order, checked against the column sizes.
    func cells(of row: CandidateRow) throws -> [HDF5Value] {
        for (name, text, capacity) in [("architecture", row.architecture, layout.architectureCapacity),
                                       ("hash", row.hash, layout.hashCapacity),
                                       ("worker", row.worker, layout.workerCapacity)] where text.utf8.count > capacity {
            throw RecordError.invalidValue(path: path, detail: "candidate \(row.id): \(name) has \(text.utf8.count) bytes, the column holds \(capacity) (create the record with a larger RecordLayout)")
        }
        return [
            .int(row.id), .string(row.architecture), .string(row.hash), .int(row.parentID),
            .string(row.status.rawValue), .string(ExperimentRecord.truncated(row.reason, to: layout.reasonCapacity)),
            .double(row.params), .double(row.macs), .double(row.flops),
            .double(row.predictedLatencyMs), .double(row.measuredLatencyMs),
            .double(row.validationScore), .double(row.testScore),
            .int(row.epochs), .double(row.wallSeconds), .string(row.worker),
        ]
    }

    /// Appends values reported for a candidate under their own names (e.g. a tabular benchmark's
    /// other columns) and flushes. Call it before ``appendCandidate(_:)`` of that candidate: values
    /// of a candidate whose row is missing are dropped when the record is reopened.
    public func appendReported(candidateID: Int64, _ values: [(name: String, value: Double)]) throws {
        guard !values.isEmpty else { return }
        try locked {
            try requireWritable()
            guard let reported else { throw RecordError.readOnly(path: path) }
            if let long = values.first(where: { $0.name.utf8.count > 64 || $0.name.isEmpty }) {
                throw RecordError.invalidValue(path: path, detail: "reported name '\(long.name)' must have 1–64 bytes")
            }
            try reported.append(rows: values.map { [.int(candidateID), .string($0.name), .double($0.value)] })
            try file.flush()
        }
    }

    /// The reported values of every candidate (see ``appendReported(candidateID:_:)``) and their
    /// names in the order they first appear.
    public func readReported() throws -> (names: [String], values: [Int64: [String: Double]]) {
        try locked {
            guard let reported else { return ([], [:]) }
            var names = [String](), values = [Int64: [String: Double]]()
            for cells in try reported.readAll() {
                guard case let .int(id) = cells[0], case let .string(name) = cells[1], !name.isEmpty,
                      case let .double(value) = cells[2] else { continue }
                if !names.contains(name) { names.append(name) }
                values[id, default: [:]][name] = value
            }
            return (names, values)
        }
    }

    /// Appends training-curve rows (e.g. all epochs of one candidate) and flushes the file.
    public func appendEpochs(_ rows: [EpochRow]) throws {
        try locked {
            try requireWritable()
            if let bad = rows.first(where: { $0.epoch < 1 }) {
                throw RecordError.invalidValue(path: path, detail: "candidate \(bad.candidateID): epoch numbers start at 1, got \(bad.epoch)")
            }
            try epochs.append(rows: rows.map {
                [.int($0.candidateID), .int($0.epoch), .double($0.trainLoss), .double($0.trainAccuracy),
                 .double($0.validationLoss), .double($0.validationAccuracy)]
            })
            try file.flush()
        }
    }

    /// `text` cut to at most `capacity` UTF-8 bytes on a character boundary, ending in "…" when cut.
    static func truncated(_ text: String, to capacity: Int) -> String {
        guard text.utf8.count > capacity else { return text }
        var result = ""
        var bytes = 3 // "…"
        for character in text {
            let size = String(character).utf8.count
            if bytes + size > capacity { break }
            result.append(character)
            bytes += size
        }
        return result + "…"
    }

    /// Replaces `name` by a new version and flushes. The flush replaces the whole file at once
    /// (``H5File/Persistence/atomicReplace``), so a crash leaves either the old or the new version.
    /// (Records written in place by earlier versions staged the new version as `name_new`;
    /// ``open(path:)`` still completes such an interrupted swap.)
    func replace(_ name: String, write: (String) throws -> Void) throws {
        if file.exists(name) { try discard(name) }
        try write(name)
        try file.flush()
    }

    /// Deletes `name`; if HDF5 cannot free its space — a kill in the middle of a write can leave
    /// the file's free-space bookkeeping inconsistent ("can't insert free space") — renames it to
    /// `orphaned_<name>_<n>` instead (renaming frees nothing), so the record stays usable and only
    /// the orphan's bytes are lost.
    private func discard(_ name: String) throws {
        do {
            try file.remove(name)
        } catch {
            var n = 0
            while file.exists("orphaned_\(name)_\(n)") { n += 1 }
            try file.move(name, to: "orphaned_\(name)_\(n)")
        }
    }

    /// Replaces both Pareto fronts (candidate ids) and flushes.
    public func setParetoFronts(_ fronts: ParetoFronts) throws {
        try locked {
            try requireWritable()
            try replace("pareto") { name in
                let group = try file.createGroup(name)
                try group.write("accuracy_vs_latency", values: fronts.accuracyVsLatency)
                try group.write("accuracy_vs_params", values: fronts.accuracyVsParams)
            }
        }
    }

    /// Records the best candidate and its weights (named tensors, see HDF5Kit's `writeTensors`) and flushes.
    public func setBest(candidateID: Int64, tensors: [NamedTensor]) throws {
        try locked {
            try requireWritable()
            try replace("best") { name in
                let group = try file.createGroup(name)
                try group.setAttribute("candidate_id", Int(candidateID))
                try group.createGroup("weights").writeTensors(tensors)
            }
            try file.setAttribute("best_candidate_id", Int(candidateID))
            try file.flush()
        }
    }

    /// Replaces the searcher state (opaque JSON text, used to resume) and flushes.
    public func setSearcherState(_ json: String) throws {
        try locked {
            try requireWritable()
            try replace("searcher_state") { name in try file.writeString(name, json) }
        }
    }

    // MARK: Reading

    /// The number of candidate rows (including incomplete trailing rows of a crashed writer opened read-only).
    public var candidateCount: Int { lock.withLock { candidates.rowCount } }

    /// All complete candidate rows, in the order they were appended.
    public func readCandidates() throws -> [CandidateRow] {
        try locked {
            try candidates.readAll().compactMap { cells -> CandidateRow? in
                guard case let .string(statusText) = cells[4], !statusText.isEmpty else { return nil } // incomplete write
                guard let status = CandidateStatus(rawValue: statusText) else {
                    throw RecordError.corrupt(path: path, detail: "unknown candidate status '\(statusText)'")
                }
                func int(_ i: Int) -> Int64 { if case let .int(v) = cells[i] { return v }; return 0 }
                func double(_ i: Int) -> Double { if case let .double(v) = cells[i] { return v }; return .nan }
                func string(_ i: Int) -> String { if case let .string(v) = cells[i] { return v }; return "" }
                return CandidateRow(id: int(0), architecture: string(1), hash: string(2), parentID: int(3), status: status,
                                    reason: string(5), params: double(6), macs: double(7), flops: double(8),
                                    predictedLatencyMs: double(9), measuredLatencyMs: double(10),
                                    validationScore: double(11), testScore: double(12), epochs: int(13),
                                    wallSeconds: double(14), worker: string(15))
            }
        }
    }

    /// All complete epoch rows, optionally only those of one candidate.
    public func readEpochs(candidateID: Int64? = nil) throws -> [EpochRow] {
        try locked {
            try epochs.readAll().compactMap { cells -> EpochRow? in
                func int(_ i: Int) -> Int64 { if case let .int(v) = cells[i] { return v }; return 0 }
                func double(_ i: Int) -> Double { if case let .double(v) = cells[i] { return v }; return .nan }
                let row = EpochRow(candidateID: int(0), epoch: int(1), trainLoss: double(2), trainAccuracy: double(3),
                                   validationLoss: double(4), validationAccuracy: double(5))
                guard row.epoch > 0, candidateID == nil || row.candidateID == candidateID else { return nil }
                return row
            }
        }
    }

    /// Resolves `name`, falling back to a staged `name_new` left by an interrupted replacement.
    func current(_ name: String) -> String? {
        file.exists(name) ? name : (file.exists(name + "_new") ? name + "_new" : nil)
    }

    /// The stored Pareto fronts (empty when never set).
    public func paretoFronts() throws -> ParetoFronts {
        try locked {
            guard let name = current("pareto") else { return ParetoFronts(accuracyVsLatency: [], accuracyVsParams: []) }
            let group = try file.openGroup(name)
            return ParetoFronts(accuracyVsLatency: try group.read("accuracy_vs_latency", as: Int64.self).values,
                                accuracyVsParams: try group.read("accuracy_vs_params", as: Int64.self).values)
        }
    }

    /// The best candidate's id, or `nil` when none was set.
    public func bestCandidateID() throws -> Int64? {
        try locked {
            guard let name = current("best") else { return nil }
            return Int64(try file.openGroup(name).intAttribute("candidate_id"))
        }
    }

    /// The best candidate's weights (empty when none were set).
    public func bestWeights() throws -> [NamedTensor] {
        try locked {
            guard let name = current("best") else { return [] }
            return try file.openGroup(name + "/weights").readTensors()
        }
    }

    /// The last searcher state, or `nil` when none was stored.
    public func searcherState() throws -> String? {
        try locked {
            guard let name = current("searcher_state") else { return nil }
            return try file.readString(name)
        }
    }
}
