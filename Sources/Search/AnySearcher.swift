import NASCore

/// A searcher chosen by configuration (e.g. from an experiment file or the command line).
public enum SearchAlgorithm: Hashable, Codable, Sendable, CustomStringConvertible {
    /// `RandomSearch`.
    case random(deduplicate: Bool = true)
    /// `RegularizedEvolution` (defaults P = 20, S = 10, dedup).
    case regularizedEvolution(populationSize: Int = 20, sampleSize: Int = 10, deduplicate: Bool = true)
    /// `LocalSearch` (defaults n0 = 10, restarts).
    case localSearch(initialSampleCount: Int = 10,
                     localOptimumPolicy: LocalSearch.LocalOptimumPolicy = .restartFromRandom)

    /// NASLab's best searcher on NAS-Bench-201 (see `docs/searchers.md`): local search with defaults.
    public static let best = SearchAlgorithm.localSearch()

    /// The algorithm with default settings for a name: `random`, `regularized-evolution`
    /// (or `evolution`), `local-search`; `nil` for other names.
    public init?(name: String) {
        switch name {
        case "random": self = .random()
        case "regularized-evolution", "evolution": self = .regularizedEvolution()
        case "local-search": self = .localSearch()
        default: return nil
        }
    }

    /// The searcher's name (`random`, `regularized-evolution`, `local-search`).
    public var name: String {
        switch self {
        case .random: return "random"
        case .regularizedEvolution: return "regularized-evolution"
        case .localSearch: return "local-search"
        }
    }

    public var description: String {
        switch self {
        case .random(let deduplicate):
            return "random(deduplicate: \(deduplicate))"
        case .regularizedEvolution(let p, let s, let deduplicate):
            return "regularized-evolution(populationSize: \(p), sampleSize: \(s), deduplicate: \(deduplicate))"
        case .localSearch(let n0, let policy):
            return "local-search(initialSampleCount: \(n0), localOptimumPolicy: \(policy.rawValue))"
        }
    }
}

/// Any of NASLab's searchers behind one type, with one `Codable` state: what a runner stores
/// to resume a search whose algorithm comes from configuration.
///
/// ```swift
/// var searcher = try AnySearcher(.regularizedEvolution(), space: space, seed: 1)
/// let saved = try JSONEncoder().encode(searcher.state)
/// let resumed = try AnySearcher(space: space, state: JSONDecoder().decode(AnySearcher.State.self, from: saved))
/// ```
public struct AnySearcher: Searcher {
    public enum State: Codable, Equatable, Sendable {
        case random(RandomSearch.State)
        case regularizedEvolution(RegularizedEvolution.State)
        case localSearch(LocalSearch.State)
    }

    // Exactly one of these is set. Optionals (not an enum with payloads) so that `ask` and
    // `tell` mutate the searcher in place instead of copying its state.
    private var random: RandomSearch?
    private var evolution: RegularizedEvolution?
    private var local: LocalSearch?

    /// A new searcher.
    /// - Parameters:
    ///   - algorithm: which searcher, with its settings.
    ///   - space: the search space.
    ///   - seed: seeds the searcher's generator.
    ///   - maximumConsecutiveRejections: stop after this many rejections in a row (default 1000).
    ///   - maximumConsecutiveFailures: stop after this many failures in a row (default 100).
    public init(_ algorithm: SearchAlgorithm, space: any ArchitectureSpace, seed: UInt64,
                maximumConsecutiveRejections: Int = 1000, maximumConsecutiveFailures: Int = 100) throws {
        switch algorithm {
        case .random(let deduplicate):
            random = try RandomSearch(
                space: space, seed: seed, deduplicate: deduplicate,
                maximumConsecutiveRejections: maximumConsecutiveRejections, maximumConsecutiveFailures: maximumConsecutiveFailures)
        case .regularizedEvolution(let populationSize, let sampleSize, let deduplicate):
            evolution = try RegularizedEvolution(
                space: space, seed: seed, populationSize: populationSize, sampleSize: sampleSize, deduplicate: deduplicate,
                maximumConsecutiveRejections: maximumConsecutiveRejections, maximumConsecutiveFailures: maximumConsecutiveFailures)
        case .localSearch(let initialSampleCount, let policy):
            local = try LocalSearch(
                space: space, seed: seed, initialSampleCount: initialSampleCount, localOptimumPolicy: policy,
                maximumConsecutiveRejections: maximumConsecutiveRejections, maximumConsecutiveFailures: maximumConsecutiveFailures)
        }
    }

    public init(space: any ArchitectureSpace, state: State) throws {
        switch state {
        case .random(let s): random = try RandomSearch(space: space, state: s)
        case .regularizedEvolution(let s): evolution = try RegularizedEvolution(space: space, state: s)
        case .localSearch(let s): local = try LocalSearch(space: space, state: s)
        }
    }

    public var name: String { random?.name ?? evolution?.name ?? local!.name }

    public var space: any ArchitectureSpace { random?.space ?? evolution?.space ?? local!.space }

    public var state: State {
        if let random { return .random(random.state) }
        if let evolution { return .regularizedEvolution(evolution.state) }
        return .localSearch(local!.state)
    }

    public var stopReason: SearchStopReason? { ledger.stopReason }
    /// The best evaluated architecture so far.
    public var best: EvaluatedArchitecture? { ledger.best }

    /// The shared bookkeeping (counters, best so far, generator).
    public var ledger: SearchLedger {
        random?.state.ledger ?? evolution?.state.ledger ?? local!.state.ledger
    }

    /// Makes the searcher's random draws start from `ranked` (best first): a zero-cost warm start
    /// (see ``SearchLedger/setWarmStart(_:)``).
    public mutating func setWarmStart(_ ranked: [Architecture]) {
        if random != nil { random!.setWarmStart(ranked) }
        if evolution != nil { evolution!.setWarmStart(ranked) }
        if local != nil { local!.setWarmStart(ranked) }
    }

    public mutating func ask() -> Proposal? {
        if random != nil { return random!.ask() }
        if evolution != nil { return evolution!.ask() }
        return local!.ask()
    }

    public mutating func tell(_ observation: Observation) {
        if random != nil { return random!.tell(observation) }
        if evolution != nil { return evolution!.tell(observation) }
        local!.tell(observation)
    }
}
