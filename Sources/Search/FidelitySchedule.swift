/// Multi-fidelity scheduling over training epochs: successive halving, Hyperband and ASHA.
///
/// A searcher decides *what* to train; a ``FidelityScheduler`` decides *how long*. Candidates are
/// trained on a ladder of **rungs**: rung `r` trains to `minEpochs · eta^r` epochs, the top rung
/// `R = ⌊log_eta(maxEpochs / minEpochs)⌋` to `maxEpochs` (so `min 1, max 9, eta 3` gives rungs of
/// 1, 3, 9 epochs and `min 1, max 10, eta 3` gives 1, 3, 10). Only the best `1/eta` of a rung are
/// promoted to the next; a promoted candidate *continues* training from where its previous rung
/// stopped (the runner keeps a training checkpoint), so reaching rung `r` costs `epochs(r)` in all.
///
/// The scheduler is pure and deterministic: it never trains anything, it only answers
/// ``next(newCandidate:)`` with a ``FidelityDecision`` ("start a new candidate at rung r" or
/// "continue candidate c from rung r − 1 to rung r") and learns from ``report(candidateID:rung:score:)``.
/// Scores are maximised; `nil` (a failed run) is never promoted. Ties are broken by the lower
/// candidate id. The whole scheduler is `Codable`, so a runner stores it with its record and a
/// killed search resumes in the middle of a bracket.
///
/// ```swift
/// var scheduler = try FidelityScheduler(FidelitySchedule(kind: .successiveHalving, minEpochs: 1, maxEpochs: 9, eta: 3))
/// var nextID = 0
/// while let decision = scheduler.next(newCandidate: { defer { nextID += 1 }; return nextID }) {
///     let score = train(decision)                      // to decision.epochs, from decision.startEpochs
///     scheduler.report(candidateID: decision.candidateID, rung: decision.rung, score: score)
///     for released in scheduler.takeReleased() { tell(released) }   // done with these (for now)
/// }
/// ```
///
/// **References**
/// - K. Jamieson, A. Talwalkar, "Non-stochastic Best Arm Identification and Hyperparameter
///   Optimization", AISTATS 2016 (successive halving).
/// - L. Li, K. Jamieson, G. DeSalvo, A. Rostamizadeh, A. Talwalkar, "Hyperband: A Novel
///   Bandit-Based Approach to Hyperparameter Optimization", JMLR 18(185), 2018.
/// - L. Li, K. Jamieson, A. Rostamizadeh, E. Gonina, J. Ben-tzur, M. Hardt, B. Recht,
///   A. Talwalkar, "A System for Massively Parallel Hyperparameter Tuning", MLSys 2020 (ASHA).
public struct FidelitySchedule: Hashable, Codable, Sendable, CustomStringConvertible {
    public enum Kind: String, Hashable, Codable, Sendable, CaseIterable {
        /// Synchronous successive halving: brackets of `eta^R` candidates, one after the other.
        case successiveHalving = "successive-halving"
        /// Synchronous Hyperband: successive-halving brackets with different start rungs, in turn.
        case hyperband
        /// Asynchronous successive halving: promote whenever a candidate is in its rung's top 1/eta.
        case asha
    }

    public var kind: Kind
    public var minEpochs: Int
    public var maxEpochs: Int
    public var eta: Int
    /// Hyperband: how many brackets, `1...topRung + 1`, starting with the most exploratory one
    /// (`nil`: all `topRung + 1`). Successive halving is Hyperband with one bracket; ASHA ignores it.
    public var brackets: Int?

    /// - Throws: `SearchError.invalidParameter` unless `1 ≤ minEpochs`, `eta ≥ 2`,
    ///   `maxEpochs ≥ minEpochs · eta` (at least two rungs) and `brackets` is in `1...topRung + 1`.
    public init(kind: Kind, minEpochs: Int, maxEpochs: Int, eta: Int, brackets: Int? = nil) throws {
        self.kind = kind
        self.minEpochs = minEpochs
        self.maxEpochs = maxEpochs
        self.eta = eta
        self.brackets = brackets
        guard minEpochs >= 1 else { throw SearchError.invalidParameter(name: "min_epochs", value: "\(minEpochs)", expected: "≥ 1") }
        guard eta >= 2 else { throw SearchError.invalidParameter(name: "eta", value: "\(eta)", expected: "≥ 2") }
        guard maxEpochs >= minEpochs * eta else {
            throw SearchError.invalidParameter(name: "max_epochs", value: "\(maxEpochs)",
                                               expected: "≥ min_epochs · eta = \(minEpochs * eta) (at least two rungs)")
        }
        if let brackets, !(1...(topRung + 1)).contains(brackets) {
            throw SearchError.invalidParameter(name: "brackets", value: "\(brackets)", expected: "1...\(topRung + 1) for these rungs")
        }
    }

