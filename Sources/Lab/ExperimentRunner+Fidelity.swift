import Engine
import Foundation
import NASCore
import Records
import Search

/// A candidate a multi-fidelity search trains: its proposal and its candidate row so far (the
/// screening's costs, then the result of its highest finished rung).
struct FidelityCandidate: Codable, Sendable {
    var proposal: Proposal
    var row: CandidateRow
    /// Values the task reports besides its primary metric, at the highest finished rung.
    var reported: [String: Double] = [:]
    /// The weights file of the highest finished rung (local: in the record's weights directory;
    /// Slurm: in the shared directory).
    var weightsFile: String?
}

/// What a multi-fidelity search stores in its record (`scheduler_state`) after every batch of
/// jobs, to resume in the middle of a bracket.
struct FidelityState: Codable, Sendable {
    var scheduler: FidelityScheduler
    var candidates: [Int: FidelityCandidate] = [:]
    /// Candidates the searcher was told about (once each).
    var told: Set<Int> = []

    init(scheduler: FidelityScheduler) { self.scheduler = scheduler }
}

/// The JSON of the record's `scheduler_state`: the searcher's state saved at the same moment,
/// so that both resume together.
struct StoredFidelityState: Codable {
    var searcher: AnySearcher.State
    var fidelity: FidelityState
}

extension ExperimentRunner {
    /// The training checkpoint that carries a candidate from one rung to the next: next to the
    /// record's weights (`run.weights/candidate-<id>.checkpoint.h5`), or in the Slurm shared
    /// directory (`<shared_dir>/checkpoints/<name>/…`) so that cluster tasks can read it.
    func checkpointPath(candidateID id: Int) -> String {
        let file = "candidate-\(id).checkpoint.h5"
        if config.executor.kind == "slurm", let shared = config.executor.sharedDirectory {
            return (((shared as NSString).appendingPathComponent("checkpoints") as NSString)
                .appendingPathComponent(config.name) as NSString).appendingPathComponent(file)
        }
        return (weightsDirectory as NSString).appendingPathComponent(file)
    }

    /// Stores the scheduler and searcher states together (and the searcher's alone, for readers
    /// of `searcher_state`).
    func saveFidelityState() throws {
        guard let fidelity else { return }
        let stored = StoredFidelityState(searcher: searcher.state, fidelity: fidelity)
        try record.setSchedulerState(String(decoding: try CandidateJSON.encoder().encode(stored), as: UTF8.self))
        try saveSearcherState(force: true)
    }

