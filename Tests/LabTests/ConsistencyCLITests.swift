import Foundation
import Lab
import Records
import TestSupport
import XCTest

/// What a new user reads must be right: counts, conventions, names.
final class ConsistencyCLITests: XCTestCase {
    func testEstimatePrints64BitCountsAndTheNB201ConventionForCellSpaces() throws {
        let text = try CLI.run(["estimate", "--space", "reference/resnet18", "--input", "3x224x224", "--no-latency"])
        XCTAssertEqual(text.status, 0, text.stderr)
        let json = try CLI.run(["estimate", "--space", "reference/resnet18", "--input", "3x224x224", "--no-latency", "--json"])
        let estimates = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        let flops = try XCTUnwrap(estimates.first?["flops"] as? Int)
        XCTAssertEqual(flops, 3_627_132_928, "ResNet-18 at 224×224: 1.81 GMACs")
        XCTAssertTrue(text.stdout.contains("FLOPs    \(flops)"), text.stdout)
        let counts = text.stdout.split(separator: "\n").filter { $0.hasPrefix("params") }
        XCTAssertEqual(counts.count, 1)
        XCTAssertFalse(counts.contains { $0.contains("-") }, "no count printed as a negative 32-bit number: \(text.stdout)")
        XCTAssertNil(estimates.first?["nasbench201_flops"] as? Int, "only cell spaces carry the NB201 convention")

        let cell = try CLI.run(["estimate", "--space", "nasbench201", "--random", "2", "--input", "3x32x32", "--no-latency", "--json"])
        XCTAssertEqual(cell.status, 0, cell.stderr)
        let cells = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(cell.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(cells.count, 2)
        for c in cells {
            let nb = try XCTUnwrap(c["nasbench201_flops"] as? Int, "\(c)")
            XCTAssertGreaterThan(nb, 0)
        }
        let cellText = try CLI.run(["estimate", "--space", "nasbench201", "--random", "1", "--input", "3x32x32", "--no-latency"])
        XCTAssertTrue(cellText.stdout.contains("NB201 FLOPs"), cellText.stdout)
    }
}

/// A tabular benchmark's columns are recorded under their own names; nothing else is called test accuracy.
final class TabularReportColumnsTests: XCTestCase {
    /// Every NAS-Bench-201 cell (5 ops on 6 edges) with made-up, distinct values per column.
    static func table(at url: URL) throws {
        let ops = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
        var lines = ["Arch,Metric,OtherA,OtherB"]
        var index = 0
        for a in ops { for b in ops { for c in ops { for d in ops { for e in ops { for f in ops {
            let key = "|\(a)~0|+|\(b)~0|\(c)~1|+|\(d)~0|\(e)~1|\(f)~2|"
            lines.append("\(key),\(50 + Double(index % 997) / 100),\(Double(index) / 1000),\(-Double(index))")
            index += 1
        } } } } } }
        try lines.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
    }

    func testReportColumnsAreRecordedExportedAndShownUnderTheirNames() throws {
        let dir = try CLI.scratch("report-columns")
        defer { try? FileManager.default.removeItem(at: dir) }
        let tableURL = dir.appendingPathComponent("table.csv")
        try Self.table(at: tableURL)
        let record = dir.appendingPathComponent("run.h5").path
        let config = dir.appendingPathComponent("tabular.yaml")
        try """
            name: tabular-report
            seed: 3
            space: nasbench201
            searcher: {kind: local_search}
            budget: {candidates: 6}
            evaluator:
              kind: tabular
              table: \(tableURL.path)
              key_column: Arch
              metric_column: Metric
              report_columns: [OtherA, OtherB]
            output: \(record)
            """.write(to: config, atomically: true, encoding: .utf8)
        let search = try CLI.run(["search", config.path])
        XCTAssertEqual(search.status, 0, search.stderr)

        // The table, read again, is the reference for every recorded value.
        var expected = [String: [Double]]()
        for line in try String(contentsOf: tableURL, encoding: .utf8).split(separator: "\n").dropFirst() {
            let f = line.split(separator: ",").map(String.init)
            expected[f[0]] = [Double(f[1])!, Double(f[2])!, Double(f[3])!]
        }
        let csv = try CLI.run(["export", record, "--format", "csv"])
        XCTAssertEqual(csv.status, 0, csv.stderr)
        let lines = csv.stdout.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map(String.init)
        let header = lines[0].split(separator: ",").map(String.init)
        XCTAssertEqual(Array(header.suffix(3)), ["Metric", "OtherA", "OtherB"])
        let architecture = header.firstIndex(of: "architecture")!, test = header.firstIndex(of: "test_accuracy")!
        let validation = header.firstIndex(of: "val_accuracy")!
        var checked = 0
        for line in lines.dropFirst() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard let values = expected[f[architecture]] else { continue }
            XCTAssertEqual(f[test], "", "a table has no test split: nothing is stored as test accuracy")
            XCTAssertEqual(Double(f[validation]), values[0], "the metric column is the search metric")
            XCTAssertEqual(f.suffix(3).map { Double($0)! }, values, line)
            checked += 1
        }
        XCTAssertEqual(checked, 6)

