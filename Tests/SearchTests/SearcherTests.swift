import Foundation
import NASCore
import Search
import XCTest

/// Builds each searcher kind with a seed and shared stop limits.
enum SearcherKind: CaseIterable {
    case random, evolution, localSearch, localSearchWithRestarts

    func run(space: any ArchitectureSpace, seed: UInt64, budget: Int, maximumConsecutiveRejections: Int = 1000,
             maximumConsecutiveFailures: Int = 100,
             isFeasible: (Architecture) -> Bool = { _ in true },
             lookup: (Architecture) -> Double?) throws -> SearchTrace {
        switch self {
        case .random:
            var s = try RandomSearch(space: space, seed: seed, maximumConsecutiveRejections: maximumConsecutiveRejections,
                                     maximumConsecutiveFailures: maximumConsecutiveFailures)
            return runTabularSearch(searcher: &s, budget: budget, isFeasible: isFeasible, lookup: lookup)
        case .evolution:
            var s = try RegularizedEvolution(space: space, seed: seed, populationSize: 8, sampleSize: 3,
                                             maximumConsecutiveRejections: maximumConsecutiveRejections,
                                             maximumConsecutiveFailures: maximumConsecutiveFailures)
            return runTabularSearch(searcher: &s, budget: budget, isFeasible: isFeasible, lookup: lookup)
        case .localSearch:
            var s = try LocalSearch(space: space, seed: seed, initialSampleCount: 5,
                                    maximumConsecutiveRejections: maximumConsecutiveRejections,
                                    maximumConsecutiveFailures: maximumConsecutiveFailures)
            return runTabularSearch(searcher: &s, budget: budget, isFeasible: isFeasible, lookup: lookup)
        case .localSearchWithRestarts:
            var s = try LocalSearch(space: space, seed: seed, initialSampleCount: 5, localOptimumPolicy: .restartFromRandom,
                                    maximumConsecutiveRejections: maximumConsecutiveRejections,
                                    maximumConsecutiveFailures: maximumConsecutiveFailures)
            return runTabularSearch(searcher: &s, budget: budget, isFeasible: isFeasible, lookup: lookup)
        }
    }
}

/// A separable objective with its unique maximum at `target`.
func distanceObjective(_ target: [Int]) -> (Architecture) -> Double {
    { a in -zip(a.choices, target).map { Double(($0 - $1) * ($0 - $1)) }.reduce(0, +) }
}

final class SearcherTests: XCTestCase {
    let small = GridSpace(optionCounts: [3, 3, 3])
    let medium = GridSpace(name: "medium", optionCounts: [5, 5, 5, 5])

    func testEverySearcherFindsTheOptimumOfASmallTable() throws {
        let objective = distanceObjective([2, 0, 1])
        for kind in SearcherKind.allCases {
            for seed: UInt64 in 1...5 {
                let trace = try kind.run(space: small, seed: seed, budget: 27, lookup: objective)
                XCTAssertEqual(trace.evaluationCount, 27, "\(kind)")
                XCTAssertEqual(trace.best?.proposal.architecture.choices, [2, 0, 1], "\(kind) seed \(seed)")
                XCTAssertEqual(trace.bestObjective, 0)
                // Deduplication: the 27 evaluations cover the whole space.
                XCTAssertEqual(Set(trace.entries.map(\.proposal.architecture)).count, 27, "\(kind)")
            }
        }
    }

    func testGuidedSearchersFindTheOptimumOfALargerTableFasterThanRandom() throws {
        // 625 architectures, 60 evaluations: random search finds the optimum with probability ≈ 0.1.
        let objective = distanceObjective([4, 1, 3, 0])
        var hits = [String: Int]()
        var meanBest = [String: Double]()
        for kind in SearcherKind.allCases {
            for seed: UInt64 in 1...20 {
                let trace = try kind.run(space: medium, seed: seed, budget: 60, lookup: objective)
                if trace.bestObjective == 0 { hits["\(kind)", default: 0] += 1 }
                meanBest["\(kind)", default: 0] += trace.bestObjective! / 20
            }
        }
        XCTAssertLessThanOrEqual(hits["random", default: 0], 6)
        XCTAssertEqual(hits["localSearch", default: 0], 20)
        XCTAssertEqual(hits["localSearchWithRestarts", default: 0], 20)
        XCTAssertGreaterThan(meanBest["evolution"]!, meanBest["random"]! + 0.5, "\(meanBest)")
    }

