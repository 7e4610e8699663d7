import Records

/// The one order of candidates, used for the search's best (its saved weights, the API's
/// `best_architecture`), `naslab analyze`'s top-k and everything derived from them:
/// higher validation accuracy first; on a tie, lower final validation loss (the last epoch's
/// `val_loss`; a small validation split, such as digits' 145 images, often saturates at 1.0 for
/// several candidates); then the lower id.
public struct CandidateRanking: Sendable {
    /// The final validation loss of each trained candidate.
    public var validationLoss: [Int64: Double]

    public init(validationLoss: [Int64: Double] = [:]) { self.validationLoss = validationLoss }

    /// The final validation loss of each candidate from a record's epoch rows (the last epoch's).
    public init(epochs: [EpochRow]) {
        var last = [Int64: EpochRow]()
        for row in epochs where row.epoch >= (last[row.candidateID]?.epoch ?? 0) { last[row.candidateID] = row }
        self.init(validationLoss: last.compactMapValues { $0.validationLoss.isFinite ? $0.validationLoss : nil })
    }

    /// Whether `a` ranks before `b`.
    public func isBetter(_ a: CandidateRow, than b: CandidateRow) -> Bool {
        if a.validationScore != b.validationScore { return a.validationScore > b.validationScore }
        let lossA = validationLoss[a.id] ?? .infinity, lossB = validationLoss[b.id] ?? .infinity
        if lossA != lossB { return lossA < lossB }
        return a.id < b.id
    }

    /// Accepted candidates with a finite validation accuracy, best first.
    public func ranked(_ rows: [CandidateRow]) -> [CandidateRow] {
        rows.filter { $0.status == .accepted && $0.validationScore.isFinite }.sorted(by: isBetter)
    }

    /// The best of `rows` (see ``ranked(_:)``).
    public func best(_ rows: [CandidateRow]) -> CandidateRow? {
        rows.filter { $0.status == .accepted && $0.validationScore.isFinite }.min(by: isBetter)
    }

    /// The candidates tied with the best on the validation score (best first); empty without a tie.
    public func tiesWithBest(_ rows: [CandidateRow]) -> [CandidateRow] {
        let all = ranked(rows)
        guard let first = all.first else { return [] }
        let tied = all.filter { $0.validationScore == first.validationScore }
        return tied.count > 1 ? tied : []
    }
}
