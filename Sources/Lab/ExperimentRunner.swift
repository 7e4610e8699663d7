import Datasets
import Engine
import Estimators
import Foundation
import HDF5Kit
import NASCore
import Records
import Search
import Spaces

/// Errors of the runner that a user can act on.
public enum LabError: Error, CustomStringConvertible, Equatable {
    case recordExists(path: String)
    case configChanged(record: String, detail: String)
    case invalid(String)

    public var description: String {
        switch self {
        case let .recordExists(path):
            return "\(path) already exists: resume it with `naslab resume \(path)`, choose another --output, or pass --overwrite"
        case let .configChanged(record, detail):
            return "\(record): the config differs from the one the search started with (\(detail)); resume refuses to mix two experiments"
        case let .invalid(message):
            return message
        }
    }
}

/// What happens during a search, for progress displays and logs.
public protocol SearchObserver: AnyObject {
    func searchStarted(budget: Int, alreadyEvaluated: Int)
    func candidateStarted(id: Int, architecture: String)
    func candidateFinished(_ row: CandidateRow, evaluated: Int, budget: Int, best: CandidateRow?)
    func searchFinished(_ summary: SearchSummary)
}

/// The outcome of `ExperimentRunner.run()`.
public struct SearchSummary: Sendable {
    public var recordPath: String
    public var evaluated: Int
    public var rejected: Int
    public var failed: Int
    public var best: CandidateRow?
    public var stopReason: String
    public var wallSeconds: Double
    /// Wall time spent outside candidate evaluation (searcher, estimators, record), per evaluated candidate.
    public var overheadSecondsPerCandidate: Double
    public var evaluationSecondsPerCandidate: Double
}

/// Runs an experiment: asks the searcher, screens constraints with the estimators, evaluates the
/// feasible candidates (training or table lookup), records everything, tells the searcher.
///
/// Every candidate is written (and flushed) to the HDF5 record as soon as it is done, with the
/// searcher's state, so a killed search resumes where it stopped (`resume(recordPath:)`):
/// candidates recorded after the last saved state are replayed from the record, not re-run.
public final class ExperimentRunner {
    public let config: ExperimentConfig
    public let configYAML: String
    public let space: SpaceReference
    public let record: ExperimentRecord
    public var observers: [SearchObserver] = []
    /// Also time every feasible candidate's forward pass (batch 1) for the record and the Pareto front.
    public var measureLatency = true

    var searcher: AnySearcher
    let executor: CandidateExecutor?
    private let table: TabularBenchmark?
    private var reportTables: [(String, TabularBenchmark)] = []
    /// Values a tabular benchmark reports for candidates not yet recorded (the metric column and
    /// every `report_columns` entry under its own name), written just before their row.
    var pendingReported: [Int: [(name: String, value: Double)]] = [:]
    private var inputShape: FeatureShape
    private var inputKind: InputKind
    private var classCount: Int
    /// Rows already in the record (resume): replayed instead of re-run.
    private var recorded: [Int: CandidateRow] = [:]
    var rows: [CandidateRow] = []
    /// Final validation losses of the rows, for ``CandidateRanking``'s tie-break.
    var ranking = CandidateRanking()
    let weightsDirectory: String
    /// Multi-fidelity: the scheduler, the proposals it trains and what the searcher was told
    /// (`nil` without a `scheduler:` section); stored in the record after every batch.
    var fidelity: FidelityState?
    private var lastStateSave = Date.distantPast
    /// Zero-cost guidance (warm start, pre-screening) when the config names `proxies`.
    private var zeroCost: ZeroCostGuide?
    /// The training split the data-dependent proxies draw their mini-batch from.
    private var proxyData: LabeledArrays?
    private var latencyTable: LatencyTable?
    private var latencyTableChanged = false
    /// The machine's speed relative to the latency table's (``LatencyTable/currentSlowdown(protocol:timings:)``)
    /// and when it was measured; re-measured when older than ``latencySlowdownLifetime``.
    private var latencySlowdown: (value: Double, measured: Date)?
    static let latencySlowdownLifetime: TimeInterval = 30