    func testSameSeedSameSequenceDifferentSeedDifferentSequence() throws {
        let objective = distanceObjective([4, 1, 3, 0])
        for kind in SearcherKind.allCases {
            let a = try kind.run(space: medium, seed: 11, budget: 50, lookup: objective)
            let b = try kind.run(space: medium, seed: 11, budget: 50, lookup: objective)
            let c = try kind.run(space: medium, seed: 12, budget: 50, lookup: objective)
            XCTAssertEqual(a.entries.map(\.proposal), b.entries.map(\.proposal), "\(kind)")
            XCTAssertNotEqual(a.entries.map(\.proposal), c.entries.map(\.proposal), "\(kind)")
        }
    }

    func testRejectedArchitecturesDoNotConsumeTheBudget() throws {
        // Half the space is infeasible: the sum of the choices must be even.
        let isFeasible: (Architecture) -> Bool = { $0.choices.reduce(0, +) % 2 == 0 }
        XCTAssertEqual(medium.all.filter(isFeasible).count * 2 - 1, medium.all.count)  // 313 + 312
        let objective = distanceObjective([4, 1, 3, 1])  // an infeasible optimum (sum 9)
        for kind in SearcherKind.allCases {
            let trace = try kind.run(space: medium, seed: 5, budget: 80, isFeasible: isFeasible, lookup: objective)
            XCTAssertNil(trace.stopReason)
            XCTAssertEqual(trace.evaluationCount, 80, "\(kind)")
            XCTAssertEqual(trace.evaluated.count, 80, "\(kind)")
            XCTAssertTrue(trace.evaluated.allSatisfy { isFeasible($0.proposal.architecture) }, "\(kind)")
            let rejected = trace.entries.filter { if case .rejected = $0.outcome { true } else { false } }
            XCTAssertGreaterThan(rejected.count, 0, "\(kind)")
            XCTAssertTrue(rejected.allSatisfy { !isFeasible($0.proposal.architecture) }, "\(kind)")
            XCTAssertEqual(rejected.count + 80, trace.entries.count)
            XCTAssertEqual(trace.best.map { isFeasible($0.proposal.architecture) }, true)
        }
    }

    func testSearchersStopWhenNothingIsFeasible() throws {
        for kind in SearcherKind.allCases {
            let trace = try kind.run(space: medium, seed: 1, budget: 100, maximumConsecutiveRejections: 40,
                                     isFeasible: { _ in false }, lookup: { _ in 1 })
            XCTAssertEqual(trace.stopReason, .tooManyConsecutiveRejections(count: 40), "\(kind)")
            XCTAssertEqual(trace.entries.count, 40)
            XCTAssertEqual(trace.evaluationCount, 0)
            XCTAssertTrue(trace.stopReason!.description.contains("40 consecutive proposals were rejected"))
        }
    }

    func testSearchersKeepGoingAfterFailuresAndStopWhenEverythingFails() throws {
        // Every third architecture fails: the search continues and evaluates the rest.
        let sometimesFails: (Architecture) -> Double? = { a in
            a.choices.reduce(0, +) % 3 == 0 ? nil : distanceObjective([4, 1, 3, 0])(a)
        }
        for kind in SearcherKind.allCases {
            let trace = try kind.run(space: medium, seed: 2, budget: 60, lookup: sometimesFails)
            XCTAssertNil(trace.stopReason)
            XCTAssertEqual(trace.evaluationCount, 60)
            XCTAssertGreaterThan(trace.evaluated.count, 20)
            let failing = try kind.run(space: medium, seed: 2, budget: 60, maximumConsecutiveFailures: 7, lookup: { _ in nil })
            XCTAssertEqual(failing.stopReason, .tooManyConsecutiveFailures(count: 7), "\(kind)")
            XCTAssertEqual(failing.entries.count, 7)
        }
    }

    func testSearchersStopWhenTheSpaceIsUsedUp() throws {
        for kind in SearcherKind.allCases {
            let trace = try kind.run(space: small, seed: 3, budget: 100, lookup: distanceObjective([0, 0, 0]))
            XCTAssertEqual(trace.evaluationCount, 27, "\(kind)")
            XCTAssertEqual(trace.stopReason, .noUnseenArchitecture(seenCount: 27), "\(kind)")
        }
    }

