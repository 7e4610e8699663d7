import Foundation
import Lab
import TestSupport
import XCTest

/// Multi-fidelity searches end to end (`scheduler:` in the experiment config): digits, the `small`
/// space, rungs of 1 and 3 epochs. Checks the `rungs` table (also through h5py), that promoted
/// candidates continue from their checkpoint (no epoch trained twice; `reproduce` from scratch
/// gives bit-identical results), `analyze`'s rung table, and resume after `kill -9` mid-bracket.
final class MultiFidelityTests: XCTestCase {
    func writeConfig(_ dir: URL, name: String, budget: Int, kind: String = "successive-halving", workers: Int = 1,
                     seed: Int = 4) throws -> String {
        let path = dir.appendingPathComponent("\(name).yaml").path
        try """
        name: \(name)
        seed: \(seed)
        space: small
        dataset: digits
        searcher:
          kind: random
        budget:
          candidates: \(budget)
        training:
          epochs: 3
          batch_size: 64
          learning_rate: 0.05
        scheduler:
          kind: \(kind)
          min_epochs: 1
          max_epochs: 3
          eta: 3
        workers: \(workers)
        threads: \(workers)
        output: \(dir.appendingPathComponent("\(name).h5").path)

        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The record's candidates, rungs and epochs as h5py reads them.
    struct Tables: Decodable {
        struct Candidate: Decodable, Equatable {
            var id: Int, architecture: String, status: String, epochs: Int, val: Double, test: Double
        }
        struct Rung: Decodable, Equatable {
            var candidate_id: Int, rung: Int, start_epoch: Int, epochs: Int, status: String, val: Double, test: Double
            var wall_seconds: Double
        }
        var candidates: [Candidate]
        var rungs: [Rung]
        /// (candidate id, epoch) of every epoch row.
        var epochs: [[Int]]
        var rung_columns: [String]
    }

    func readTables(_ record: String, file: StaticString = #filePath, line: UInt = #line) throws -> Tables {
        let py = try CLI.python("""
        import sys, h5py, json
        f = h5py.File(sys.argv[1], "r")
        c, r, e = f["candidates"][:], f["rungs"][:], f["epochs"][:]
        print(json.dumps({
            "candidates": [{"id": int(x["id"]), "architecture": x["architecture"].decode(), "status": x["status"].decode(),
                            "epochs": int(x["epochs"]), "val": float(x["val_accuracy"]), "test": float(x["test_accuracy"])} for x in c],
            "rungs": [{"candidate_id": int(x["candidate_id"]), "rung": int(x["rung"]), "start_epoch": int(x["start_epoch"]),
                       "epochs": int(x["epochs"]), "status": x["status"].decode(), "val": float(x["val_accuracy"]),
                       "test": float(x["test_accuracy"]), "wall_seconds": float(x["wall_seconds"])} for x in r],
            "epochs": [[int(x["candidate_id"]), int(x["epoch"])] for x in e],
            "rung_columns": list(r.dtype.names)}))
        """, [record])
        XCTAssertEqual(py.status, 0, py.stderr, file: file, line: line)
        return try JSONDecoder().decode(Tables.self, from: Data(py.stdout.utf8))
    }

    func testSuccessiveHalvingRecordsRungsAndContinuesPromotedCandidates() throws {
        let dir = try CLI.scratch("fidelity-sh")
        let config = try writeConfig(dir, name: "sh", budget: 6)
        let run = try CLI.run(["search", config, "--quiet"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("search finished: budget of 6 candidates reached"), run.stdout)
        let record = dir.appendingPathComponent("sh.h5").path
        let t = try readTables(record)
        XCTAssertEqual(t.rung_columns, ["candidate_id", "rung", "start_epoch", "epochs", "status", "val_accuracy",
                                        "test_accuracy", "wall_seconds", "worker"])

        // Two brackets of 3 candidates at 1 epoch; the best of each continues to 3 epochs.
        let bottom = t.rungs.filter { $0.rung == 0 }, top = t.rungs.filter { $0.rung == 1 }
        XCTAssertEqual(bottom.map(\.candidate_id), Array(0..<6))
        XCTAssertTrue(bottom.allSatisfy { $0.start_epoch == 0 && $0.epochs == 1 && $0.status == "accepted" })
        XCTAssertEqual(top.count, 2)
        for bracket in [0..<3, 3..<6] {
            let members = bottom.filter { bracket.contains($0.candidate_id) }
            let best = members.max { $0.val != $1.val ? $0.val < $1.val : $0.candidate_id > $1.candidate_id }!
            XCTAssertEqual(top.filter { bracket.contains($0.candidate_id) }.map(\.candidate_id), [best.candidate_id],
                           "the best at 1 epoch of bracket \(bracket) is promoted")
        }
        XCTAssertTrue(top.allSatisfy { $0.start_epoch == 1 && $0.epochs == 3 }, "promoted candidates start from epoch 1")

        // The candidates table holds each candidate's highest rung.
        // Rows are written when the scheduler is done with a candidate: the promoted ones last.
        XCTAssertEqual(t.candidates.map(\.id).sorted(), Array(0..<6))
        XCTAssertEqual(t.candidates.last?.id, top[1].candidate_id)
        for c in t.candidates {
            let highest = t.rungs.filter { $0.candidate_id == c.id }.max { $0.rung < $1.rung }!
            XCTAssertEqual(c.epochs, highest.epochs)
            XCTAssertEqual(c.val, highest.val)
            XCTAssertEqual(c.test, highest.test)
        }
        // No epoch was trained twice: promoted candidates have epochs 1, 2, 3 once each.
        for c in t.candidates {
            let epochs = t.epochs.filter { $0[0] == c.id }.map { $0[1] }
            XCTAssertEqual(epochs, Array(1...c.epochs), "epochs of candidate \(c.id)")
        }
        // Checkpoints are removed when the search is complete.
        let weights = ExperimentRunner.weightsDirectory(forRecord: record)
        let left = (try? FileManager.default.contentsOfDirectory(atPath: weights)) ?? []
        XCTAssertFalse(left.contains { $0.hasSuffix(".checkpoint.h5") }, "\(left)")

        // Continuing from the checkpoint is exactly training 3 epochs in one go.
        let promoted = top[0].candidate_id
        let reproduced = try CLI.run(["reproduce", record, "--candidate", String(promoted)])
        XCTAssertEqual(reproduced.status, 0, reproduced.stdout + reproduced.stderr)
        XCTAssertTrue(reproduced.stdout.contains("reproduced: identical"), reproduced.stdout)

        let analysis = try CLI.run(["analyze", record])
        XCTAssertEqual(analysis.status, 0, analysis.stderr)
        XCTAssertTrue(analysis.stdout.contains("rungs (multi-fidelity"), analysis.stdout)
        let lines = analysis.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let header = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("rungs (multi-fidelity") }, analysis.stdout)
        XCTAssertTrue(lines[header + 1].contains("rung  epochs  candidates  failed  promoted  best val accuracy"), analysis.stdout)
        let rungLines = Array(lines[(header + 2)...].prefix { !$0.isEmpty })
        XCTAssertEqual(rungLines.count, 2, analysis.stdout)
        XCTAssertTrue(rungLines.first?.contains("     1           6       0         2") ?? false, analysis.stdout)
        XCTAssertTrue(rungLines.last?.contains("     3           2       0         0") ?? false, analysis.stdout)
    }

    func testASHAWithParallelWorkersRecordsEveryRung() throws {
        let dir = try CLI.scratch("fidelity-asha")
        let config = try writeConfig(dir, name: "asha", budget: 6, kind: "asha", workers: 2)
        let run = try CLI.run(["search", config, "--quiet"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let t = try readTables(dir.appendingPathComponent("asha.h5").path)
        XCTAssertEqual(t.rungs.filter { $0.rung == 0 }.count, 6)
        let promoted = t.rungs.filter { $0.rung == 1 }
        XCTAssertGreaterThanOrEqual(promoted.count, 1)
        XCTAssertLessThanOrEqual(promoted.count, 2, "at most ⌊6/3⌋ promotions")
        XCTAssertTrue(promoted.allSatisfy { $0.start_epoch == 1 && $0.epochs == 3 })
        XCTAssertEqual(t.candidates.count, 6)
        for c in t.candidates {
            XCTAssertEqual(c.epochs, promoted.contains { $0.candidate_id == c.id } ? 3 : 1)
            XCTAssertEqual(t.epochs.filter { $0[0] == c.id }.map { $0[1] }, Array(1...c.epochs))
        }
        // Same seed, one worker: the same architectures (ASHA decides per batch, so promotions may differ).
        let serial = try CLI.run(["search", config, "--quiet", "--workers", "1", "--output", dir.appendingPathComponent("one.h5").path])
        XCTAssertEqual(serial.status, 0, serial.stderr)
        let one = try readTables(dir.appendingPathComponent("one.h5").path)
        XCTAssertEqual(one.candidates.map(\.architecture), t.candidates.map(\.architecture))
    }

    func testKilledMidBracketResumesWithoutRetrainingFinishedRungs() throws {
        let dir = try CLI.scratch("fidelity-resume")
        let config = try writeConfig(dir, name: "k", budget: 9, seed: 7)
        let record = dir.appendingPathComponent("k.h5").path
        let reference = try CLI.run(["search", config, "--quiet", "--output", dir.appendingPathComponent("ref.h5").path])
        XCTAssertEqual(reference.status, 0, reference.stderr)

        let child = try CLI.start(["search", config])
        // One progress line per candidate the scheduler is done with: 4/9 comes when the second
        // bracket's bottom rung is decided, before its promoted candidate has trained.
        child.killWhenStderrContains(" 4/9 ", seconds: 180)
        XCTAssertEqual(child.process.terminationReason, .uncaughtSignal)
        let before = try readTables(record)
        XCTAssertGreaterThanOrEqual(before.rungs.count, 6, "finished rungs survive kill -9")
        XCTAssertLessThan(before.rungs.count, 12, "killed before the end")

        let resumed = try CLI.run(["resume", record, "--quiet"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let after = try readTables(record)
        // Rungs finished before the kill are kept as they were, not trained again.
        XCTAssertEqual(Array(after.rungs.prefix(before.rungs.count)), before.rungs)
        let keys = after.rungs.map { "\($0.candidate_id)/\($0.rung)" }
        XCTAssertEqual(Set(keys).count, keys.count, "no rung recorded twice")
        let epochKeys = after.epochs.map { "\($0[0])/\($0[1])" }
        XCTAssertEqual(Set(epochKeys).count, epochKeys.count, "no epoch recorded twice")

        // The resumed search is the uninterrupted one.
        let ref = try readTables(dir.appendingPathComponent("ref.h5").path)
        XCTAssertEqual(after.candidates, ref.candidates)
        func strip(_ rows: [Tables.Rung]) -> [String] {
            rows.map { "\($0.candidate_id) r\($0.rung) \($0.start_epoch)→\($0.epochs) \($0.val) \($0.test)" }.sorted()
        }
        XCTAssertEqual(strip(after.rungs), strip(ref.rungs))
        XCTAssertEqual(after.epochs.sorted { ($0[0], $0[1]) < ($1[0], $1[1]) }, ref.epochs.sorted { ($0[0], $0[1]) < ($1[0], $1[1]) })
    }

    func testSchedulerConfigIsValidatedAndPartOfTheRecordedConfig() throws {
        let base = "name: a\ntraining:\n  epochs: 9\nscheduler:\n"
        let c = try ExperimentConfig.parse(yaml: base + "  kind: hyperband\n  brackets: 2\n", file: "a.yaml")
        XCTAssertEqual(c.scheduler?.maxEpochs, 9, "max_epochs defaults to training.epochs")
        XCTAssertEqual(c.scheduler?.minEpochs, 1)
        XCTAssertEqual(c.scheduler?.eta, 3)
        XCTAssertEqual(try c.scheduler?.schedule().rungEpochs, [1, 3, 9])
        XCTAssertEqual(try ExperimentConfig.parse(yaml: c.yamlText, file: "again.yaml"), c)
        XCTAssertNil(try ExperimentConfig.parse(yaml: "name: a\n", file: "a.yaml").scheduler)

        var changed = c
        changed.scheduler?.eta = 2
        XCTAssertTrue(changed.differenceSummary(from: c).contains("scheduler.eta: stored 3, given 2"), changed.differenceSummary(from: c))

        let cases: [(yaml: String, line: Int, column: Int, contains: String)] = [
            (base + "  kind: bohb\n", 5, 9, "must be one of successive-halving, hyperband, asha"),
            (base + "  min_epochs: 4\n", 5, 15, "must be at least 'min_epochs' × 'eta' (12)"),
            (base + "  max_epochs: 2\n", 5, 15, "must be at least 'min_epochs' × 'eta' (3)"),
            (base + "  eta: 1\n", 5, 8, "must be in 2...1000"),
            (base + "  brackets: 2\n", 5, 13, "'brackets' is a hyperband setting"),
            (base + "  kind: hyperband\n  brackets: 4\n", 6, 13, "'brackets' must be in 1...3"),
            (base + "  rungs: 3\n", 5, 3, "unknown key 'rungs' in 'scheduler'"),
            ("name: a\nevaluator:\n  kind: tabular\n  table: t.csv\nscheduler:\n  kind: asha\n", 6, 3, "needs the training evaluator"),
        ]
        for (yaml, line, column, contains) in cases {
            XCTAssertThrowsError(try ExperimentConfig.parse(yaml: yaml, file: "bad.yaml"), yaml) { error in
                guard let e = error as? ConfigError else { return XCTFail("not a ConfigError: \(error)") }
                XCTAssertEqual(e.line, line, "line for \(yaml.debugDescription): \(e)")
                XCTAssertEqual(e.column, column, "column for \(yaml.debugDescription): \(e)")
                XCTAssertTrue(e.message.contains(contains), "message for \(yaml.debugDescription): \(e)")
            }
        }
    }
}