    // MARK: Starting and resuming

    /// Starts a new search and creates its record.
    ///
    /// - Parameters:
    ///   - config: the parsed config (after command-line overrides).
    ///   - configYAML: the config as text, stored in the record (with the overrides applied).
    ///   - overwrite: replace an existing record (default: refuse).
    ///   - executor: where to train candidates (default: `LocalExecutor` with `config.workers`).
    public static func start(config: ExperimentConfig, configYAML: String, overwrite: Bool = false,
                             executor: CandidateExecutor? = nil) throws -> ExperimentRunner {
        let space = try SpaceReference.resolve(config.space)
        let path = config.outputPath
        if FileManager.default.fileExists(atPath: path), !overwrite { throw LabError.recordExists(path: path) }
        let environment = RecordEnvironment.detect(naslabVersion: NASLabVersion.current, gitCommit: gitCommit() ?? "",
                                                   openBLASVersion: openBLASVersion(), threadCount: config.threads)
        let metadata = RecordMetadata(name: config.name, configYAML: configYAML, searchSpaceYAML: space.yaml,
                                      seed: config.seed, environment: environment)
        let searcher = try AnySearcher(config.searchAlgorithm, space: space.space, seed: config.seed,
                                       maximumConsecutiveRejections: config.searcher.maxConsecutiveRejections)
        var layout = RecordLayout.standard
        layout.scoreMetric = space.space.task.primaryMetric
        let record = try ExperimentRecord.create(path: path, metadata: metadata, layout: layout, overwrite: overwrite, liveLog: true)
        do {
            let runner = try ExperimentRunner(config: config, configYAML: configYAML, space: space, record: record,
                                              searcher: searcher, executor: executor)
            try runner.startZeroCostGuidance()
            return runner
        } catch {
            // A search that cannot start (missing dataset, table, …) leaves no empty record behind
            // that would refuse the fixed config ("already exists") and fail to resume.
            try? record.close()
            try? FileManager.default.removeItem(atPath: path)
            try? FileManager.default.removeItem(atPath: ExperimentRecord.liveLogPath(forRecord: path))
            throw error
        }
    }

    /// Reopens a record and continues its search with the stored config, space and searcher state.
    ///
    /// - Parameter config: if given (e.g. the config file again), it must equal the stored one.
    public static func resume(recordPath: String, config expected: ExperimentConfig? = nil,
                              executor: CandidateExecutor? = nil) throws -> ExperimentRunner {
        let record = try ExperimentRecord.open(path: recordPath, liveLog: true)
        var config = try ExperimentConfig.parse(yaml: record.metadata.configYAML, file: "\(recordPath):/config_yaml")
        config.output = recordPath
        if var expected {
            expected.output = recordPath
            if expected != config { throw LabError.configChanged(record: recordPath, detail: expected.differenceSummary(from: config)) }
        }
        let space = try SpaceReference.fromText(record.metadata.searchSpaceYAML, name: config.space)
        let searcher: AnySearcher
        if let json = try record.searcherState() {
            let state = try JSONDecoder().decode(AnySearcher.State.self, from: Data(json.utf8))
            searcher = try AnySearcher(space: space.space, state: state)
        } else {
            searcher = try AnySearcher(config.searchAlgorithm, space: space.space, seed: config.seed,
                                       maximumConsecutiveRejections: config.searcher.maxConsecutiveRejections)
        }
        let runner = try ExperimentRunner(config: config, configYAML: record.metadata.configYAML, space: space,
                                          record: record, searcher: searcher, executor: executor)
        try runner.resumeZeroCostGuidance()
        let existing = try record.readCandidates()
        runner.rows = existing
        runner.ranking = CandidateRanking(epochs: try record.readEpochs())
        let covered = searcher.ledger.nextProposalID
        for row in existing where Int(row.id) >= covered { runner.recorded[Int(row.id)] = row }
        if runner.fidelity != nil, let json = try record.schedulerState() {
            // Multi-fidelity: the searcher and the scheduler resume from the same moment.
            let stored = try CandidateJSON.decoder().decode(StoredFidelityState.self, from: Data(json.utf8))
            runner.searcher = try AnySearcher(space: space.space, state: stored.searcher)
            runner.fidelity = stored.fidelity
        }
        return runner
    }