    /// The highest rung, `⌊log_eta(maxEpochs / minEpochs)⌋` (computed with integers).
    public var topRung: Int {
        var r = 0, epochs = minEpochs
        while epochs * eta <= maxEpochs { epochs *= eta; r += 1 }
        return r
    }

    /// The epochs each rung trains to: `minEpochs · eta^r`, the top rung `maxEpochs`.
    public var rungEpochs: [Int] {
        var result = [Int](), epochs = minEpochs
        for _ in 0..<topRung { result.append(epochs); epochs *= eta }
        return result + [maxEpochs]
    }

    /// The brackets a Hyperband cycle runs, as `s` (the bracket starts at rung `topRung − s`):
    /// `topRung, topRung − 1, …` (`brackets` of them); successive halving: `[topRung]`.
    public var bracketSizes: [Int] {
        switch kind {
        case .successiveHalving: return [topRung]
        case .hyperband, .asha: return Array((0...topRung).reversed().prefix(brackets ?? topRung + 1))
        }
    }

    /// The number of candidates bracket `s` starts (Li et al. 2018): `⌈(R + 1)/(s + 1) · eta^s⌉`, `R = topRung`.
    public func bracketCandidates(_ s: Int) -> Int {
        let power = (0..<s).reduce(1) { p, _ in p * eta }
        let numerator = (topRung + 1) * power
        return (numerator + s) / (s + 1)
    }

    public var description: String {
        "\(kind.rawValue)(epochs \(rungEpochs.map(String.init).joined(separator: "/")), eta \(eta)"
            + (kind == .hyperband ? ", \(bracketSizes.count) brackets)" : ")")
    }
}

/// What to train next.
public enum FidelityDecision: Hashable, Codable, Sendable {
    /// Train the new candidate `candidateID` from scratch to `epochs` (its first rung, `rung`).
    case start(candidateID: Int, rung: Int, epochs: Int)
    /// Continue candidate `candidateID` from `fromEpochs` (the end of rung `rung − 1`) to `toEpochs`.
    case promote(candidateID: Int, rung: Int, fromEpochs: Int, toEpochs: Int)

    public var candidateID: Int {
        switch self {
        case let .start(id, _, _), let .promote(id, _, _, _): return id
        }
    }

    public var rung: Int {
        switch self {
        case let .start(_, rung, _), let .promote(_, rung, _, _): return rung
        }
    }

    /// The epoch training starts from (0 for a new candidate).
    public var startEpochs: Int {
        if case let .promote(_, _, from, _) = self { return from }
        return 0
    }

    /// The epochs the candidate has finished when this job is done.
    public var epochs: Int {
        switch self {
        case let .start(_, _, epochs), let .promote(_, _, _, epochs): return epochs
        }
    }
}

/// A candidate the scheduler stopped training: `final` when it never will train again (top rung,
/// failed, or not promoted by a synchronous bracket); ASHA's paused candidates are not final, as a
/// later promotion may resume them.
public struct FidelityRelease: Hashable, Codable, Sendable {
    public var candidateID: Int
    /// The highest rung it finished.
    public var rung: Int
    public var isFinal: Bool

    public init(candidateID: Int, rung: Int, isFinal: Bool) {
        self.candidateID = candidateID
        self.rung = rung
        self.isFinal = isFinal
    }
}

/// The state of a multi-fidelity schedule (see ``FidelitySchedule`` for the algorithms).
///
/// Synchronous schedules (successive halving, Hyperband) run one bracket at a time: all of a
/// rung's candidates finish before the rung's best `⌊n/eta⌋` are promoted, so parallel workers may
/// idle at the end of a rung. ASHA never waits: each call to ``next(newCandidate:)`` promotes
/// the best not-yet-promoted candidate of the highest rung that has one in its top `⌊n/eta⌋`
/// (`n`: candidates finished at that rung, failed ones included), and otherwise starts a new one.
public struct FidelityScheduler: Hashable, Codable, Sendable {
    /// One synchronous bracket (successive halving or a Hyperband bracket).
    struct Bracket: Hashable, Codable, Sendable {
        /// Hyperband's `s`: the bracket starts at rung `topRung − s` with `bracketCandidates(s)` candidates.
        var s: Int
        /// Index within the bracket (0: its first rung).
        var level = 0
        /// Candidates at each level, in the order they were started or promoted.
        var members: [[Int]] = [[]]
        /// Promoted candidates of the current level not handed out yet, best first.
        var toIssue: [Int] = []
    }

