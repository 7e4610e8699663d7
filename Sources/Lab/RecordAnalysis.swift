import Datasets
import Engine
import Foundation
import NASCore
import Records

/// Reads a record and summarises it: top-k table, Pareto fronts, search progress, SVG plots.
public struct RecordAnalysis {
    public let path: String
    public let metadata: RecordMetadata
    public let candidates: [CandidateRow]
    public let fronts: ParetoFronts
    public let bestID: Int64?
    /// Values recorded under their own names (a tabular benchmark's metric and report columns).
    public let reported: CandidateExport.Reported
    /// The order of candidates (ties on validation accuracy broken by final validation loss).
    public let ranking: CandidateRanking
    /// The metric of the record's score columns (`accuracy`, `miou`, `map50`).
    public let scoreMetric: String
    /// Finished rungs of a multi-fidelity search (empty otherwise).
    public let rungs: [RungRow]
    /// `scoreMetric` for people (`accuracy`, `mIoU`, `mAP@0.5`).
    public var scoreLabel: String { TaskKind.metricLabel(scoreMetric) }

    public init(path: String) throws {
        let record = try ExperimentRecord.openReadOnly(path: path)
        defer { try? record.close() }
        self.path = path
        metadata = record.metadata
        candidates = try record.readCandidates()
        fronts = try record.paretoFronts()
        bestID = try record.bestCandidateID()
        reported = try record.readReported()
        scoreMetric = record.layout.scoreMetric
        ranking = CandidateRanking(epochs: try record.readEpochs())
        rungs = try record.readRungs()
    }

    /// One line per rung of a multi-fidelity search: its epochs, how many candidates finished it,
    /// how many of those were promoted to the next rung, and the best validation score there.
    public struct RungSummary: Equatable, Sendable {
        public var rung: Int
        /// The epochs candidates of this rung trained to (several values: Hyperband brackets cut short, …).
        public var epochs: [Int]
        public var candidates: Int
        public var failed: Int
        public var promoted: Int
        public var best: (id: Int64, score: Double)?

        public static func == (a: RungSummary, b: RungSummary) -> Bool {
            a.rung == b.rung && a.epochs == b.epochs && a.candidates == b.candidates && a.failed == b.failed
                && a.promoted == b.promoted && a.best?.id == b.best?.id && a.best?.score == b.best?.score
        }
    }

    /// Per rung: candidates, promotions, best score (empty without rungs).
    public var rungSummaries: [RungSummary] {
        let byRung = Dictionary(grouping: rungs, by: \.rung)
        return byRung.keys.sorted().map { rung in
            let rows = byRung[rung]!
            let next = Set((byRung[rung + 1] ?? []).map(\.candidateID))
            let best = rows.filter { $0.status == .accepted && $0.validationScore.isFinite }
                .max { $0.validationScore != $1.validationScore ? $0.validationScore < $1.validationScore : $0.candidateID > $1.candidateID }
            return RungSummary(rung: Int(rung), epochs: Array(Set(rows.map { Int($0.epochs) })).sorted(), candidates: rows.count,
                               failed: rows.filter { $0.status == .failed }.count,
                               promoted: rows.filter { next.contains($0.candidateID) }.count,
                               best: best.map { ($0.candidateID, $0.validationScore) })
        }
    }

    /// The rung table of `naslab analyze` (`nil` without rungs).
    public var rungReport: String? {
        let summaries = rungSummaries
        guard !summaries.isEmpty else { return nil }
        var out = "rungs (multi-fidelity; promoted candidates continue from their checkpoint):\n"
        out += " rung  epochs  candidates  failed  promoted  best val \(scoreLabel)\n"
        for r in summaries {
            let best = r.best.map { String(format: "%.4f (#%lld)", $0.score, $0.id) } ?? "–"
            let epochs = r.epochs.map(String.init).joined(separator: ",")
            out += String(format: "%5d  ", r.rung) + String(repeating: " ", count: max(0, 6 - epochs.count)) + epochs
                + String(format: "  %10d  %6d  %8d  ", r.candidates, r.failed, r.promoted) + best + "\n"
        }
        return out
    }

    public var accepted: [CandidateRow] { candidates.filter { $0.status == .accepted } }

    /// A line saying which candidates tie on the best validation accuracy and their final
    /// validation losses (the tie-break); `nil` without a tie.
    public var tieNote: String? {
        let tied = ranking.tiesWithBest(candidates)
        guard !tied.isEmpty else { return nil }
        let losses = tied.map { r in "#\(r.id) " + (ranking.validationLoss[r.id].map { String(format: "%.4f", $0) } ?? "–") }
        return String(format: "tie: %d candidates share the best validation %@ %.4f; the lower final validation loss decides: ",
                      tied.count, scoreLabel, tied[0].validationScore) + losses.joined(separator: ", ")
    }