    func testEvolutionWithoutDeduplicationRepeatsArchitectures() throws {
        var searcher = try RegularizedEvolution(space: small, seed: 4, populationSize: 5, sampleSize: 2, deduplicate: false)
        let trace = runTabularSearch(searcher: &searcher, space: small, budget: 60, lookup: distanceObjective([1, 1, 1]))
        XCTAssertEqual(trace.evaluationCount, 60)
        XCTAssertLessThan(Set(trace.entries.map(\.proposal.architecture)).count, 60)
        XCTAssertEqual(trace.bestObjective, 0)
    }

    func testEvolutionMutatesTournamentWinnersAndKeepsThePopulationSize() throws {
        var searcher = try RegularizedEvolution(space: medium, seed: 9, populationSize: 6, sampleSize: 6)
        let objective = distanceObjective([4, 1, 3, 0])
        for step in 0..<40 {
            let proposal = searcher.ask()!
            if step < 6 {
                XCTAssertNil(proposal.parentID)
            } else if let parentID = proposal.parentID {
                // With S = P the parent is the population's best, and the child is one mutation away.
                let population = searcher.state.population
                let parent = population.first { $0.proposalID == parentID }!
                XCTAssertEqual(parent.objective, population.map(\.objective).max())
                XCTAssertEqual(zip(parent.architecture.choices, proposal.architecture.choices).filter { $0 != $1 }.count, 1)
            }
            searcher.tell(Observation(proposal, .evaluated(objective: objective(proposal.architecture))))
            XCTAssertEqual(searcher.state.population.count, min(step + 1, 6))
            // Aging: the population is the most recent six evaluations.
            XCTAssertEqual(searcher.state.population.last?.proposalID, proposal.id)
        }
    }

    func testInvalidParametersAreRejected() {
        XCTAssertThrowsError(try RegularizedEvolution(space: small, seed: 1, populationSize: 4, sampleSize: 5)) { error in
            XCTAssertEqual(error as? SearchError,
                           .invalidParameter(name: "sampleSize", value: "5", expected: "at most populationSize (4)"))
        }
        XCTAssertThrowsError(try LocalSearch(space: small, seed: 1, initialSampleCount: 0))
        XCTAssertThrowsError(try RandomSearch(space: small, seed: 1, maximumConsecutiveRejections: 0))
    }
}

final class SearcherResumeTests: XCTestCase {
    let space = GridSpace(name: "resume", optionCounts: [4, 3, 5, 2, 4])

    /// Drives a searcher for 40 rounds of three parallel workers whose results arrive in reverse
    /// order; some proposals are rejected and some fail. If `restartAt` is given (round, number of
    /// results told in that round), the searcher is killed there: its state goes through JSON and
    /// a new searcher resumes from it. Returns every proposal and observation, and the final state.
    func drive<S: Searcher>(_ make: () throws -> S, restartAt: (round: Int, told: Int)? = nil) throws
        -> (proposals: [Proposal], observations: [Observation], state: S.State) {
        var searcher = try make()
        var proposals = [Proposal](), observations = [Observation]()
        for round in 0..<40 {
            let batch = searcher.ask(count: 3)
            proposals += batch
            for (index, proposal) in batch.reversed().enumerated() {
                if let restart = restartAt, restart.round == round, restart.told == index {
                    let data = try JSONEncoder().encode(searcher.state)
                    let decoded = try JSONDecoder().decode(S.State.self, from: data)
                    XCTAssertEqual(decoded, searcher.state)
                    searcher = try S(space: space, state: decoded)
                }
                let c = proposal.architecture.choices
                let outcome: EvaluationOutcome
                if c[0] == 3 && c[1] == 2 {
                    outcome = .rejected(reason: "too large")
                } else if c[2] == 4 && c[3] == 1 {
                    outcome = .failed(reason: "diverged")
                } else {
                    let score: Int = c[0] * 7 + c[1] * 3 - abs(c[2] - 2) * 5 + c[3] + c[4] * c[0]
                    outcome = .evaluated(objective: Double(score) / 10)
                }
                let observation = Observation(proposal, outcome)
                searcher.tell(observation)
                observations.append(observation)
            }
        }
        return (proposals, observations, searcher.state)
    }

