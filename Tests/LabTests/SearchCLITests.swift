import Foundation
import TestSupport
import XCTest

/// End-to-end tests of `naslab search / resume / reproduce / analyze / export` on digits with the
/// `small` space, 1 epoch per candidate (a few seconds per search).
final class SearchCLITests: XCTestCase {
    func writeConfig(_ dir: URL, name: String, budget: Int, seed: Int = 3, extra: String = "") throws -> String {
        let path = dir.appendingPathComponent("\(name).yaml").path
        try """
        name: \(name)
        seed: \(seed)
        space: small
        dataset: digits
        searcher:
          kind: regularized_evolution
          population_size: 4
          sample_size: 2
        budget:
          candidates: \(budget)
        training:
          epochs: 1
          batch_size: 64
          learning_rate: 0.05
        threads: 1
        output: \(dir.appendingPathComponent("\(name).h5").path)
        \(extra)
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func exportJSON(_ record: String) throws -> [[String: Any]] {
        let out = try CLI.run(["export", record, "--format", "json"])
        XCTAssertEqual(out.status, 0, out.stderr)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]])
    }

    func testSearchWritesRecordThatH5pyReadsAndSameSeedGivesSameCandidates() throws {
        let dir = try CLI.scratch("search")
        let config = try writeConfig(dir, name: "a", budget: 5, extra: "constraints:\n  max_params: 20000\n")
        let run = try CLI.run(["search", config, "--quiet"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("search finished: budget of 5 candidates reached"), run.stdout)
        XCTAssertTrue(run.stdout.contains("record: "), run.stdout)
        let record = dir.appendingPathComponent("a.h5").path
        let rows = try exportJSON(record)
        let evaluated = rows.filter { ($0["status"] as? String) != "rejected" }
        XCTAssertEqual(evaluated.count, 5)
        for row in rows where (row["status"] as? String) == "rejected" {
            XCTAssertTrue((row["reason"] as? String ?? "").contains("max_params 20000"), "\(row)")
            XCTAssertGreaterThan(row["params"] as? Double ?? 0, 20000)
        }
        for row in evaluated {
            XCTAssertLessThanOrEqual(row["params"] as? Double ?? .infinity, 20000)
            XCTAssertEqual(row["status"] as? String, "accepted")
            XCTAssertTrue((row["val_accuracy"] as? Double)?.isFinite ?? false)
        }
        let bestAccuracy = evaluated.compactMap { $0["val_accuracy"] as? Double }.max() ?? 0
        XCTAssertGreaterThan(bestAccuracy, 0.5, "the best of 5 candidates learns digits in one epoch")

        // Same seed ⇒ same candidates and metrics (timings aside).
        let again = try CLI.run(["search", config, "--quiet", "--output", dir.appendingPathComponent("b.h5").path])
        XCTAssertEqual(again.status, 0, again.stderr)
        let rows2 = try exportJSON(dir.appendingPathComponent("b.h5").path)
        let keys = ["id", "architecture", "status", "params", "macs", "val_accuracy", "test_accuracy", "parent_id"]
        XCTAssertEqual(rows.count, rows2.count)
        for (r1, r2) in zip(rows, rows2) {
            for k in keys { XCTAssertEqual("\(r1[k] ?? "nil")", "\(r2[k] ?? "nil")", k) }
        }

        // A second reader (h5py) sees the documented layout.
        let py = try CLI.python("""
        import sys, h5py, json
        f = h5py.File(sys.argv[1], "r")
        c = f["candidates"][:]
        names = c.dtype.names
        for col in ["id", "architecture", "status", "params", "val_accuracy", "test_accuracy"]:
            assert col in names, (col, names)
        print(json.dumps({"rows": len(c), "accepted": int(sum(1 for s in c["status"] if s.decode() == "accepted")),
                          "best": int(f.attrs["best_candidate_id"]), "config": "budget" in f["config_yaml"][()].decode(),
                          "weights": len(list(f["best/weights"].keys())) > 0}))
        """, [record])
        XCTAssertEqual(py.status, 0, py.stderr)
        let info = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(py.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(info["rows"] as? Int, rows.count)
        XCTAssertEqual(info["accepted"] as? Int, 5)
        XCTAssertEqual(info["config"] as? Bool, true)
        XCTAssertEqual(info["weights"] as? Bool, true)
        XCTAssertGreaterThanOrEqual(info["best"] as? Int ?? -1, 0)
    }

    /// `--workers 2` trains two candidates at once, each in its own compute context of
    /// threads / workers; the record is the same for the same (seed, workers, threads).
    func testParallelWorkersAreDeterministicPerSeedWorkersAndThreads() throws {
        let dir = try CLI.scratch("workers")
        let config = try writeConfig(dir, name: "w", budget: 4, seed: 8)
        var records = [[[String: Any]]]()
        for name in ["w1", "w2"] {
            let path = dir.appendingPathComponent("\(name).h5").path
            let run = try CLI.run(["search", config, "--quiet", "--workers", "2", "--threads", "2", "--output", path])
            XCTAssertEqual(run.status, 0, run.stderr)
            XCTAssertTrue(run.stdout.contains("budget of 4 candidates reached"), run.stdout)
            records.append(try exportJSON(path))
        }
        let keys = ["id", "architecture", "status", "params", "val_accuracy", "test_accuracy", "parent_id"]
        XCTAssertEqual(records[0].count, records[1].count)
        XCTAssertGreaterThanOrEqual(records[0].filter { ($0["status"] as? String) == "accepted" }.count, 4)
        for (r1, r2) in zip(records[0], records[1]) {
            for k in keys { XCTAssertEqual("\(r1[k] ?? "nil")", "\(r2[k] ?? "nil")", k) }
        }
    }

    func testKilledSearchResumesWithoutLosingOrRerunningCandidates() throws {
        let dir = try CLI.scratch("resume")
        let config = try writeConfig(dir, name: "k", budget: 7, seed: 5)
        let record = dir.appendingPathComponent("k.h5").path
        // Reference: the same search uninterrupted.
        let reference = try CLI.run(["search", config, "--quiet", "--output", dir.appendingPathComponent("ref.h5").path])
        XCTAssertEqual(reference.status, 0, reference.stderr)

        let child = try CLI.start(["search", config])
        // Progress lines arrive on stderr, one per finished candidate; kill after the third.
        child.killWhenStderrContains(" 3/7 ", seconds: 120)
        XCTAssertEqual(child.process.terminationReason, .uncaughtSignal)
        let before = try exportJSON(record)
        XCTAssertGreaterThanOrEqual(before.count, 3, "finished candidates survive kill -9")

        let resumed = try CLI.run(["resume", record, "--quiet"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let after = try exportJSON(record)
        XCTAssertEqual(after.filter { ($0["status"] as? String) != "rejected" }.count, 7)
        // Candidates finished before the kill are kept as they were (not re-run: same wall time).
        for (old, new) in zip(before, after) {
            XCTAssertEqual("\(old["id"]!)", "\(new["id"]!)")
            XCTAssertEqual("\(old["wall_seconds"]!)", "\(new["wall_seconds"]!)")
        }
        // And the resumed search is the uninterrupted one.
        let ref = try exportJSON(dir.appendingPathComponent("ref.h5").path)
        XCTAssertEqual(ref.map { "\($0["architecture"]!) \($0["val_accuracy"]!)" }, after.map { "\($0["architecture"]!) \($0["val_accuracy"]!)" })

        // Resume refuses a changed config.
        let changed = try writeConfig(dir, name: "k", budget: 9, seed: 5)
        let refused = try CLI.run(["resume", record, "--config", changed])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("differs from the one the search started with"), refused.stderr)
    }

    func testReproduceAnalyzeAndExport() throws {
        let dir = try CLI.scratch("reproduce")
        let config = try writeConfig(dir, name: "r", budget: 3, seed: 11)
        XCTAssertEqual(try CLI.run(["search", config, "--quiet"]).status, 0)
        let record = dir.appendingPathComponent("r.h5").path

        let reproduced = try CLI.run(["reproduce", record])
        XCTAssertEqual(reproduced.status, 0, reproduced.stdout + reproduced.stderr)
        XCTAssertTrue(reproduced.stdout.contains("weights: bit-identical"), reproduced.stdout)
        XCTAssertTrue(reproduced.stdout.contains("reproduced: identical"), reproduced.stdout)

        let plots = dir.appendingPathComponent("plots").path
        let analysis = try CLI.run(["analyze", record, "--plot", plots])
        XCTAssertEqual(analysis.status, 0, analysis.stderr)
        XCTAssertTrue(analysis.stdout.contains("Pareto front, validation accuracy vs latency"))
        for name in ["progress.svg", "pareto-latency.svg", "pareto-params.svg"] {
            let svg = try String(contentsOfFile: (plots as NSString).appendingPathComponent(name), encoding: .utf8)
            XCTAssertTrue(svg.hasPrefix("<svg") && svg.contains("<circle"), name)
        }

        let csvPath = dir.appendingPathComponent("r.csv").path
        XCTAssertEqual(try CLI.run(["export", record, "--format", "csv", "-o", csvPath]).status, 0)
        let csv = try String(contentsOfFile: csvPath, encoding: .utf8)
        let lines = csv.split(whereSeparator: \.isNewline)
        XCTAssertEqual(lines.count, 4)
        XCTAssertTrue(lines[0].hasPrefix("id,architecture,"), String(lines[0]))
        let json = try exportJSON(record)
        for key in ["id", "architecture", "status", "params", "macs", "latency_ms_predicted", "latency_ms_measured", "val_accuracy", "test_accuracy"] {
            XCTAssertNotNil(json[0][key], key)
        }
    }

    func testImpossibleLatencyBudgetRejectsEverythingAndStopsClearly() throws {
        let dir = try CLI.scratch("latency")
        let table = dir.appendingPathComponent("table.h5").path
        let config = try writeConfig(dir, name: "lat", budget: 3, extra: """
        constraints:
          max_latency_ms: 0.000001
          latency: predicted
          latency_table: \(table)
        """)
        var text = try String(contentsOfFile: config, encoding: .utf8)
        text = text.replacingOccurrences(of: "  sample_size: 2\n", with: "  sample_size: 2\n  max_consecutive_rejections: 4\n")
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        let run = try CLI.run(["search", config, "--quiet"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("no feasible architecture found"), run.stdout)
        let rows = try exportJSON(dir.appendingPathComponent("lat.h5").path)
        XCTAssertEqual(rows.count, 4)
        for row in rows {
            XCTAssertEqual(row["status"] as? String, "rejected")
            XCTAssertTrue((row["reason"] as? String ?? "").contains("predicted latency"), "\(row)")
            XCTAssertGreaterThan(row["latency_ms_predicted"] as? Double ?? 0, 0)
            XCTAssertEqual(row["epochs"] as? Int, 0, "rejected candidates are never trained")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: table), "ops measured on the way are kept in the table")
    }

    func testBadInputGivesClearErrors() throws {
        let dir = try CLI.scratch("bad")
        let bad = dir.appendingPathComponent("bad.yaml").path
        try "name: x\ntraining:\n  epochs: two\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let r = try CLI.run(["search", bad])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("\(bad):3:11: 'epochs' must be an integer"), r.stderr)

        let missing = try CLI.run(["analyze", dir.appendingPathComponent("nope.h5").path])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("nope.h5"), missing.stderr)

        let config = try writeConfig(dir, name: "exists", budget: 1)
        try Data("x".utf8).write(to: dir.appendingPathComponent("exists.h5"))
        let exists = try CLI.run(["search", config])
        XCTAssertEqual(exists.status, 1)
        XCTAssertTrue(exists.stderr.contains("already exists"), exists.stderr)

        let arch = try CLI.run(["train", "--space", "small", "--arch", "stem.width=999", "--epochs", "1"])
        XCTAssertEqual(arch.status, 1)
        XCTAssertFalse(arch.stderr.isEmpty)
    }

    func testTrainReferenceCNNPrintsJSON() throws {
        let r = try CLI.run(["train", "--space", "SearchSpaces/reference/cnn.yaml", "--dataset", "digits", "--epochs", "8", "--json", "--threads", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let m = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        for key in ["test_accuracy", "val_accuracy", "train_loss", "epochs", "wall_seconds"] { XCTAssertNotNil(m[key], key) }
        XCTAssertEqual(m["epochs"] as? Int, 8)
        XCTAssertGreaterThan(m["test_accuracy"] as? Double ?? 0, 0.9)
    }
}
