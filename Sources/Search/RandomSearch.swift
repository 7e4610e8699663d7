import NASCore

/// Random search: every proposal is an independent uniform sample of the space
/// (`ArchitectureSpace.sample(using:)`), by default never repeating an architecture.
///
/// ```swift
/// var searcher = try RandomSearch(space: space, seed: 7)
/// let proposal = searcher.ask()!
/// searcher.tell(Observation(proposal, .evaluated(objective: 0.91)))
/// ```
///
/// References:
/// - J. Bergstra, Y. Bengio, "Random Search for Hyper-Parameter Optimization", JMLR 2012.
/// - L. Li, A. Talwalkar, "Random Search and Reproducibility for Neural Architecture Search", UAI 2019.
public struct RandomSearch: Searcher {
    public struct State: Codable, Equatable, Sendable {
        public var ledger: SearchLedger
        /// Never propose an architecture twice (default `true`).
        public var deduplicate: Bool
    }

    public var name: String { "random" }
    public let space: any ArchitectureSpace
    public private(set) var state: State

    /// - Parameters:
    ///   - space: the search space.
    ///   - seed: seeds the searcher's generator.
    ///   - deduplicate: never propose an architecture twice (default `true`).
    ///   - maximumConsecutiveRejections: stop after this many rejections in a row (default 1000).
    ///   - maximumConsecutiveFailures: stop after this many failures in a row (default 100).
    public init(space: any ArchitectureSpace, seed: UInt64, deduplicate: Bool = true,
                maximumConsecutiveRejections: Int = 1000, maximumConsecutiveFailures: Int = 100) throws {
        self.space = space
        state = State(ledger: try SearchLedger(seed: seed, maximumConsecutiveRejections: maximumConsecutiveRejections,
                                               maximumConsecutiveFailures: maximumConsecutiveFailures),
                      deduplicate: deduplicate)
    }

    public init(space: any ArchitectureSpace, state: State) throws {
        try state.ledger.validate(against: space)
        self.space = space
        self.state = state
    }

    public var stopReason: SearchStopReason? { state.ledger.stopReason }
    /// The best evaluated architecture so far.
    public var best: EvaluatedArchitecture? { state.ledger.best }

    /// Random draws take these architectures first, best first (a zero-cost warm start).
    public mutating func setWarmStart(_ ranked: [Architecture]) { state.ledger.setWarmStart(ranked) }

    public mutating func ask() -> Proposal? {
        guard state.ledger.stopReason == nil else { return nil }
        guard let architecture = state.ledger.sample(from: space, unseen: state.deduplicate) else {
            state.ledger.stop(.noUnseenArchitecture(seenCount: state.ledger.seen.count))
            return nil
        }
        return state.ledger.propose(architecture)
    }

    public mutating func tell(_ observation: Observation) {
        state.ledger.record(observation)
    }
}