    private init(config: ExperimentConfig, configYAML: String, space: SpaceReference, record: ExperimentRecord,
                 searcher: AnySearcher, executor: CandidateExecutor?) throws {
        self.config = config
        self.configYAML = configYAML
        self.space = space
        self.record = record
        self.searcher = searcher
        self.weightsDirectory = ExperimentRunner.weightsDirectory(forRecord: config.outputPath)
        if let scheduler = config.scheduler { fidelity = FidelityState(scheduler: FidelityScheduler(try scheduler.schedule())) }
        if config.evaluator.kind == "tabular" {
            guard let path = config.evaluator.table else { throw LabError.invalid("a tabular evaluator needs a table") }
            let url = URL(fileURLWithPath: path)
            table = try TabularBenchmark(contentsOf: url, keyColumn: config.evaluator.keyColumn,
                                         metricColumn: config.evaluator.metricColumn)
            for column in config.evaluator.reportColumns {
                reportTables.append((column, try TabularBenchmark(contentsOf: url, keyColumn: config.evaluator.keyColumn,
                                                                  metricColumn: column)))
            }
            self.executor = nil
            (inputShape, inputKind, classCount) = ExperimentRunner.tabularInput
        } else {
            table = nil
            // The real (split, tokenized) dataset: a text dataset's shape and vocabulary exist only after tokenizing.
            let made = try executor ?? ExperimentRunner.makeExecutor(config, weightsDirectory: weightsDirectory)
            let data = try ((made as? LocalExecutor)?.datasets ?? DatasetCache())
                .dataset(config.dataset, validationSplit: config.validationSplit, seed: config.seed)
            if let named = TaskKind(rawValue: config.taskType), named != space.space.task {
                throw LabError.invalid("task_type \(config.taskType) does not match space '\(config.space)', a \(space.space.task) space")
            }
            guard space.space.task.accepts(data.metadata.inputKind) else {
                throw LabError.invalid("space '\(config.space)' is a \(space.space.task) space, but dataset '\(config.dataset)' holds "
                    + "\(TaskKind(inputKind: data.metadata.inputKind).inputDescription): use a \(TaskKind(inputKind: data.metadata.inputKind)) space")
            }
            inputShape = data.metadata.sampleShape
            inputKind = data.metadata.inputKind
            classCount = data.metadata.classCount
            proxyData = data.train
            self.executor = made
        }
    }

    // MARK: Zero-cost guidance

    private func makeZeroCostGuide() throws -> ZeroCostGuide? {
        let s = config.searcher
        guard !s.proxies.isEmpty else { return nil }
        let proxies = try s.proxies.map { name in
            guard let proxy = ZeroCostProxy(rawValue: name) else { throw LabError.invalid("unknown proxy '\(name)'") }
            return proxy
        }
        let settings = ZeroCostGuide.Settings(proxies: proxies, warmStart: s.warmStart, prescreenQuantile: s.prescreenQuantile,
                                              batchSize: s.proxyBatchSize, seed: s.proxySeed)
        return try ZeroCostGuide(settings: settings, space: space.space, spaceYAML: space.yaml, inputShape: inputShape,
                                 inputKind: inputKind, classCount: classCount, batchData: proxyData,
                                 datasetName: config.evaluator.kind == "tabular" ? nil : config.dataset)
    }