    /// Results by rung: candidate id → score (`nil`: failed), and the order they arrived in.
    struct Rung: Hashable, Codable, Sendable {
        var scores: [Int: Double?] = [:]
        var order: [Int] = []
        /// ASHA: candidates promoted out of this rung.
        var promoted: Set<Int> = []
        /// ASHA: candidates in the rung's top set when last looked at, not promoted yet.
        var held: Set<Int> = []
    }

    public let schedule: FidelitySchedule
    /// Candidates started so far (the runner's `budget.candidates` counts these).
    public private(set) var startedCount = 0
    /// `true` once `next`'s `newCandidate` returned `nil`: no new candidate will be started.
    public private(set) var closedForNew = false
    /// Brackets started so far (synchronous schedules; a bracket starts with its first candidate).
    public private(set) var bracketCount = 0
    var bracket: Bracket?
    var rungs: [Rung]
    /// Each candidate's highest finished rung.
    var reached: [Int: Int] = [:]
    /// Jobs handed out and not reported yet.
    var running: [Int: Int] = [:]
    var released: [FidelityRelease] = []

    public init(_ schedule: FidelitySchedule) {
        self.schedule = schedule
        rungs = Array(repeating: Rung(), count: schedule.topRung + 1)
    }

    /// Jobs handed out whose results are not reported yet.
    public var runningCount: Int { running.count }

    /// `true` when nothing is running and no job can be handed out any more (no new candidates and
    /// nothing left to promote).
    public var isComplete: Bool {
        guard closedForNew, running.isEmpty else { return false }
        var copy = self
        return copy.next(newCandidate: { nil }) == nil
    }

    /// The highest rung candidate `id` finished, if any.
    public func highestRung(of id: Int) -> Int? { reached[id] }

    /// The score of candidate `id` at `rung` (`.some(nil)`: failed there; `nil`: not finished there).
    public func score(of id: Int, rung: Int) -> Double?? {
        guard rung >= 0, rung < rungs.count else { return nil }
        return rungs[rung].scores[id]
    }

    /// The candidates that finished `rung`, in the order they were reported.
    public func finished(rung: Int) -> [Int] { rung >= 0 && rung < rungs.count ? rungs[rung].order : [] }

    /// The next job, or `nil` when none can be handed out now (waiting for running jobs, or done:
    /// see ``isComplete``).
    ///
    /// - Parameter newCandidate: called when the schedule wants a new candidate: the id of a new
    ///   proposal to train, or `nil` when there will be no more (budget spent, searcher stopped);
    ///   from then on it is never called again.
    public mutating func next(newCandidate: () throws -> Int?) rethrows -> FidelityDecision? {
        let decision: FidelityDecision?
        switch schedule.kind {
        case .asha: decision = try nextASHA(newCandidate)
        case .successiveHalving, .hyperband: decision = try nextBracket(newCandidate)
        }
        if let decision { running[decision.candidateID] = decision.rung }
        return decision
    }

    /// Records the result of a job handed out by ``next(newCandidate:)``; `score` is maximised,
    /// `nil` means the run failed (it is never promoted). Reports of unknown jobs are ignored.
    public mutating func report(candidateID id: Int, rung: Int, score: Double?) {
        guard running[id] == rung else { return }
        running[id] = nil
        let value: Double? = score.flatMap { $0.isFinite ? $0 : nil }
        rungs[rung].scores[id] = .some(value)
        rungs[rung].order.append(id)
        reached[id] = max(reached[id] ?? rung, rung)
        if value == nil || rung == schedule.topRung {
            released.append(FidelityRelease(candidateID: id, rung: rung, isFinal: true))
            return
        }
        if schedule.kind == .asha { updateHeld(rung: rung, reported: id) }
    }

    /// The candidates released since the last call, in the order they were released (see
    /// ``FidelityRelease``): the runner tells the searcher about them.
    public mutating func takeReleased() -> [FidelityRelease] {
        defer { released.removeAll() }
        return released
    }

