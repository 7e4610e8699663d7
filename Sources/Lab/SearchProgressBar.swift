import Foundation
import Records

/// A one-line progress display for searches on stderr: candidates done/budget, best so far, ETA.
/// On a terminal the line is redrawn in place; otherwise one line is printed per candidate.
public final class SearchProgressBar: SearchObserver {
    private let isTerminal = isatty(STDERR_FILENO) == 1
    private var start = Date()
    private var startedWith = 0
    private let quiet: Bool

    public init(quiet: Bool = false) { self.quiet = quiet }

    private func write(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }

    public func searchStarted(budget: Int, alreadyEvaluated: Int) {
        start = Date()
        startedWith = alreadyEvaluated
        if !quiet, alreadyEvaluated > 0 { write("resuming: \(alreadyEvaluated)/\(budget) candidates already evaluated\n") }
    }

    public func candidateStarted(id: Int, architecture: String) {
        guard !quiet, isTerminal else { return }
        let short = architecture.count > 60 ? architecture.prefix(57) + "..." : Substring(architecture)
        write("\r\u{1B}[K  training candidate \(id): \(short)")
    }

    public func candidateFinished(_ row: CandidateRow, evaluated: Int, budget: Int, best: CandidateRow?) {
        guard !quiet else { return }
        let done = evaluated - startedWith
        let elapsed = Date().timeIntervalSince(start)
        let eta = done > 0 ? elapsed / Double(done) * Double(max(0, budget - evaluated)) : .nan
        let width = 24
        let filled = min(width, budget > 0 ? width * evaluated / budget : width)
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let bestText = best.map { String(format: "best %.4f (#%d)", $0.validationScore, $0.id) } ?? "best –"
        let this: String
        switch row.status {
        case .accepted: this = String(format: "#%d val %.4f", row.id, row.validationScore)
        case .failed: this = "#\(row.id) failed"
        case .rejected: this = "#\(row.id) rejected"
        }
        let line = "[\(bar)] \(evaluated)/\(budget)  \(bestText)  \(this)  ETA \(formatDuration(eta))"
        write(isTerminal ? "\r\u{1B}[K" + line : line + "\n")
    }

    public func searchFinished(_ summary: SearchSummary) {
        if !quiet, isTerminal { write("\n") }
    }
}

/// `1h02m`, `3m05s`, `12s`, or `–` for an unknown duration.
public func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "–" }
    let s = Int(seconds.rounded())
    if s >= 3600 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
    if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return "\(s)s"
}