    /// A new search: scores the warm start, records it (`zero_cost` table) and hands the ranking
    /// to the searcher, whose state (with the ranking) is saved at once.
    private func startZeroCostGuidance() throws {
        guard let guide = try makeZeroCostGuide() else { return }
        zeroCost = guide
        let ranked = try guide.warmStart(seed: config.seed)
        try record.setZeroCostWarmStart(proxies: guide.settings.proxies.map(\.rawValue), rows: ranked.enumerated().map { rank, e in
            ZeroCostRow(architecture: e.text, hash: space.space.hash(of: e.architecture), values: e.values,
                        combined: e.combined, rank: Int64(rank))
        })
        searcher.setWarmStart(guide.searcherStart(ranked))
        try saveSearcherState(force: true)
    }

    /// A resumed search: the reference scores come back from the record (the searcher's state
    /// already holds what is left of the ranking).
    private func resumeZeroCostGuidance() throws {
        guard let guide = try makeZeroCostGuide() else { return }
        guard let stored = try record.zeroCostWarmStart() else {
            throw LabError.invalid("\(config.outputPath): the config asks for zero-cost guidance but the record holds no zero_cost warm start")
        }
        guide.restore(warmStartValues: stored.rows.map(\.values))
        zeroCost = guide
    }

    /// The input a tabular benchmark's spaces are costed and decoded at (NAS-Bench-201: CIFAR-10,
    /// 3×32×32, 10 classes): the runner's screening and `analyze`'s diagram use it.
    public static let tabularInput = (shape: FeatureShape(channels: 3, height: 32, width: 32), kind: InputKind.image, classes: 10)

    /// The executor the config asks for.
    static func makeExecutor(_ config: ExperimentConfig, weightsDirectory: String) throws -> CandidateExecutor {
        guard config.executor.kind == "slurm" else {
            return LocalExecutor(workers: config.workers, weightsDirectory: weightsDirectory)
        }
        return try SlurmExecutor(settings: slurmSettings(config))
    }

    /// The Slurm settings of a config's `executor:` section; jobs are named `naslab-<name>-<batch key>`.
    /// The one translation of the section (the CLI's searches and `naslab serve --executor slurm` use it).
    public static func slurmSettings(_ config: ExperimentConfig) -> SlurmSettings {
        config.executor.slurmSettings(jobName: "naslab-\(config.name)")
    }

    /// Compute threads for one candidate: Slurm tasks get their CPUs; local workers share `threads`.
    var threadsPerCandidate: Int {
        config.executor.kind == "slurm" ? config.executor.cpusPerTask : max(1, config.threads / max(1, config.workers))
    }

    /// Trained weights of a record's candidates are kept next to it: `run.h5` → `run.weights/`.
    public static func weightsDirectory(forRecord path: String) -> String {
        (path.hasSuffix(".h5") ? String(path.dropLast(3)) : path) + ".weights"
    }

    // MARK: Running

    struct Screened {
        var proposal: Proposal
        var text: String
        var row: CandidateRow
    }