    /// Every candidate with a result that was never released (e.g. held by ASHA when the search
    /// ends), released now as final, in id order.
    public mutating func releaseAll(alreadyReleased: Set<Int>) -> [FidelityRelease] {
        reached.keys.sorted().filter { !alreadyReleased.contains($0) && running[$0] == nil }
            .map { FidelityRelease(candidateID: $0, rung: reached[$0]!, isFinal: true) }
    }

    // MARK: Ranking

    /// `ids` that succeeded at `rung`, best first (ties: lower id).
    func ranked(_ ids: [Int], rung: Int) -> [Int] {
        ids.compactMap { id -> (Int, Double)? in
            guard let s = rungs[rung].scores[id], let value = s else { return nil }
            return (id, value)
        }
        .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        .map(\.0)
    }

    // MARK: Synchronous brackets

    private mutating func nextBracket(_ newCandidate: () throws -> Int?) rethrows -> FidelityDecision? {
        let epochs = schedule.rungEpochs
        while true {
            if bracket == nil {
                guard !closedForNew else { return nil }
                let sizes = schedule.bracketSizes
                bracket = Bracket(s: sizes[bracketCount % sizes.count])
            }
            var b = bracket!
            let rung = schedule.topRung - b.s + b.level
            if b.level == 0 {
                if b.members[0].count < schedule.bracketCandidates(b.s), !closedForNew {
                    if let id = try newCandidate() {
                        if b.members[0].isEmpty { bracketCount += 1 }
                        b.members[0].append(id)
                        bracket = b
                        startedCount += 1
                        return .start(candidateID: id, rung: rung, epochs: epochs[rung])
                    }
                    closedForNew = true
                }
                if b.members[0].isEmpty {
                    bracket = nil
                    return nil
                }
            } else if !b.toIssue.isEmpty {
                let id = b.toIssue.removeFirst()
                bracket = b
                return .promote(candidateID: id, rung: rung, fromEpochs: epochs[rung - 1], toEpochs: epochs[rung])
            }
            // Everything of this level is handed out: wait for it, then decide.
            let members = b.members[b.level]
            guard members.allSatisfy({ rungs[rung].scores[$0] != nil }) else { return nil }
            let promoted = rung == schedule.topRung ? [] : Array(ranked(members, rung: rung).prefix(members.count / schedule.eta))
            let kept = Set(promoted)
            for id in members where !kept.contains(id) {
                // Failed and top-rung candidates were released when reported.
                if let s = rungs[rung].scores[id], s != nil, rung != schedule.topRung {
                    released.append(FidelityRelease(candidateID: id, rung: rung, isFinal: true))
                }
            }
            if promoted.isEmpty {
                bracket = nil
                continue
            }
            b.level += 1
            b.members.append(promoted)
            b.toIssue = promoted
            bracket = b
        }
    }

    // MARK: ASHA

    /// The candidates of `rung` in its top `⌊n/eta⌋` and not promoted yet, best first.
    func promotable(rung: Int) -> [Int] {
        let r = rungs[rung]
        let top = ranked(r.order, rung: rung).prefix(r.order.count / schedule.eta)
        return top.filter { !r.promoted.contains($0) }
    }

    private mutating func nextASHA(_ newCandidate: () throws -> Int?) rethrows -> FidelityDecision? {
        let epochs = schedule.rungEpochs
        for rung in stride(from: schedule.topRung - 1, through: 0, by: -1) {
            if let id = promotable(rung: rung).first {
                rungs[rung].promoted.insert(id)
                rungs[rung].held.remove(id)
                return .promote(candidateID: id, rung: rung + 1, fromEpochs: epochs[rung], toEpochs: epochs[rung + 1])
            }
        }
        guard !closedForNew else { return nil }
        guard let id = try newCandidate() else {
            closedForNew = true
            return nil
        }
        startedCount += 1
        return .start(candidateID: id, rung: 0, epochs: epochs[0])
    }

    /// ASHA: after `reported` finished `rung`, candidates that are not promotable are released
    /// (paused: not final) — the new one when it is not in the top set, and held ones pushed out of it.
    private mutating func updateHeld(rung: Int, reported: Int) {
        let top = Set(promotable(rung: rung))
        var r = rungs[rung]
        var out = [Int]()
        if top.contains(reported) { r.held.insert(reported) } else { out.append(reported) }
        for id in r.held.sorted() where !top.contains(id) {
            r.held.remove(id)
            out.append(id)
        }
        rungs[rung] = r
        for id in out { released.append(FidelityRelease(candidateID: id, rung: rung, isFinal: false)) }
    }
}
