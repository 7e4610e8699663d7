import NASCore

/// One architecture a searcher asks to have evaluated.
public struct Proposal: Hashable, Codable, Sendable {
    /// Unique within one search, increasing in the order of `ask()` calls (0, 1, 2, …).
    public var id: Int
    /// The canonical architecture to evaluate.
    public var architecture: Architecture
    /// The proposal this one was derived from (mutation parent, local-search centre), if any.
    public var parentID: Int?

    public init(id: Int, architecture: Architecture, parentID: Int? = nil) {
        self.id = id
        self.architecture = architecture
        self.parentID = parentID
    }
}

/// What became of a proposal.
public enum EvaluationOutcome: Hashable, Codable, Sendable {
    /// Trained (or looked up) and scored; `objective` is maximised (e.g. validation accuracy).
    case evaluated(objective: Double)
    /// Rejected by a constraint before training (e.g. too many parameters); costs no training budget.
    case rejected(reason: String)
    /// Training or lookup failed (e.g. diverged, crashed, missing from a table).
    case failed(reason: String)
}

/// The result of one proposal, reported back with `tell(_:)`.
public struct Observation: Hashable, Codable, Sendable {
    public var proposalID: Int
    public var architecture: Architecture
    public var outcome: EvaluationOutcome

    public init(proposalID: Int, architecture: Architecture, outcome: EvaluationOutcome) {
        self.proposalID = proposalID
        self.architecture = architecture
        self.outcome = outcome
    }

    /// An observation for `proposal`.
    public init(_ proposal: Proposal, _ outcome: EvaluationOutcome) {
        self.init(proposalID: proposal.id, architecture: proposal.architecture, outcome: outcome)
    }

    /// The objective if the outcome is `.evaluated`, else `nil`.
    public var objective: Double? {
        if case .evaluated(let value) = outcome { return value }
        return nil
    }
}

/// Why a searcher stopped proposing (`ask()` returns `nil` from then on).
public enum SearchStopReason: Hashable, Codable, Sendable, CustomStringConvertible {
    /// `count` consecutive proposals were rejected by constraints.
    case tooManyConsecutiveRejections(count: Int)
    /// `count` consecutive proposals failed.
    case tooManyConsecutiveFailures(count: Int)
    /// No architecture that was not already proposed could be found (the space is used up).
    case noUnseenArchitecture(seenCount: Int)

    public var description: String {
        switch self {
        case .tooManyConsecutiveRejections(let n):
            return "stopped: \(n) consecutive proposals were rejected by constraints; no feasible architecture found"
        case .tooManyConsecutiveFailures(let n):
            return "stopped: \(n) consecutive evaluations failed"
        case .noUnseenArchitecture(let n):
            return "stopped: no unseen architecture left after \(n) proposals (search space exhausted)"
        }
    }
}

/// Errors of the Search module.
public enum SearchError: Error, Equatable, CustomStringConvertible {
    /// A stored searcher state does not fit the space it is resumed with.
    case stateDoesNotMatchSpace(space: String, detail: String)
    /// A hyper-parameter is out of range.
    case invalidParameter(name: String, value: String, expected: String)

    public var description: String {
        switch self {
        case .stateDoesNotMatchSpace(let space, let detail):
            return "searcher state does not match space '\(space)': \(detail)"
        case .invalidParameter(let name, let value, let expected):
            return "invalid searcher parameter \(name) = \(value): expected \(expected)"
        }
    }
}

/// An ask/tell architecture searcher.
///
/// A searcher only proposes architectures of its space and learns from the observations it is
/// told; it never builds or trains a model. `ask()` may be called several times before the
/// matching `tell(_:)`s (parallel workers); observations may arrive in any order.
/// Rejected proposals (constraints) do not count as evaluations: the searcher simply proposes
/// again, and stops (`ask()` returns `nil`, `stopReason` says why) after a configurable number
/// of consecutive rejections or failures.
///
/// All randomness comes from a `SeededGenerator` inside `state`; the whole `state` is `Codable`,
/// so a killed search resumes exactly: `init(space:state:)` with a decoded state continues with
/// the same proposals as the uninterrupted search.
///
/// ```swift
/// var searcher = try RegularizedEvolution(space: space, seed: 1)
/// while let proposal = searcher.ask() {
///     let accuracy = train(proposal.architecture)
///     searcher.tell(Observation(proposal, .evaluated(objective: accuracy)))
/// }
/// ```
public protocol Searcher {
    /// Everything needed to resume (hyper-parameters, history, RNG), without the space.
    associatedtype State: Codable, Equatable, Sendable

    /// A short name (`random`, `regularized-evolution`, `local-search`).
    var name: String { get }
    /// The space proposals come from.
    var space: any ArchitectureSpace { get }
    /// The resumable state.
    var state: State { get }
    /// Resumes from a stored `state`; throws if the state does not fit `space`.
    init(space: any ArchitectureSpace, state: State) throws

    /// The next architecture to evaluate, or `nil` once the searcher has stopped.
    mutating func ask() -> Proposal?
    /// Reports the outcome of a pending proposal (others are ignored and counted in the
    /// ledger's `ignoredObservationCount`).
    mutating func tell(_ observation: Observation)
    /// Why the searcher stopped, or `nil` while it is still searching.
    var stopReason: SearchStopReason? { get }
}

extension Searcher {
    /// Up to `count` proposals for parallel workers (fewer if the searcher stops).
    public mutating func ask(count: Int) -> [Proposal] {
        var proposals = [Proposal]()
        for _ in 0..<max(0, count) {
            guard let proposal = ask() else { break }
            proposals.append(proposal)
        }
        return proposals
    }

    /// Tells several observations in order.
    public mutating func tell(_ observations: [Observation]) {
        for observation in observations { tell(observation) }
    }
}