    /// Runs until the budget, the wall-time limit or the searcher's own stop.
    public func run() throws -> SearchSummary {
        let start = Date()
        var evaluationSeconds = 0.0
        let deadline = config.budget.wallMinutes.map { start.addingTimeInterval($0 * 60) }
        var evaluated = rows.filter { $0.status != .rejected && recorded[Int($0.id)] == nil }.count
        let budget = config.budget.candidates
        if fidelity != nil { return try runWithScheduler(start: start, deadline: deadline) }
        for o in observers { o.searchStarted(budget: budget, alreadyEvaluated: evaluated) }
        var stopReason = "budget of \(budget) candidates reached"

        searchLoop: while evaluated < budget {
            if let deadline, Date() >= deadline {
                stopReason = "wall-time limit of \(config.budget.wallMinutes!) minutes reached"
                break
            }
            var batch = [Screened]()
            let wanted = min(config.workers, budget - evaluated)
            while batch.count < wanted {
                guard let proposal = searcher.ask() else { break }
                var screened = try screen(proposal)
                if let old = recorded[proposal.id] {
                    guard old.architecture == screened.text else {
                        throw LabError.invalid("record \(config.outputPath): candidate \(proposal.id) is '\(old.architecture)' but the restored searcher proposes '\(screened.text)'")
                    }
                    screened.row = old
                }
                if screened.row.status == .rejected {
                    if recorded[proposal.id] == nil { try commit(screened.row) }
                    searcher.tell(Observation(proposal, .rejected(reason: screened.row.reason)))
                    try saveSearcherState(force: false)
                    continue
                }
                batch.append(screened)
            }
            if batch.isEmpty {
                stopReason = searcher.stopReason?.description ?? "the searcher has no more proposals"
                break
            }
            let fresh = batch.filter { recorded[$0.proposal.id] == nil }
            for s in fresh { for o in observers { o.candidateStarted(id: s.proposal.id, architecture: s.text) } }
            let t0 = Date()
            let results = try evaluate(fresh)
            evaluationSeconds += Date().timeIntervalSince(t0)
            for var s in batch {
                if let old = recorded[s.proposal.id] {
                    s.row = old
                } else if let result = results[s.proposal.id] {
                    s.row = try complete(s.row, with: result)
                }
                let outcome: EvaluationOutcome = s.row.status == .accepted
                    ? .evaluated(objective: s.row.validationScore)
                    : .failed(reason: s.row.reason)
                searcher.tell(Observation(s.proposal, outcome))
                evaluated += 1
                for o in observers { o.candidateFinished(s.row, evaluated: evaluated, budget: budget, best: best) }
            }
            try saveSearcherState(force: false)
            if searcher.stopReason != nil, evaluated < budget {
                stopReason = searcher.stopReason!.description
                break searchLoop
            }
        }
        try saveSearcherState(force: true)
        return try finish(start: start, evaluationSeconds: evaluationSeconds, stopReason: stopReason)
    }