        let json = try CLI.run(["export", record, "--format", "json"])
        let objects = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        for object in objects {
            let reported = try XCTUnwrap(object["reported"] as? [String: Double])
            XCTAssertEqual(reported["OtherB"], expected[object["architecture"] as! String]?[2])
        }
        let analyze = try CLI.run(["analyze", record])
        XCTAssertTrue(analyze.stdout.contains("reported values") && analyze.stdout.contains("OtherA"), analyze.stdout)
    }
}

/// One order of candidates: ties on validation accuracy go to the lower final validation loss.
final class CandidateRankingTests: XCTestCase {
    func row(_ id: Int64, _ accuracy: Double) -> CandidateRow {
        CandidateRow(id: id, architecture: "a\(id)", hash: "h\(id)", status: .accepted, validationScore: accuracy)
    }

    func testTiesAreBrokenByFinalValidationLossThenId() {
        let rows = [row(0, 1.0), row(1, 0.9), row(2, 1.0), row(3, 1.0), CandidateRow(id: 4, architecture: "x", hash: "x", status: .failed)]
        let ranking = CandidateRanking(epochs: [
            EpochRow(candidateID: 0, epoch: 1, trainLoss: 1, trainAccuracy: 0.5, validationLoss: 0.01, validationAccuracy: 0.9),
            EpochRow(candidateID: 0, epoch: 2, trainLoss: 1, trainAccuracy: 0.5, validationLoss: 0.30, validationAccuracy: 1.0),
            EpochRow(candidateID: 2, epoch: 2, trainLoss: 1, trainAccuracy: 0.5, validationLoss: 0.05, validationAccuracy: 1.0),
            EpochRow(candidateID: 2, epoch: 1, trainLoss: 1, trainAccuracy: 0.5, validationLoss: 0.90, validationAccuracy: 0.8),
        ])
        XCTAssertEqual(ranking.validationLoss, [0: 0.30, 2: 0.05], "the last epoch's loss, whatever the row order")
        XCTAssertEqual(ranking.ranked(rows).map(\.id), [2, 0, 3, 1], "2 beats 0 on loss; 3 has no loss; failed rows drop out")
        XCTAssertEqual(ranking.best(rows)?.id, 2)
        XCTAssertEqual(ranking.tiesWithBest(rows).map(\.id), [2, 0, 3])
        XCTAssertEqual(CandidateRanking().ranked(rows).map(\.id), [0, 2, 3, 1], "without losses: lower id")
        XCTAssertEqual(ranking.tiesWithBest([row(0, 1.0), row(1, 0.5)]).map(\.id), [])
    }

    /// The quick start's digits search: several candidates reach the same best validation accuracy;
    /// the search's output and `analyze` say so, and the best is the one with the lowest loss.
    func testTheTieIsVisibleInTheSearchOutputAndAnalyze() throws {
        let dir = try CLI.scratch("tie")
        defer { try? FileManager.default.removeItem(at: dir) }
        let record = dir.appendingPathComponent("run.h5").path
        let search = try CLI.run(["search", "Experiments/quickstart-digits.yaml", "--output", record, "--quiet"])
        XCTAssertEqual(search.status, 0, search.stderr)
        let analysis = try RecordAnalysis(path: record)
        let tied = analysis.ranking.tiesWithBest(analysis.candidates)
        guard !tied.isEmpty else {
            XCTAssertNil(analysis.tieNote)
            XCTAssertFalse(search.stdout.contains("tie:"), search.stdout)
            return
        }
        XCTAssertEqual(analysis.bestID, tied[0].id, "the recorded best is the tie's winner")
        let losses = tied.compactMap { analysis.ranking.validationLoss[$0.id] }
        XCTAssertEqual(losses, losses.sorted(), "tied candidates are ordered by final validation loss")
        XCTAssertTrue(search.stdout.contains("tie: \(tied.count) candidates share the best validation accuracy"), search.stdout)
        let analyze = try CLI.run(["analyze", record])
        XCTAssertTrue(analyze.stdout.contains("tie: "), analyze.stdout)
    }
}

