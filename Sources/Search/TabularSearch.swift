import NASCore

/// One proposal of a search run and what became of it.
public struct SearchTraceEntry: Hashable, Codable, Sendable {
    public var proposal: Proposal
    /// The architecture's canonical text in its space.
    public var text: String
    public var outcome: EvaluationOutcome
    /// Number of budgeted evaluations (evaluated or failed) so far, this one included.
    public var evaluationsSoFar: Int
    /// Best objective among evaluated architectures so far, this one included.
    public var bestObjectiveSoFar: Double?
}

/// The record of a search run: every proposal in order, and why it ended.
public struct SearchTrace: Hashable, Codable, Sendable {
    public var searcher: String
    public var entries: [SearchTraceEntry] = []
    /// Set when the searcher stopped before the budget was used.
    public var stopReason: SearchStopReason?

    /// The evaluated entries, in order.
    public var evaluated: [SearchTraceEntry] { entries.filter { if case .evaluated = $0.outcome { true } else { false } } }
    /// The best evaluated entry (earliest wins ties).
    public var best: SearchTraceEntry? {
        var best: SearchTraceEntry?
        var bestValue = -Double.infinity
        for entry in entries {
            if case .evaluated(let value) = entry.outcome, !value.isNaN, best == nil || value > bestValue {
                best = entry
                bestValue = value
            }
        }
        return best
    }
    /// The best objective found, or `nil` if nothing was evaluated.
    public var bestObjective: Double? { entries.last?.bestObjectiveSoFar }
    /// The best objective after each budgeted evaluation (the anytime curve).
    public var bestObjectiveCurve: [Double?] {
        var curve = [Double?]()
        for entry in entries where entry.evaluationsSoFar > curve.count { curve.append(entry.bestObjectiveSoFar) }
        return curve
    }
    /// Number of budgeted evaluations (evaluated or failed).
    public var evaluationCount: Int { entries.last?.evaluationsSoFar ?? 0 }
}

/// Runs `searcher` against a table of precomputed results until `budget` evaluations are used
/// or the searcher stops.
///
/// Each proposal is first checked with `isFeasible` (a constraint; rejected proposals cost no
/// budget), then looked up: a value is an evaluation, `nil` a failure ("not in the table").
/// Evaluations and failures count against `budget`.
///
/// ```swift
/// let table = try TabularBenchmark(contentsOf: csvURL)
/// var searcher = try LocalSearch(space: space, seed: 1)
/// let trace = runTabularSearch(searcher: &searcher, budget: 150) { table.lookup(space.text(of: $0)) }
/// print(trace.best!.text, trace.best!.bestObjectiveSoFar!)
/// ```
/// - Parameters:
///   - searcher: the searcher; left in its final state (it can be continued).
///   - budget: evaluations allowed (≥ 0).
///   - isFeasible: a constraint; `false` rejects the architecture (default: all feasible).
///   - lookup: the objective of an architecture (maximised), or `nil` if it cannot be evaluated.
public func runTabularSearch<S: Searcher>(
    searcher: inout S, budget: Int,
    isFeasible: (Architecture) -> Bool = { _ in true },
    lookup: (Architecture) -> Double?
) -> SearchTrace {
    var trace = SearchTrace(searcher: searcher.name)
    var evaluations = 0
    var best: Double?
    while evaluations < budget {
        guard let proposal = searcher.ask() else {
            trace.stopReason = searcher.stopReason
            break
        }
        let outcome: EvaluationOutcome
        if !isFeasible(proposal.architecture) {
            outcome = .rejected(reason: "constraint")
        } else if let value = lookup(proposal.architecture) {
            outcome = .evaluated(objective: value)
            evaluations += 1
            if !value.isNaN, best == nil || value > best! { best = value }
        } else {
            outcome = .failed(reason: "not in table")
            evaluations += 1
        }
        searcher.tell(Observation(proposal, outcome))
        trace.entries.append(SearchTraceEntry(proposal: proposal, text: searcher.space.text(of: proposal.architecture),
                                              outcome: outcome, evaluationsSoFar: evaluations,
                                              bestObjectiveSoFar: best))
    }
    return trace
}

/// `runTabularSearch` with the space given explicitly (it must be the searcher's space).
public func runTabularSearch<S: Searcher>(
    searcher: inout S, space: any ArchitectureSpace, budget: Int,
    isFeasible: (Architecture) -> Bool = { _ in true },
    lookup: (Architecture) -> Double?
) -> SearchTrace {
    precondition(space.name == searcher.space.name, "runTabularSearch: space '\(space.name)' is not the searcher's space '\(searcher.space.name)'")
    return runTabularSearch(searcher: &searcher, budget: budget, isFeasible: isFeasible, lookup: lookup)
}