    /// The `k` best accepted candidates in ``CandidateRanking``'s order.
    public func top(_ k: Int) -> [CandidateRow] { Array(ranking.ranked(candidates).prefix(k)) }

    /// Best validation accuracy after each evaluated (non-rejected) candidate.
    public var bestSoFar: [(evaluated: Int, accuracy: Double)] {
        var best = -Double.infinity
        var out = [(Int, Double)]()
        var n = 0
        for row in candidates.sorted(by: { $0.id < $1.id }) where row.status != .rejected {
            n += 1
            if row.status == .accepted, row.validationScore > best { best = row.validationScore }
            out.append((n, best.isFinite ? best : .nan))
        }
        return out
    }

    /// A plain-text table of candidates.
    /// - Parameter metric: the record's score metric (column headers `val <metric>`, `test <metric>`).
    public static func table(_ rows: [CandidateRow], metric: String = "accuracy", architectureWidth: Int = 48) -> String {
        func cut(_ s: String) -> String { s.count > architectureWidth ? String(s.prefix(architectureWidth - 1)) + "…" : s }
        func num(_ x: Double, _ f: String) -> String { x.isFinite ? String(format: f, x) : "–" }
        func pad(_ s: String, _ w: Int, left: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, w - s.count))
            return left ? s + fill : fill + s
        }
        let short = metric == "accuracy" ? "acc" : TaskKind.metricLabel(metric)
        // The score columns are as wide as their headers (`val mAP@0.5`), at least 8.
        let scoreWidth = max(8, "test ".count + short.count)
        func line(_ c: [String]) -> String {
            [pad(c[0], 5), pad(c[1], 9, left: true), pad(c[2], scoreWidth), pad(c[3], scoreWidth), pad(c[4], 9), pad(c[5], 8),
             pad(c[6], 8), c[7]].joined(separator: "  ")
        }
        var lines = [line(["id", "status", "val " + short, "test " + short, "params", "MFLOPs", "lat ms", "architecture"])]
        for r in rows {
            lines.append(line([String(r.id), r.status.rawValue, num(r.validationScore, "%.4f"), num(r.testScore, "%.4f"),
                               num(r.params, "%.0f"), num(r.flops / 1e6, "%.2f"),
                               num(r.measuredLatencyMs.isFinite ? r.measuredLatencyMs : r.predictedLatencyMs, "%.3f"),
                               cut(r.architecture)]))
        }
        return lines.joined(separator: "\n")
    }

    /// The text report of `naslab analyze`.
    public func report(top k: Int = 10) -> String {
        let byID = Dictionary(uniqueKeysWithValues: candidates.map { ($0.id, $0) })
        var out = "record: \(path)\nexperiment: \(metadata.name)  seed \(metadata.seed)  created \(metadata.createdAt)\n"
        out += "candidates: \(candidates.count) (accepted \(accepted.count), rejected \(candidates.filter { $0.status == .rejected }.count), failed \(candidates.filter { $0.status == .failed }.count))\n\n"
        out += "top \(min(k, accepted.count)) by validation \(scoreLabel):\n" + RecordAnalysis.table(top(k), metric: scoreMetric) + "\n"
        if let tie = tieNote { out += tie + "\n" }
        out += "\n"
        if let rungReport { out += rungReport + "\n" }
        if !reported.names.isEmpty {
            out += "reported values of the top \(min(k, accepted.count)) (recorded under their own names):\n"
            out += (["   id"] + reported.names).joined(separator: "  ") + "\n"
            for r in top(k) {
                let cells = reported.names.map { name -> String in
                    let text = (reported.values[r.id]?[name]).map { String(format: "%.4f", $0) } ?? "–"
                    return String(repeating: " ", count: max(0, name.count - text.count)) + text
                }
                out += ([String(repeating: " ", count: max(0, 5 - String(r.id).count)) + String(r.id)] + cells).joined(separator: "  ") + "\n"
            }
            out += "\n"
        }
        out += "Pareto front, validation \(scoreLabel) vs latency (\(fronts.accuracyVsLatency.count)):\n"
        out += RecordAnalysis.table(fronts.accuracyVsLatency.compactMap { byID[$0] }, metric: scoreMetric) + "\n\n"
        out += "Pareto front, validation \(scoreLabel) vs params (\(fronts.accuracyVsParams.count)):\n"
        out += RecordAnalysis.table(fronts.accuracyVsParams.compactMap { byID[$0] }, metric: scoreMetric) + "\n\n"
        let curve = bestSoFar
        if !curve.isEmpty {
            out += "search progress (best validation \(scoreLabel) after n candidates):\n"
            let marks = Set([1, 2, 5, 10, 20, 50, 100, 150, 200, 500, 1000, curve.count])
            for (n, acc) in curve where marks.contains(n) { out += String(format: "  %5d  %.4f\n", n, acc) }
        }
        return out
    }

    /// Writes `progress.svg` (best so far vs candidates) and `pareto-latency.svg`, `pareto-params.svg`.
    public func writePlots(to directory: String) throws -> [String] {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var written = [String]()
        func save(_ plot: SVGPlot, _ name: String) throws {
            let path = (directory as NSString).appendingPathComponent(name)
            try plot.render().write(toFile: path, atomically: true, encoding: .utf8)
            written.append(path)
        }
        var progress = SVGPlot(title: "\(metadata.name): best validation \(scoreLabel) so far", xLabel: "candidates evaluated",
                               yLabel: "validation \(scoreLabel)")
        let evaluatedRows = candidates.sorted { $0.id < $1.id }.filter { $0.status == .accepted }
        var index = [Int64: Int]()
        var n = 0
        for r in candidates.sorted(by: { $0.id < $1.id }) where r.status != .rejected { n += 1; index[r.id] = n }
        progress.series.append(.init(label: "candidates", points: evaluatedRows.map { (Double(index[$0.id]!), $0.validationScore) },
                                     color: "#9aa7b8"))
        progress.series.append(.init(label: "best so far", points: bestSoFar.map { (Double($0.evaluated), $0.accuracy) },
                                     color: "#d62728", line: true))
        try save(progress, "progress.svg")
        let byID = Dictionary(uniqueKeysWithValues: candidates.map { ($0.id, $0) })
        for (name, cost, label, front, logX) in [
            ("pareto-latency.svg", { (r: CandidateRow) in r.measuredLatencyMs.isFinite ? r.measuredLatencyMs : r.predictedLatencyMs },
             "latency (ms, batch 1)", fronts.accuracyVsLatency, false),
            ("pareto-params.svg", { (r: CandidateRow) in r.params }, "parameters", fronts.accuracyVsParams, true),
        ] {
            var plot = SVGPlot(title: "\(metadata.name): \(scoreLabel) vs \(label)", xLabel: label, yLabel: "validation \(scoreLabel)", logX: logX)
            plot.series.append(.init(label: "accepted", points: accepted.map { (cost($0), $0.validationScore) }, color: "#1f77b4"))
            let f = front.compactMap { byID[$0] }.sorted { cost($0) < cost($1) }
            plot.series.append(.init(label: "Pareto front", points: f.map { (cost($0), $0.validationScore) }, color: "#d62728",
                                     line: true, radius: 5, markers: true))
            try save(plot, name)
        }
        do {
            if let svg = try bestArchitectureSVG() {
                let path = (directory as NSString).appendingPathComponent("best-architecture.svg")
                try svg.write(toFile: path, atomically: true, encoding: .utf8)
                written.append(path)
            }
        } catch {
            FileHandle.standardError.write(Data("best-architecture.svg not drawn: \(error)\n".utf8))
        }
        return written
    }

    /// The best candidate's network as an SVG graph (``ArchitectureDiagram``), decoded for the
    /// record's input: NAS-Bench-201's 3×32×32 for tabular records, else the config's dataset
    /// (loaded and split as the search did). `nil` without a best candidate.
    public func bestArchitectureSVG() throws -> String? {
        guard let bestID, let best = candidates.first(where: { $0.id == bestID }) else { return nil }
        let config = try ExperimentConfig.parse(yaml: metadata.configYAML, file: "\(path):/config_yaml")
        let reference = try SpaceReference.fromText(metadata.searchSpaceYAML, name: config.space)
        let shape: FeatureShape, kind: InputKind, classes: Int
        if config.evaluator.kind == "tabular" {
            (shape, kind, classes) = ExperimentRunner.tabularInput
        } else {
            let meta = try DatasetCache().dataset(config.dataset, validationSplit: config.validationSplit, seed: config.seed).metadata
            (shape, kind, classes) = (meta.sampleShape, meta.inputKind, meta.classCount)
        }
        let graph = try reference.space.network(for: try reference.space.parse(best.architecture), inputShape: shape,
                                                inputKind: kind, classCount: classes)
        return try ArchitectureDiagram.svg(graph, title: "\(metadata.name): best candidate #\(best.id)")
    }
}