/// A search that cannot start leaves nothing behind: fixing the config is enough to run it.
final class FailedStartTests: XCTestCase {
    func testASearchThatCannotStartLeavesNoRecord() throws {
        let dir = try CLI.scratch("failed-start")
        defer { try? FileManager.default.removeItem(at: dir) }
        let record = dir.appendingPathComponent("run.h5").path
        let config = dir.appendingPathComponent("run.yaml")
        func write(dataset: String) throws {
            try """
                name: failed-start
                seed: 1
                space: small
                dataset: \(dataset)
                budget: {candidates: 1}
                training: {epochs: 1}
                constraints: {max_params: 30000}
                output: \(record)
                """.write(to: config, atomically: true, encoding: .utf8)
        }
        try write(dataset: dir.appendingPathComponent("missing.csv").path)
        let failed = try CLI.run(["search", config.path])
        XCTAssertNotEqual(failed.status, 0)
        XCTAssertTrue(failed.stderr.contains("missing.csv"), failed.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: record), "no empty record left behind")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("run.live.jsonl").path))

        try write(dataset: "digits")
        let fixed = try CLI.run(["search", config.path])
        XCTAssertEqual(fixed.status, 0, "the fixed config runs without --overwrite: \(fixed.stderr)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: record))
    }
}

/// Every file a command writes is under a path the user gave or the documented per-user cache.
final class WrittenPathsTests: XCTestCase {
    func testSearchWritesItsLatencyTableToTheCacheNotTheWorkingDirectoryAndBuildTableRefusesToReplace() throws {
        let dir = try CLI.scratch("written-paths")
        defer {
            unsetenv("NASLAB_CACHE_DIR")
            try? FileManager.default.removeItem(at: dir)
        }
        let cache = dir.appendingPathComponent("cache")
        setenv("NASLAB_CACHE_DIR", cache.path, 1)
        let workingTable = CLI.repositoryRoot.appendingPathComponent("Results/latency-table.h5")
        let before = try? FileManager.default.attributesOfItem(atPath: workingTable.path)[.modificationDate] as? Date
        let config = dir.appendingPathComponent("latency.yaml")
        let record = dir.appendingPathComponent("out/run.h5")
        try """
            name: written-paths
            seed: 2
            space: small
            dataset: digits
            budget: {candidates: 1}
            training: {epochs: 1}
            constraints: {max_latency_ms: 50, latency: predicted}
            output: \(record.path)
            """.write(to: config, atomically: true, encoding: .utf8)
        let search = try CLI.run(["search", config.path])
        XCTAssertEqual(search.status, 0, search.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: cache.appendingPathComponent("latency-table.h5").path),
                      "the predicted latency's table is in the per-user cache")
        let after = try? FileManager.default.attributesOfItem(atPath: workingTable.path)[.modificationDate] as? Date
        XCTAssertEqual(before, after, "nothing written to ./Results of the working directory")

        let table = dir.appendingPathComponent("table.h5").path
        let first = try CLI.run(["latency", "build-table", "--spaces", "small", "--input", "1x8x8", "--samples", "2", "-o", table])
        XCTAssertEqual(first.status, 0, first.stderr)
        let again = try CLI.run(["latency", "build-table", "--spaces", "small", "--input", "1x8x8", "--samples", "2", "-o", table])
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.stderr.contains("already exists: pass --overwrite"), again.stderr)
        let replaced = try CLI.run(["latency", "build-table", "--spaces", "small", "--input", "1x8x8", "--samples", "2", "-o", table,
                                    "--overwrite"])
        XCTAssertEqual(replaced.status, 0, replaced.stderr)
    }
}

/// Every script in Benchmarks/ installs its Python packages from PyPI as the README's machines
/// allow: never from another package index (the torch wheel installs with a plain pip install).
final class BenchmarkScriptsTests: XCTestCase {
    func testNoBenchmarkScriptPointsPipAtAnotherIndex() throws {
        let directory = CLI.repositoryRoot.appendingPathComponent("Benchmarks")
        let scripts = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sh") }
        XCTAssertFalse(scripts.isEmpty)
        for name in scripts {
            let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            for forbidden in ["--index-url", "--extra-index-url", "-i http", "download.pytorch.org", "-f http", "--find-links"] {
                XCTAssertFalse(text.contains(forbidden), "Benchmarks/\(name) uses \(forbidden)")
            }
            if text.contains("torch") && text.contains("pip install") {
                XCTAssertTrue(text.contains("pip install --quiet \"torch==2.13.0+cpu\"") || text.contains("pip install \"torch==2.13.0+cpu\""),
                              "Benchmarks/\(name) installs torch with a plain pip install of the pinned CPU wheel")
            }
        }
    }
}