    func assertResumesExactly<S: Searcher>(_ make: () throws -> S, file: StaticString = #filePath, line: UInt = #line) throws {
        let uninterrupted = try drive(make)
        XCTAssertEqual(uninterrupted.proposals.count, 120, file: file, line: line)
        for restart in [(round: 0, told: 0), (round: 17, told: 0), (round: 17, told: 2), (round: 33, told: 1)] {
            let resumed = try drive(make, restartAt: restart)
            XCTAssertEqual(resumed.proposals, uninterrupted.proposals, "restart at \(restart)", file: file, line: line)
            XCTAssertEqual(resumed.observations, uninterrupted.observations, file: file, line: line)
            XCTAssertEqual(resumed.state, uninterrupted.state, file: file, line: line)
        }
        // The run exercised every kind of outcome.
        XCTAssertTrue(uninterrupted.observations.contains { if case .rejected = $0.outcome { true } else { false } })
        XCTAssertTrue(uninterrupted.observations.contains { if case .failed = $0.outcome { true } else { false } })
    }

    func testRandomSearchResumesExactly() throws {
        try assertResumesExactly { try RandomSearch(space: space, seed: 21) }
    }

    func testRegularizedEvolutionResumesExactly() throws {
        try assertResumesExactly { try RegularizedEvolution(space: space, seed: 22, populationSize: 10, sampleSize: 4) }
    }

    func testLocalSearchResumesExactly() throws {
        try assertResumesExactly { try LocalSearch(space: space, seed: 23) }
        try assertResumesExactly { try LocalSearch(space: space, seed: 24, localOptimumPolicy: .restartFromRandom) }
    }

    func testResumingWithAnotherSpaceFails() throws {
        let state = try drive { try LocalSearch(space: space, seed: 1) }.state
        let other = GridSpace(name: "other", optionCounts: [4, 3, 5])
        XCTAssertThrowsError(try LocalSearch(space: other, state: state)) { error in
            guard case .stateDoesNotMatchSpace(let name, _)? = error as? SearchError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(name, "other")
        }
    }
}

final class LocalSearchTests: XCTestCase {
    let space = GridSpace(name: "local", optionCounts: [4, 4, 3, 3])

    /// A rugged objective with several local optima.
    func objective(_ a: Architecture) -> Double {
        let c = a.choices
        return Double((c[0] * 7 + c[1] * 13 + c[2] * 5 + c[3] * 11 + c[0] * c[3] * 3) % 17) + Double(c[1]) * 0.01
    }

    func neighbours(_ a: Architecture, _ b: Architecture) -> Bool {
        zip(a.choices, b.choices).filter { $0 != $1 }.count == 1
    }

    func testBacktrackingExpandsTheBestArchitectureWithUnexploredNeighbours() throws {
        var searcher = try LocalSearch(space: space, seed: 8, initialSampleCount: 4, localOptimumPolicy: .continueFromNextBest)
        var evaluated = [(id: Int, architecture: Architecture, value: Double)]()
        var seen = Set<Architecture>()
        while let proposal = searcher.ask() {
            // Brute force: the expected centre is the best evaluated architecture with an unseen neighbour.
            let open = evaluated.filter { e in space.neighbours(of: e.architecture).contains { !seen.contains($0) } }
            let centre = open.reduce(nil as (id: Int, architecture: Architecture, value: Double)?) { best, e in
                best == nil || e.value > best!.value ? e : best
            }
            if evaluated.count < 4 || centre == nil {
                XCTAssertNil(proposal.parentID)
            } else {
                XCTAssertEqual(proposal.parentID, centre!.id)
                XCTAssertTrue(neighbours(proposal.architecture, centre!.architecture))
            }
            XCTAssertFalse(seen.contains(proposal.architecture))
            seen.insert(proposal.architecture)
            let value = objective(proposal.architecture)
            evaluated.append((proposal.id, proposal.architecture, value))
            searcher.tell(Observation(proposal, .evaluated(objective: value)))
        }
        XCTAssertEqual(seen.count, 144)
        XCTAssertEqual(searcher.stopReason, .noUnseenArchitecture(seenCount: 144))
    }

