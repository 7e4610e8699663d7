import ArgumentParser
import Foundation
import Lab
import Records

struct SearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search", abstract: "Run the search an experiment config describes; writes an HDF5 record.")

    @Argument(help: "An experiment config (Experiments/*.yaml).") var config: String
    @Option(help: "Override the config's seed.") var seed: UInt64?
    @Option(help: "Override the number of candidates to evaluate.") var budget: Int?
    @Option(help: "Override the record path.") var output: String?
    @Option(help: "Override the number of parallel workers (candidates trained at once, each on threads / workers threads).")
    var workers: Int?
    @Option(help: "Override the config's compute threads (split among the workers).") var threads: Int?
    @Flag(help: "Replace an existing record instead of refusing.") var overwrite = false
    @Flag(help: "No progress display.") var quiet = false

    func validate() throws {
        try requirePositive(budget, "--budget")
        try requirePositive(workers, "--workers")
        try requirePositive(threads, "--threads")
    }

    func run() throws {
        try reportingErrors {
            var c = try ExperimentConfig.load(path: config)
            if let seed { c.seed = seed }
            if let budget { c.budget.candidates = budget }
            if let output { c.output = output }
            if let workers { c.workers = workers }
            if let threads { c.threads = threads }
            if c.output == nil { c.output = c.outputPath }
            let runner = try ExperimentRunner.start(config: c, configYAML: c.yamlText, overwrite: overwrite)
            runner.observers.append(SearchProgressBar(quiet: quiet))
            printSummary(try runner.run())
        }
    }
}

struct ResumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume", abstract: "Continue a killed or stopped search from its record.")

    @Argument(help: "The record (Results/*.h5).") var record: String
    @Option(help: "A config file that must equal the stored one (refuses if it was changed).") var config: String?
    @Flag(help: "No progress display.") var quiet = false

    func run() throws {
        try reportingErrors {
            var expected: ExperimentConfig?
            if let config { expected = try ExperimentConfig.load(path: config) }
            let runner = try ExperimentRunner.resume(recordPath: record, config: expected)
            runner.observers.append(SearchProgressBar(quiet: quiet))
            printSummary(try runner.run())
        }
    }
}

func printSummary(_ s: SearchSummary) {
    print("")
    print("search finished: \(s.stopReason)")
    print("candidates: \(s.evaluated) evaluated (\(s.failed) failed), \(s.rejected) rejected by constraints, wall time \(formatDuration(s.wallSeconds))")
    print(String(format: "per candidate: %.2f s evaluation, %.4f s framework overhead (%.2f %%)", s.evaluationSecondsPerCandidate,
                 s.overheadSecondsPerCandidate,
                 100 * s.overheadSecondsPerCandidate / max(1e-12, s.overheadSecondsPerCandidate + s.evaluationSecondsPerCandidate)))
    let analysis = try? RecordAnalysis(path: s.recordPath)
    let label = analysis?.scoreLabel ?? "accuracy"
    if let analysis {
        print("")
        print("top candidates by validation \(label):")
        print(RecordAnalysis.table(analysis.top(5), metric: analysis.scoreMetric))
        if let tie = analysis.tieNote { print(tie) }
    }
    if let best = s.best {
        print("")
        print(String(format: "best: candidate %lld, validation %@ %.4f, test %@ %.4f, %.0f params",
                     best.id, label, best.validationScore, label, best.testScore, best.params))
        print("      \(best.architecture)")
    }
    print("record: \(s.recordPath)")
}

struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze", abstract: "Top-k table, Pareto fronts and search progress of a record; SVG plots.")

    @Argument(help: "The record (Results/*.h5).") var record: String
    @Option(help: "How many top candidates to list.") var top = 10
    @Option(help: "Write SVG plots into this directory.") var plot: String?

    func validate() throws { try requirePositive(top, "--top") }

    func run() throws {
        try reportingErrors {
            let analysis = try RecordAnalysis(path: record)
            print(analysis.report(top: top), terminator: "")
            if let plot {
                for path in try analysis.writePlots(to: plot) { print("wrote \(path)") }
            }
        }
    }
}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Export a record's candidate table as CSV or JSON.")

    enum Format: String, ExpressibleByArgument, CaseIterable { case csv, json }

    @Argument(help: "The record (Results/*.h5).") var record: String
    @Option(help: "csv or json.") var format: Format
    @Option(name: [.short, .long], help: "Write here instead of standard output.") var output: String?

    func run() throws {
        try reportingErrors {
            let analysis = try RecordAnalysis(path: record)
            let rows = analysis.candidates
            let text = format == .csv ? CandidateExport.csv(rows, metric: analysis.scoreMetric, reported: analysis.reported)
                                      : CandidateExport.json(rows, metric: analysis.scoreMetric, reported: analysis.reported)
            if let output {
                try text.write(toFile: output, atomically: true, encoding: .utf8)
            } else {
                print(text, terminator: text.hasSuffix("\n") ? "" : "\n")
            }
        }
    }
}

struct ReproduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reproduce", abstract: "Retrain a recorded candidate and compare with the record.")

    @Argument(help: "The record (Results/*.h5).") var record: String
    @Option(help: "Candidate id (default: the best).") var candidate: Int?
    @Option(help: "Compute threads (default: the record's). Another count is not expected to be bit-identical: its accuracies are compared with a tolerance of \(Reproduction.crossThreadAccuracyTolerance).")
    var threads: Int?

    func validate() throws {
        try requireNonNegative(candidate, "--candidate")
        try requirePositive(threads, "--threads")
    }

    func run() throws {
        try reportingErrors {
            let r = try Reproduction.run(recordPath: record, candidateID: candidate, threads: threads)
            print(r.report)
            if !r.passed { throw ExitCode(3) }
        }
    }
}

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate", abstract: "Worker: train one candidate spec (JSON) and write its result (JSON).",
        discussion: "Used by the Slurm executor; each array task runs one spec.")

    @Argument(help: "The candidate spec (JSON) written by the coordinator.") var spec: String
    @Option(help: "Where to write the result JSON.") var output: String
    @Option(help: "Where to write the trained weights (default: next to the result).") var weightsDirectory: String?
    @Option(help: "Worker name recorded with the result.") var worker: String?

    func run() throws {
        try reportingErrors {
            let s = try CandidateSpec.load(path: spec)
            try CandidateResult.checkWritable(output)
            let name = worker ?? ProcessInfo.processInfo.environment["SLURM_ARRAY_JOB_ID"].map {
                "slurm-\($0)_\(ProcessInfo.processInfo.environment["SLURM_ARRAY_TASK_ID"] ?? "0")"
            } ?? "local"
            let result = CandidateTraining.evaluate(
                s, datasets: DatasetCache(),
                weightsDirectory: weightsDirectory ?? (output as NSString).deletingLastPathComponent, worker: name)
            try SlurmResultFile.write(result, to: output)
        }
    }
}
