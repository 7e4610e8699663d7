import NASCore

/// One evaluated architecture as searchers remember it.
public struct EvaluatedArchitecture: Hashable, Codable, Sendable {
    public var proposalID: Int
    public var architecture: Architecture
    public var objective: Double

    public init(proposalID: Int, architecture: Architecture, objective: Double) {
        self.proposalID = proposalID
        self.architecture = architecture
        self.objective = objective
    }
}

/// The bookkeeping every searcher shares: RNG, proposal ids, pending proposals, the set of
/// architectures already proposed, outcome counters, the best so far and the stop condition.
///
/// Part of each searcher's `State`, so it is `Codable`.
public struct SearchLedger: Codable, Equatable, Sendable {
    /// The searcher's only source of randomness.
    public var generator: SeededGenerator
    /// The id the next proposal gets.
    public private(set) var nextProposalID = 0
    /// Proposals asked for but not yet told, by id.
    public private(set) var pending: [Int: Architecture] = [:]
    /// Canonical architectures already proposed (pending, evaluated, rejected or failed).
    /// Canonical equality is what the space's stable hash (`hash(of:)`) identifies.
    public private(set) var seen: Set<Architecture> = []
    public private(set) var evaluatedCount = 0
    public private(set) var rejectedCount = 0
    public private(set) var failedCount = 0
    public private(set) var consecutiveRejections = 0
    public private(set) var consecutiveFailures = 0
    /// Observations ignored because their proposal was not pending.
    public private(set) var ignoredObservationCount = 0
    /// Stop after this many consecutive rejections.
    public var maximumConsecutiveRejections: Int
    /// Stop after this many consecutive failures.
    public var maximumConsecutiveFailures: Int
    /// Random draws tried before concluding that no unseen architecture is left.
    public var maximumSamplingAttempts: Int
    /// Architectures `sample(from:unseen:)` returns before random ones, first first (a zero-cost
    /// proxy's ranking: warm start). `nil` in states saved before warm starts existed.
    public private(set) var warmStart: [Architecture]?
    /// The best evaluated architecture (earliest wins ties).
    public private(set) var best: EvaluatedArchitecture?
    public private(set) var stopReason: SearchStopReason?

    public init(seed: UInt64, maximumConsecutiveRejections: Int = 1000,
                maximumConsecutiveFailures: Int = 100, maximumSamplingAttempts: Int = 1000) throws {
        try SearchLedger.check("maximumConsecutiveRejections", maximumConsecutiveRejections, atLeast: 1)
        try SearchLedger.check("maximumConsecutiveFailures", maximumConsecutiveFailures, atLeast: 1)
        try SearchLedger.check("maximumSamplingAttempts", maximumSamplingAttempts, atLeast: 1)
        generator = SeededGenerator(seed: seed)
        self.maximumConsecutiveRejections = maximumConsecutiveRejections
        self.maximumConsecutiveFailures = maximumConsecutiveFailures
        self.maximumSamplingAttempts = maximumSamplingAttempts
    }

    static func check(_ name: String, _ value: Int, atLeast minimum: Int) throws {
        if value < minimum {
            throw SearchError.invalidParameter(name: name, value: "\(value)", expected: "an integer ≥ \(minimum)")
        }
    }

    /// Whether `architecture` (canonical) was already proposed.
    public func hasSeen(_ architecture: Architecture) -> Bool { seen.contains(architecture) }

    /// Registers a new proposal of `architecture` (must be canonical).
    public mutating func propose(_ architecture: Architecture, parentID: Int? = nil) -> Proposal {
        let proposal = Proposal(id: nextProposalID, architecture: architecture, parentID: parentID)
        nextProposalID += 1
        pending[proposal.id] = architecture
        seen.insert(architecture)
        return proposal
    }