    func testRestartsBeginAfterTheRunsBestIsALocalOptimum() throws {
        var searcher = try LocalSearch(space: space, seed: 9, initialSampleCount: 3, localOptimumPolicy: .restartFromRandom)
        var run = [(id: Int, architecture: Architecture, value: Double)]()
        var seen = Set<Architecture>()
        var restarts = 0
        var previousHadParent = false
        for _ in 0..<100 {
            let proposal = searcher.ask()!
            if let parentID = proposal.parentID {
                // The centre is the best of the current run (earliest wins ties), one decision away.
                let best = run.reduce(run[0]) { $1.value > $0.value ? $1 : $0 }
                XCTAssertEqual(parentID, best.id)
                XCTAssertTrue(neighbours(proposal.architecture, best.architecture))
                XCTAssertGreaterThanOrEqual(run.count, 3)
            } else if previousHadParent {
                // A restart: the run's best had every neighbour proposed already.
                let best = run.reduce(run[0]) { $1.value > $0.value ? $1 : $0 }
                XCTAssertTrue(space.neighbours(of: best.architecture).allSatisfy { seen.contains($0) })
                restarts += 1
                run = []
            }
            previousHadParent = proposal.parentID != nil
            seen.insert(proposal.architecture)
            let value = objective(proposal.architecture)
            run.append((proposal.id, proposal.architecture, value))
            searcher.tell(Observation(proposal, .evaluated(objective: value)))
        }
        XCTAssertGreaterThanOrEqual(restarts, 2)
    }

    func testParallelProposalsAreDistinct() throws {
        var searcher = try LocalSearch(space: space, seed: 2, initialSampleCount: 2)
        var all = [Proposal]()
        for _ in 0..<10 {
            let batch = searcher.ask(count: 6)
            all += batch
            for proposal in batch { searcher.tell(Observation(proposal, .evaluated(objective: objective(proposal.architecture)))) }
        }
        XCTAssertEqual(all.count, 60)
        XCTAssertEqual(Set(all.map(\.architecture)).count, 60)
        XCTAssertEqual(all.map(\.id), Array(0..<60))
    }
}

final class AnySearcherTests: XCTestCase {
    let space = GridSpace(name: "any", optionCounts: [4, 3, 5, 2, 4])

    func testMatchesTheWrappedSearcherAndResumes() throws {
        let objective = distanceObjective([1, 2, 3, 0, 2])
        var direct = try RegularizedEvolution(space: space, seed: 5, populationSize: 7, sampleSize: 3)
        var wrapped = try AnySearcher(.regularizedEvolution(populationSize: 7, sampleSize: 3), space: space, seed: 5)
        XCTAssertEqual(wrapped.name, "regularized-evolution")
        let a = runTabularSearch(searcher: &direct, budget: 40, lookup: objective)
        var b = runTabularSearch(searcher: &wrapped, budget: 20, lookup: objective)
        // Save, resume through JSON, continue.
        let data = try JSONEncoder().encode(wrapped.state)
        var resumed = try AnySearcher(space: space, state: JSONDecoder().decode(AnySearcher.State.self, from: data))
        b.entries += runTabularSearch(searcher: &resumed, budget: 20, lookup: objective).entries
        XCTAssertEqual(a.entries.map(\.proposal), b.entries.map(\.proposal))
        XCTAssertEqual(resumed.state, .regularizedEvolution(direct.state))
        XCTAssertEqual(resumed.best, direct.best)
    }

    func testAlgorithmsByNameAndCodable() throws {
        XCTAssertEqual(SearchAlgorithm(name: "random"), .random())
        XCTAssertEqual(SearchAlgorithm(name: "evolution"), .regularizedEvolution(populationSize: 20, sampleSize: 10, deduplicate: true))
        XCTAssertEqual(SearchAlgorithm(name: "local-search"), .localSearch(initialSampleCount: 10, localOptimumPolicy: .restartFromRandom))
        XCTAssertEqual(SearchAlgorithm.best, .localSearch())
        XCTAssertNil(SearchAlgorithm(name: "bayesian"))
        for algorithm: SearchAlgorithm in [.random(deduplicate: false), .regularizedEvolution(populationSize: 9, sampleSize: 2),
                                           .localSearch(initialSampleCount: 3, localOptimumPolicy: .continueFromNextBest)] {
            let decoded = try JSONDecoder().decode(SearchAlgorithm.self, from: JSONEncoder().encode(algorithm))
            XCTAssertEqual(decoded, algorithm)
            var searcher = try AnySearcher(algorithm, space: space, seed: 1)
            XCTAssertEqual(searcher.name, algorithm.name)
            let trace = runTabularSearch(searcher: &searcher, budget: 30, lookup: distanceObjective([0, 0, 0, 0, 0]))
            XCTAssertEqual(trace.evaluationCount, 30)
            XCTAssertEqual(trace.searcher, algorithm.name)
        }
        XCTAssertThrowsError(try AnySearcher(.regularizedEvolution(populationSize: 0), space: space, seed: 1))
    }

