import Foundation
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

/// The outcome of many seeded tabular searches with one algorithm.
public struct TabularSearchSummary: Hashable, Codable, Sendable, CustomStringConvertible {
    public var algorithm: SearchAlgorithm
    public var budget: Int
    public var seeds: [UInt64]
    /// The best objective found by each run (in the order of `seeds`); `nil` if a run evaluated nothing.
    public var bestPerSeed: [Double?]

    /// Mean of the best objectives of the runs that evaluated something.
    public var mean: Double {
        let values = bestPerSeed.compactMap { $0 }
        return values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count)
    }

    /// Sample standard deviation (n − 1) of the best objectives.
    public var standardDeviation: Double {
        let values = bestPerSeed.compactMap { $0 }
        guard values.count > 1 else { return 0 }
        let m = mean
        return (values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(values.count - 1)).squareRoot()
    }

    public var description: String {
        let mean = String(format: "%.3f", self.mean), std = String(format: "%.3f", standardDeviation)
        return "\(algorithm): mean best \(mean) ± \(std) over \(seeds.count) seeds, \(budget) evaluations each"
    }
}

/// Runs `algorithm` once per seed against a table and summarises the best objectives found.
///
/// ```swift
/// let table = try TabularBenchmark(contentsOf: csvURL, metricColumn: "CIFAR10TestAccuracy200Epochs")
/// let summary = try runTabularSearches(.best, space: space, seeds: 0..<500, budget: 150) {
///     table.lookup(space.text(of: $0))
/// }
/// print(summary)   // local-search(…): mean best 94.363 ± 0.060 over 500 seeds, 150 evaluations each
/// ```
/// - Throws: `SearchError.invalidParameter` if the algorithm's settings are invalid.
public func runTabularSearches(
    _ algorithm: SearchAlgorithm, space: any ArchitectureSpace, seeds: Range<UInt64>, budget: Int,
    isFeasible: (Architecture) -> Bool = { _ in true },
    lookup: (Architecture) -> Double?
) throws -> TabularSearchSummary {
    var best = [Double?]()
    for seed in seeds {
        var searcher = try AnySearcher(algorithm, space: space, seed: seed)
        best.append(runTabularSearch(searcher: &searcher, budget: budget, isFeasible: isFeasible, lookup: lookup).bestObjective)
    }
    return TabularSearchSummary(algorithm: algorithm, budget: budget, seeds: Array(seeds), bestPerSeed: best)
}