    /// Records an observation of a pending proposal; updates counters, the best so far and the
    /// stop condition. An observation of a proposal that is not pending (unknown, or told
    /// before) is ignored and counted in `ignoredObservationCount`.
    /// - Returns: whether the observation was recorded.
    @discardableResult
    public mutating func record(_ observation: Observation) -> Bool {
        guard let architecture = pending.removeValue(forKey: observation.proposalID) else {
            ignoredObservationCount += 1
            return false
        }
        switch observation.outcome {
        case .evaluated(let objective):
            evaluatedCount += 1
            consecutiveRejections = 0
            consecutiveFailures = 0
            if !objective.isNaN, best == nil || objective > best!.objective {
                best = EvaluatedArchitecture(proposalID: observation.proposalID,
                                             architecture: architecture, objective: objective)
            }
        case .rejected:
            rejectedCount += 1
            consecutiveRejections += 1
            if consecutiveRejections >= maximumConsecutiveRejections, stopReason == nil {
                stopReason = .tooManyConsecutiveRejections(count: consecutiveRejections)
            }
        case .failed:
            failedCount += 1
            consecutiveFailures += 1
            if consecutiveFailures >= maximumConsecutiveFailures, stopReason == nil {
                stopReason = .tooManyConsecutiveFailures(count: consecutiveFailures)
            }
        }
        return true
    }

    /// Marks the search as stopped.
    public mutating func stop(_ reason: SearchStopReason) {
        if stopReason == nil { stopReason = reason }
    }

    /// Makes `sample(from:unseen:)` return these architectures (canonical, best first) before
    /// drawing random ones: every searcher's random draws (random search's proposals, the initial
    /// population of evolution, local search's initial samples and restarts) then start from them.
    public mutating func setWarmStart(_ ranked: [Architecture]) {
        warmStart = ranked
    }

    /// The next warm-start architecture (skipping proposed ones when `unseen`), else a random
    /// architecture of `space`; if `unseen`, one not proposed before, or `nil` when none is found
    /// within `maximumSamplingAttempts` draws (or the space is provably used up).
    public mutating func sample(from space: any ArchitectureSpace, unseen: Bool) -> Architecture? {
        while let next = warmStart?.first {
            warmStart!.removeFirst()
            if !unseen || !seen.contains(next) { return next }
        }
        guard unseen else { return space.sample(using: &generator) }
        if let size = SearchLedger.upperBoundOfSize(space), seen.count >= size { return nil }
        for _ in 0..<maximumSamplingAttempts {
            let candidate = space.sample(using: &generator)
            if !seen.contains(candidate) { return candidate }
        }
        return nil
    }

    /// Product of the option counts (an upper bound on the number of canonical architectures),
    /// or `nil` if it overflows `Int`.
    static func upperBoundOfSize(_ space: any ArchitectureSpace) -> Int? {
        var size = 1
        for decision in space.decisions {
            let (product, overflow) = size.multipliedReportingOverflow(by: max(1, decision.options.count))
            if overflow { return nil }
            size = product
        }
        return size
    }

    /// Throws unless every architecture in this ledger fits `space`.
    func validate(against space: any ArchitectureSpace) throws {
        for architecture in seen { try SearchLedger.validate(architecture, against: space) }
        for architecture in warmStart ?? [] { try SearchLedger.validate(architecture, against: space) }
    }

    static func validate(_ architecture: Architecture, against space: any ArchitectureSpace) throws {
        let decisions = space.decisions
        guard architecture.choices.count == decisions.count else {
            throw SearchError.stateDoesNotMatchSpace(
                space: space.name,
                detail: "an architecture has \(architecture.choices.count) choices, the space has \(decisions.count) decisions")
        }
        for (index, choice) in architecture.choices.enumerated() where !decisions[index].options.indices.contains(choice) {
            throw SearchError.stateDoesNotMatchSpace(
                space: space.name,
                detail: "choice \(choice) of decision '\(decisions[index].name)' is out of range 0..<\(decisions[index].options.count)")
        }
    }
}