    func testLongRunsStayFast() throws {
        // 20,000 evaluations in a space of 4^10 architectures: linear-time bookkeeping per step.
        let large = GridSpace(name: "large", optionCounts: Array(repeating: 4, count: 10))
        for algorithm in [SearchAlgorithm.random(), .regularizedEvolution(), .localSearch()] {
            var searcher = try AnySearcher(algorithm, space: large, seed: 3)
            let start = Date()
            let trace = runTabularSearch(searcher: &searcher, budget: 20_000) { a in
                Double(a.choices.enumerated().map { ($0.offset % 3) * $0.element }.reduce(0, +))
            }
            XCTAssertEqual(trace.evaluated.count, 20_000)
            let seconds = Date().timeIntervalSince(start)
            print("\(algorithm): 20,000 evaluations in \(seconds) s")
            XCTAssertLessThan(seconds, 5, "\(algorithm)")
        }
    }
}

final class TabularSearchSummaryTests: XCTestCase {
    func testSummaryMatchesIndividualRuns() throws {
        let space = GridSpace(optionCounts: [5, 5, 5, 5])
        let objective = distanceObjective([4, 1, 3, 0])
        let summary = try runTabularSearches(.regularizedEvolution(populationSize: 6, sampleSize: 3), space: space,
                                             seeds: 3..<8, budget: 25, lookup: objective)
        var expected = [Double]()
        for seed: UInt64 in 3..<8 {
            var searcher = try RegularizedEvolution(space: space, seed: seed, populationSize: 6, sampleSize: 3)
            expected.append(runTabularSearch(searcher: &searcher, budget: 25, lookup: objective).bestObjective!)
        }
        XCTAssertEqual(summary.bestPerSeed, expected)
        XCTAssertEqual(summary.seeds, [3, 4, 5, 6, 7])
        let mean = expected.reduce(0, +) / 5
        XCTAssertEqual(summary.mean, mean, accuracy: 1e-12)
        let variance = expected.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 4
        XCTAssertEqual(summary.standardDeviation, variance.squareRoot(), accuracy: 1e-12)
    }
}

final class ObservationHandlingTests: XCTestCase {
    func testRepeatedAndUnknownObservationsAreIgnored() throws {
        let space = GridSpace(optionCounts: [3, 3, 3])
        var searcher = try RegularizedEvolution(space: space, seed: 1, populationSize: 3, sampleSize: 2)
        let proposal = searcher.ask()!
        let observation = Observation(proposal, .evaluated(objective: 5))
        searcher.tell(observation)
        searcher.tell(observation)   // told twice
        searcher.tell(Observation(proposalID: 99, architecture: Architecture(choices: [0, 0, 0]), outcome: .evaluated(objective: 9)))
        XCTAssertEqual(searcher.state.population.count, 1)
        XCTAssertEqual(searcher.state.ledger.evaluatedCount, 1)
        XCTAssertEqual(searcher.state.ledger.ignoredObservationCount, 2)
        XCTAssertEqual(searcher.best?.objective, 5)
    }

    func testNaNObjectivesCountAsEvaluationsButNeverWin() throws {
        let space = GridSpace(optionCounts: [3, 3, 3])
        var searcher = try LocalSearch(space: space, seed: 1, initialSampleCount: 2)
        var values: [Double] = [.nan, 1, .nan, 2, 0.5]
        let trace = runTabularSearch(searcher: &searcher, budget: 5) { _ in values.removeFirst() }
        XCTAssertEqual(trace.evaluationCount, 5)
        XCTAssertEqual(trace.bestObjective, 2)
        XCTAssertEqual(trace.best?.proposal.id, 3)
        XCTAssertEqual(searcher.state.members.count, 3)
        XCTAssertEqual(trace.bestObjectiveCurve, [nil, 1, 1, 2, 2])
    }
}