    /// Writes the Pareto fronts and the latency table, closes the record and reports the summary.
    func finish(start: Date, evaluationSeconds: Double, stopReason: String) throws -> SearchSummary {
        zeroCost?.saveCache()
        try record.setParetoFronts(paretoFronts())
        if latencyTableChanged, let latencyTable {
            let path = config.constraints.latencyTable
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty { try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            try latencyTable.save(path: path, mode: .addEntries)
        }
        let wall = Date().timeIntervalSince(start)
        let fresh = max(1, rows.filter { $0.status != .rejected }.count)
        let summary = SearchSummary(
            recordPath: config.outputPath, evaluated: rows.filter { $0.status != .rejected }.count,
            rejected: rows.filter { $0.status == .rejected }.count, failed: rows.filter { $0.status == .failed }.count,
            best: best, stopReason: stopReason, wallSeconds: wall,
            overheadSecondsPerCandidate: max(0, wall - evaluationSeconds) / Double(fresh),
            evaluationSecondsPerCandidate: evaluationSeconds / Double(fresh))
        try record.close()
        for o in observers { o.searchFinished(summary) }
        return summary
    }

    /// The best accepted candidate so far, in ``CandidateRanking``'s order (validation accuracy;
    /// ties: lower final validation loss, then lower id).
    public var best: CandidateRow? { ranking.best(rows) }

    /// Estimates the proposal's costs and checks the constraints; rejected rows carry the reason.
    func screen(_ proposal: Proposal) throws -> Screened {
        let text = space.space.text(of: proposal.architecture)
        var row = CandidateRow(id: Int64(proposal.id), architecture: text, hash: space.space.hash(of: proposal.architecture),
                               parentID: Int64(proposal.parentID ?? -1), status: .accepted)
        let graph: NetworkGraph
        do {
            graph = try space.space.network(for: proposal.architecture, inputShape: inputShape, inputKind: inputKind,
                                                  classCount: classCount)
            let cost = try graph.cost()
            row.params = Double(cost.parameters)
            row.macs = Double(cost.multiplyAccumulates)
            row.flops = Double(cost.flops)
        } catch {
            row.status = .failed
            row.reason = "cannot build the network: \(error)"
            return Screened(proposal: proposal, text: text, row: row)
        }
        let c = config.constraints
        var reasons = [String]()
        if let zeroCost {
            let evaluation = try zeroCost.evaluate(proposal.architecture)
            pendingReported[proposal.id] = zip(zeroCost.settings.proxies, evaluation.values).map { ("zero_cost_" + $0.rawValue, $1) }
                + [("zero_cost_combined", evaluation.combined)]
            if !zeroCost.passes(evaluation) {
                reasons.append(String(format: "zero-cost pre-screen: score %.4f < %.4f (quantile %g of the warm start)",
                                      evaluation.combined, zeroCost.threshold ?? .nan, config.searcher.prescreenQuantile ?? 0))
            }
        }
        if let maxParams = c.maxParams, row.params > Double(maxParams) {
            reasons.append("params \(Int(row.params)) > max_params \(maxParams)")
        }
        if let maxFlops = c.maxFlops, row.flops > maxFlops {
            reasons.append("flops \(Int(row.flops)) > max_flops \(Int(maxFlops))")
        }
        let needsLatency = c.maxLatencyMs != nil && reasons.isEmpty
        if table == nil || needsLatency {
            row.predictedLatencyMs = try predictedLatency(graph)
        }
        if (table == nil && measureLatency) || (needsLatency && c.latency == "measured") {
            row.measuredLatencyMs = try LatencyMeasurement.measure(graph, batchSize: 1, threads: threadsPerCandidate).medianMilliseconds
        }
        if let maxLatency = c.maxLatencyMs, reasons.isEmpty {
            let latency = c.latency == "measured" ? row.measuredLatencyMs : row.predictedLatencyMs
            if latency > maxLatency {
                reasons.append(String(format: "%@ latency %.3f ms > max_latency_ms %g", c.latency, latency, maxLatency))
            }
        }
        if !reasons.isEmpty {
            row.status = .rejected
            row.reason = reasons.joined(separator: "; ")
            row.epochs = 0
        }
        return Screened(proposal: proposal, text: text, row: row)
    }

    /// Predicted batch-1 latency from the kernel-level latency table (docs/latency.md) at the
    /// machine's current speed; kernels the table lacks are measured once and added.
    private func predictedLatency(_ graph: NetworkGraph) throws -> Double {
        if latencyTable == nil {
            let path = config.constraints.latencyTable
            if FileManager.default.fileExists(atPath: path), let loaded = try? LatencyTable.load(path: path, threads: threadsPerCandidate),
               loaded.machine.isCompatible(with: LatencyMachine.current(threadCount: threadsPerCandidate, batchSize: 1)) {
                latencyTable = loaded
            } else {
                latencyTable = LatencyTable.empty(threads: threadsPerCandidate, naslabVersion: NASLabVersion.current)
            }
        }
        let before = latencyTable!.entries.count
        if latencySlowdown == nil || Date().timeIntervalSince(latencySlowdown!.measured) > Self.latencySlowdownLifetime {
            latencySlowdown = (try latencyTable!.currentSlowdown(), Date())
        }
        let prediction = try latencyTable!.predict(graph, measuringMissing: true, slowdown: latencySlowdown!.value)
        if latencyTable!.entries.count != before { latencyTableChanged = true }
        return prediction.totalMilliseconds
    }

    /// Evaluates fresh candidates; returns results by candidate id.
    private func evaluate(_ batch: [Screened]) throws -> [Int: CandidateResult] {
        var results = [Int: CandidateResult]()
        var toTrain = [CandidateSpec]()
        for s in batch {
            if s.row.status == .failed {
                results[s.proposal.id] = .failed(id: s.proposal.id, reason: s.row.reason, worker: "")
                continue
            }
            if let table {
                let t0 = Date()
                if let value = table.lookup(s.text) {
                    // The metric column is the search metric (recorded as val_accuracy); a table has no
                    // separate test split, so test_accuracy stays unknown. Every column is also kept
                    // under its own name in the record's `reported` table.
                    var r = CandidateResult(id: s.proposal.id, status: .completed, validationScore: value, worker: "table")
                    var values = [(name: config.evaluator.metricColumn, value: value)]
                    for (column, report) in reportTables {
                        if let v = report.lookup(s.text) { values.append((column, v)) }
                    }
                    pendingReported[s.proposal.id, default: []] += values
                    r.wallSeconds = Date().timeIntervalSince(t0)
                    results[s.proposal.id] = r
                } else {
                    results[s.proposal.id] = .failed(id: s.proposal.id, reason: "not in the table", worker: "table")
                }
                continue
            }
            toTrain.append(CandidateSpec(
                id: s.proposal.id, architecture: s.text, spaceYAML: space.yaml, spaceName: config.space,
                dataset: config.dataset, validationSplit: config.validationSplit, datasetSeed: config.seed,
                training: config.training,
                seed: CandidateTraining.candidateSeed(experimentSeed: config.seed, candidateID: s.proposal.id),
                threads: threadsPerCandidate))
        }
        if !toTrain.isEmpty, let executor {
            for r in try executor.evaluate(toTrain) { results[r.id] = r }
            for spec in toTrain where results[spec.id] == nil {
                results[spec.id] = .failed(id: spec.id, reason: "the executor returned no result", worker: "")
            }
        }
        return results
    }

    /// Fills in a candidate's evaluation, records it (weights first if it is the new best).
    private func complete(_ screened: CandidateRow, with result: CandidateResult) throws -> CandidateRow {
        var row = screened
        row.status = result.status == .completed ? .accepted : .failed
        row.reason = result.reason ?? ""
        row.validationScore = result.validationScore
        row.testScore = result.testScore
        row.epochs = Int64(result.epochs.count)
        row.wallSeconds = result.wallSeconds
        row.worker = result.worker
        if row.status == .accepted, !result.reported.isEmpty {
            pendingReported[result.id, default: []] += result.reported.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
        }
        if row.status == .accepted, !row.validationScore.isFinite {
            row.status = .failed
            row.reason = "no validation \(TaskKind.metricLabel(space.space.task.primaryMetric))"
        }
        if let loss = result.epochs.last?.validationLoss, loss.isFinite { ranking.validationLoss[row.id] = loss }
        if row.status == .accepted, let file = result.weightsFile,
           best.map({ ranking.isBetter(row, than: $0) }) ?? true {
            try record.setBest(candidateID: row.id, tensors: WeightsFile.read(file))
        }
        if !result.epochs.isEmpty {
            try record.appendEpochs(result.epochs.map {
                EpochRow(candidateID: row.id, epoch: Int64($0.epoch + 1), trainLoss: $0.trainLoss, trainAccuracy: $0.trainAccuracy,
                         validationLoss: $0.validationLoss ?? .nan, validationAccuracy: $0.validationAccuracy ?? .nan)
            })
        }
        if let file = result.weightsFile, row.status == .accepted, row.id != (try record.bestCandidateID()) {
            try? FileManager.default.removeItem(atPath: file)
        }
        try commit(row)
        return row
    }

    func commit(_ row: CandidateRow) throws {
        if let values = pendingReported.removeValue(forKey: Int(row.id)) {
            try record.appendReported(candidateID: row.id, values)
        }
        try record.appendCandidate(row)
        rows.append(row)
    }

    /// Stores the searcher's state in the record: after every batch that took a while (training),
    /// otherwise at most once a second (table lookups), and at the end. Candidates recorded after
    /// the stored state are replayed on resume, so a less frequent save loses nothing.
    func saveSearcherState(force: Bool) throws {
        let now = Date()
        guard force || now.timeIntervalSince(lastStateSave) >= 1 else { return }
        lastStateSave = now
        let data = try JSONEncoder().encode(searcher.state)
        try record.setSearcherState(String(decoding: data, as: UTF8.self))
    }

    /// Non-dominated candidates: (validation accuracy ↑, latency ↓) and (validation accuracy ↑, params ↓).
    public func paretoFronts() -> ParetoFronts {
        let accepted = rows.filter { $0.status == .accepted }
        func front(_ cost: (CandidateRow) -> Double) -> [Int64] {
            paretoFront(accepted.map { ParetoPoint(id: $0.id, accuracy: $0.validationScore, cost: cost($0)) }).map(\.id)
        }
        return ParetoFronts(
            accuracyVsLatency: front { $0.measuredLatencyMs.isFinite ? $0.measuredLatencyMs : $0.predictedLatencyMs },
            accuracyVsParams: front { $0.params })
    }
}

extension ExperimentConfig.ExecutorSettings {
    /// These settings as the Slurm executor's (unset keys keep `SlurmSettings`' defaults); jobs
    /// are named `<jobName>-<batch key>`. Validated when the executor is made (`SlurmSettings.validate()`).
    public func slurmSettings(jobName: String) -> SlurmSettings {
        var settings = SlurmSettings(sharedDirectory: sharedDirectory ?? "")
        settings.partition = partition
        settings.timeLimitMinutes = timeLimitMinutes
        settings.cpusPerTask = cpusPerTask
        settings.extraArguments = extraArguments
        settings.maxRetries = maxRetries
        settings.jobName = jobName
        if let workerCommand { settings.workerCommand = workerCommand }
        return settings
    }
}

extension ExperimentConfig {
    /// The configured searcher.
    public var searchAlgorithm: SearchAlgorithm {
        switch searcher.kind {
        case "random": return .random(deduplicate: searcher.deduplicate)
        case "local_search": return .localSearch(initialSampleCount: searcher.initialSamples)
        default: return .regularizedEvolution(populationSize: searcher.populationSize, sampleSize: searcher.sampleSize,
                                              deduplicate: searcher.deduplicate)
        }
    }
}

public enum NASLabVersion {
    public static let current = "0.1.0"
}

/// OpenBLAS's own version string (`openblas_get_config`), e.g. "OpenBLAS 0.3.21 …".
func openBLASVersion() -> String { EngineConfiguration.blasDescription }

/// The commit of the git checkout around the current directory, if any (read from `.git`, no process spawned).
func gitCommit() -> String? {
    var dir = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    for _ in 0..<8 {
        let git = dir.appendingPathComponent(".git")
        var gitDir = git
        if let pointer = try? String(contentsOf: git, encoding: .utf8), pointer.hasPrefix("gitdir: ") {
            gitDir = URL(fileURLWithPath: pointer.dropFirst(8).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        if let head = try? String(contentsOf: gitDir.appendingPathComponent("HEAD"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines) {
            guard head.hasPrefix("ref: ") else { return head }
            let ref = String(head.dropFirst(5))
            let common = (try? String(contentsOf: gitDir.appendingPathComponent("commondir"), encoding: .utf8))
                .map { gitDir.appendingPathComponent($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? gitDir
            for base in [gitDir, common] {
                if let sha = try? String(contentsOf: base.appendingPathComponent(ref), encoding: .utf8) {
                    return sha.trimmingCharacters(in: .whitespacesAndNewlines)
                }
                if let packed = try? String(contentsOf: base.appendingPathComponent("packed-refs"), encoding: .utf8) {
                    for line in packed.split(separator: "\n") where line.hasSuffix(" " + ref) { return String(line.prefix(40)) }
                }
            }
            return nil
        }
        dir = dir.deletingLastPathComponent()
    }
    return nil
}