    /// The search loop with a scheduler: the scheduler hands out up to `workers` jobs (new
    /// candidates, which the searcher proposes, or promotions), they are trained as one batch, each
    /// finished rung is recorded, and the candidates the scheduler releases are recorded and told
    /// to the searcher. The state is stored after every batch; on resume, rungs and rows already in
    /// the record are replayed, not retrained.
    func runWithScheduler(start: Date, deadline: Date?) throws -> SearchSummary {
        guard var state = fidelity, let settings = config.scheduler else { throw LabError.invalid("no scheduler configured") }
        let budget = config.budget.candidates
        var rowsByID = Dictionary(rows.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var rungRows = [String: RungRow]()
        for r in try record.readRungs() { rungRows["\(r.candidateID)/\(r.rung)"] = r }
        var training = config.training
        training.epochs = settings.maxEpochs
        var evaluationSeconds = 0.0
        var searcherStopped = false
        for o in observers { o.searchStarted(budget: budget, alreadyEvaluated: state.told.count) }

        /// Records a released candidate's row (or updates it after a later promotion), keeps its
        /// weights if it is the best, tells the searcher once.
        func release(_ released: FidelityRelease) throws {
            let id = released.candidateID
            guard let candidate = state.candidates[id] else { return }
            let row = candidate.row
            let old = rowsByID[row.id]
            if old != row {
                let weights = candidate.weightsFile ?? (weightsDirectory as NSString).appendingPathComponent("candidate-\(id).h5")
                if row.status == .accepted, FileManager.default.fileExists(atPath: weights),
                   best.map({ $0.id == row.id || ranking.isBetter(row, than: $0) }) ?? true {
                    try record.setBest(candidateID: row.id, tensors: WeightsFile.read(weights))
                }
                if old == nil {
                    if !candidate.reported.isEmpty {
                        pendingReported[id] = candidate.reported.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
                    }
                    try commit(row)
                } else {
                    try record.updateCandidate(row)
                    if let i = rows.firstIndex(where: { $0.id == row.id }) { rows[i] = row }
                }
                rowsByID[row.id] = row
                if row.id != (try record.bestCandidateID()) { try? FileManager.default.removeItem(atPath: weights) }
            }
            if released.isFinal { try? FileManager.default.removeItem(atPath: checkpointPath(candidateID: id)) }
            if !state.told.contains(id) {
                let outcome: EvaluationOutcome = row.status == .accepted
                    ? .evaluated(objective: row.validationScore) : .failed(reason: row.reason)
                searcher.tell(Observation(candidate.proposal, outcome))
                state.told.insert(id)
                for o in observers { o.candidateFinished(row, evaluated: state.told.count, budget: budget, best: best) }
            }
        }

        var stopReason = "budget of \(budget) candidates reached"
        searchLoop: while true {
            if let deadline, Date() >= deadline {
                stopReason = "wall-time limit of \(config.budget.wallMinutes!) minutes reached"
                break
            }
            var jobs = [FidelityDecision]()
            while jobs.count < config.workers {
                var admitted: FidelityCandidate?
                let started = state.scheduler.startedCount
                let decision = try state.scheduler.next(newCandidate: { () throws -> Int? in
                    guard started < budget else { return nil }
                    while true {
                        guard let proposal = searcher.ask() else {
                            searcherStopped = true
                            return nil
                        }
                        var screened = try screen(proposal)
                        if let old = rowsByID[Int64(proposal.id)] {
                            guard old.architecture == screened.text else {
                                throw LabError.invalid("record \(config.outputPath): candidate \(proposal.id) is '\(old.architecture)' but the restored searcher proposes '\(screened.text)'")
                            }
                            if old.status == .rejected { screened.row = old }
                        }
                        if screened.row.status == .rejected {
                            if rowsByID[screened.row.id] == nil {
                                try commit(screened.row)
                                rowsByID[screened.row.id] = screened.row
                            }
                            searcher.tell(Observation(proposal, .rejected(reason: screened.row.reason)))
                            continue
                        }
                        admitted = FidelityCandidate(proposal: proposal, row: screened.row)
                        return proposal.id
                    }
                })
                if let admitted { state.candidates[admitted.proposal.id] = admitted }
                for released in state.scheduler.takeReleased() { try release(released) }
                guard let decision else { break }
                jobs.append(decision)
            }
            if jobs.isEmpty {
                if searcherStopped { stopReason = searcher.stopReason?.description ?? "the searcher has no more proposals" }
                break
            }

            // Train what the record does not hold yet.
            var specs = [CandidateSpec]()
            for job in jobs where rungRows["\(job.candidateID)/\(job.rung)"] == nil {
                guard let candidate = state.candidates[job.candidateID], candidate.row.status != .failed else { continue }
                if case .start = job { for o in observers { o.candidateStarted(id: job.candidateID, architecture: candidate.row.architecture) } }
                var spec = CandidateSpec(
                    id: job.candidateID, architecture: candidate.row.architecture, spaceYAML: space.yaml, spaceName: config.space,
                    dataset: config.dataset, validationSplit: config.validationSplit, datasetSeed: config.seed, training: training,
                    seed: CandidateTraining.candidateSeed(experimentSeed: config.seed, candidateID: job.candidateID),
                    threads: threadsPerCandidate)
                spec.trainEpochs = job.epochs
                spec.checkpointPath = checkpointPath(candidateID: job.candidateID)
                specs.append(spec)
            }
            var results = [Int: CandidateResult]()
            if !specs.isEmpty, let executor {
                let t0 = Date()
                for r in try executor.evaluate(specs) { results[r.id] = r }
                evaluationSeconds += Date().timeIntervalSince(t0)
            }

            for job in jobs {
                let id = job.candidateID
                guard var candidate = state.candidates[id] else { continue }
                let key = "\(id)/\(job.rung)"
                let rung: RungRow
                if let recorded = rungRows[key] {
                    rung = recorded
                } else {
                    let result = results[id]
                        ?? .failed(id: id, reason: candidate.row.status == .failed ? candidate.row.reason : "the executor returned no result",
                                   worker: "")
                    var status: CandidateStatus = result.status == .completed ? .accepted : .failed
                    var reason = result.reason ?? ""
                    if status == .accepted, !result.validationScore.isFinite {
                        status = .failed
                        reason = "no validation \(TaskKind.metricLabel(space.space.task.primaryMetric))"
                    }
                    let fresh = result.epochs.filter { $0.epoch >= job.startEpochs }
                    if !fresh.isEmpty {
                        try record.appendEpochs(fresh.map {
                            EpochRow(candidateID: Int64(id), epoch: Int64($0.epoch + 1), trainLoss: $0.trainLoss, trainAccuracy: $0.trainAccuracy,
                                     validationLoss: $0.validationLoss ?? .nan, validationAccuracy: $0.validationAccuracy ?? .nan)
                        })
                    }
                    if let loss = result.epochs.last?.validationLoss, loss.isFinite { ranking.validationLoss[Int64(id)] = loss }
                    rung = RungRow(candidateID: Int64(id), rung: Int64(job.rung), startEpoch: Int64(job.startEpochs),
                                   epochs: Int64(job.epochs), status: status, validationScore: result.validationScore,
                                   testScore: result.testScore, wallSeconds: result.wallSeconds, worker: result.worker)
                    try record.appendRung(rung)
                    rungRows[key] = rung
                    if status == .failed { candidate.row.reason = reason }
                    candidate.reported = status == .accepted ? result.reported : [:]
                    candidate.weightsFile = result.weightsFile
                }
                candidate.row.status = rung.status
                if rung.status == .failed, candidate.row.reason.isEmpty { candidate.row.reason = "training failed at rung \(job.rung)" }
                candidate.row.validationScore = rung.validationScore
                candidate.row.testScore = rung.testScore
                candidate.row.epochs = rung.epochs
                // The row's seconds are those of all its rungs.
                let before = job.startEpochs == 0 || !candidate.row.wallSeconds.isFinite ? 0 : candidate.row.wallSeconds
                candidate.row.wallSeconds = before + rung.wallSeconds
                candidate.row.worker = rung.worker
                state.candidates[id] = candidate
                state.scheduler.report(candidateID: id, rung: job.rung, score: rung.status == .accepted ? rung.validationScore : nil)
                for released in state.scheduler.takeReleased() { try release(released) }
            }
            fidelity = state
            try saveFidelityState()
        }

        // Candidates the scheduler still holds (ASHA's best of a rung, a bracket cut by the
        // wall-time limit) get their rows with their highest rung.
        let complete = state.scheduler.isComplete
        for released in state.scheduler.releaseAll(alreadyReleased: Set(rowsByID.keys.map { Int($0) })) {
            try release(FidelityRelease(candidateID: released.candidateID, rung: released.rung, isFinal: complete))
        }
        if complete {
            for id in state.candidates.keys { try? FileManager.default.removeItem(atPath: checkpointPath(candidateID: id)) }
        }
        fidelity = state
        try saveFidelityState()
        return try finish(start: start, evaluationSeconds: evaluationSeconds, stopReason: stopReason)
    }
}
