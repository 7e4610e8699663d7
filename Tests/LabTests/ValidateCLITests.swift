import Foundation
import Lab
import TestSupport
import XCTest

/// `naslab validate`: a malformed-file corpus (generated here), the shipped spaces and experiments,
/// and in-process fuzzing of `Validation.validate(data:file:)` (no bytes may crash it).
final class ValidateCLITests: XCTestCase {
    /// Writes `files` (name → contents) into a fresh scratch directory; returns name → path.
    func corpus(_ name: String, _ files: [String: Data]) throws -> [String: String] {
        let dir = try CLI.scratch(name)
        var paths = [String: String]()
        for (file, data) in files {
            let path = dir.appendingPathComponent(file).path
            try data.write(to: URL(fileURLWithPath: path))
            paths[file] = path
        }
        return paths
    }

    /// Lines of `stderr` that are diagnostics of `path` (`path:line:column: …`).
    func diagnostics(_ stderr: String, _ path: String) -> [String] {
        stderr.split(separator: "\n").map(String.init).filter { line in
            guard line.hasPrefix(path + ":") else { return false }
            let rest = line.dropFirst(path.count + 1).split(separator: ":", maxSplits: 2)
            return rest.count == 3 && Int(rest[0]) != nil && Int(rest[1]) != nil && rest[2].hasPrefix(" ")
        }
    }

    static let goodExperiment = """
        name: corpus
        seed: 2
        space: small
        dataset: digits
        searcher:
          kind: random
        budget:
          candidates: 3
        training:
          epochs: 1
        """

    func testMalformedCorpusGivesLocatedErrorsForEveryFileAndNeverCrashes() throws {
        var junk = [UInt8]()
        var state: UInt64 = 0x9E3779B97F4A7C15
        for _ in 0..<4096 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            junk.append(UInt8(truncatingIfNeeded: state >> 33))
        }
        let files: [String: String] = [
            "empty.yaml": "",
            "comments-only.yaml": "# nothing here\n\n",
            "truncated.yaml": "name: truncated\nspace: small\nsearcher:\n  kind: [local_search, random\n",
            "huge-numbers.yaml": """
                name: huge
                seed: 99999999999999999999
                budget:
                  candidates: 1e400
                training:
                  learning_rate: 1e400
                  epochs: 99999999999999999999
                """,
            "wrong-types.yaml": """
                name: types
                searcher: local_search
                budget:
                  candidates: many
                training:
                  epochs: [1, 2]
                  nesterov: maybe
                workers: 0.5
                """,
            "unknown-keys.yaml": """
                name: unknown
                colour: blue
                training:
                  epochz: 3
                budget:
                  candidates: 2
                  candidatez: 3
                """,
            "missing-references.yaml": """
                name: missing
                space: no-such-space
                dataset: /no/such/data.h5
                """,
            "missing-table.yaml": """
                name: table
                space: nasbench201
                evaluator:
                  kind: tabular
                  table: /no/such/nats_bench.csv
                """,
            "bad-space.yaml": """
                name: badspace
                stages:
                  - blocks:
                      depth: 1
                      width: 99999999999999999999
                      op: conv
                """,
            "a-list.yaml": "- 1\n- 2\n",
            "ambiguous.yaml": "name: nobody-knows\n",
        ]
        var data = files.mapValues { Data($0.utf8) }
        data["junk.yaml"] = Data(junk)
        data["nul.yaml"] = Data("name: nul\nseed: 1\u{0}\n".utf8)
        data["bad-utf8.yaml"] = Data("name: x\nspace: ".utf8) + Data([0xC3, 0x28, 0xFF]) + Data("\n".utf8)
        data["big.yaml"] = Data(String(repeating: "# a comment line that goes on and on\n", count: 130_000).utf8)
        data["deep.yaml"] = Data(("name: deep\nseed: " + String(repeating: "[", count: 5000)).utf8)
        let paths = try corpus("validate-corpus", data)
        let names = paths.keys.sorted()
        let run = try CLI.run(["validate"] + names.map { paths[$0]! })
        XCTAssertEqual(run.status, 1, run.stdout + run.stderr)
        XCTAssertFalse(run.stderr.contains("Fatal error") || run.stderr.contains("Stack dump"), run.stderr)
        // Every file is checked and gets at least one located error, even after earlier ones failed.
        for name in names {
            XCTAssertFalse(diagnostics(run.stderr, paths[name]!).isEmpty, "no file:line:column diagnostic for \(name):\n\(run.stderr)")
        }
        XCTAssertTrue(run.stderr.contains("validate: \(names.count) of \(names.count) file(s) invalid"), run.stderr)
        XCTAssertTrue(run.stdout.isEmpty, run.stdout)

        func expect(_ name: String, _ line: Int, _ column: Int, _ text: String) {
            let found = diagnostics(run.stderr, paths[name]!)
            XCTAssertTrue(found.contains { $0.hasPrefix("\(paths[name]!):\(line):\(column): ") && $0.contains(text) },
                          "\(name): expected \(line):\(column) '\(text)' in:\n\(found.joined(separator: "\n"))")
        }
        expect("empty.yaml", 1, 1, "the file is empty")
        expect("comments-only.yaml", 1, 1, "the file is empty")
        expect("truncated.yaml", 5, 1, "invalid YAML")
        expect("huge-numbers.yaml", 2, 7, "'seed' must be an integer")
        expect("huge-numbers.yaml", 4, 15, "'candidates' must be an integer")
        expect("huge-numbers.yaml", 6, 18, "'learning_rate' must be a number")
        expect("huge-numbers.yaml", 7, 11, "'epochs' must be an integer")
        expect("wrong-types.yaml", 2, 11, "must be a mapping")
        expect("wrong-types.yaml", 4, 15, "'candidates' must be an integer")
        expect("wrong-types.yaml", 6, 11, "'epochs' must be an integer")
        expect("wrong-types.yaml", 7, 13, "must be true or false")
        expect("wrong-types.yaml", 8, 10, "'workers' must be an integer")
        expect("unknown-keys.yaml", 2, 1, "unknown key 'colour'")
        expect("unknown-keys.yaml", 4, 3, "unknown key 'epochz' in 'training'")
        expect("unknown-keys.yaml", 7, 3, "unknown key 'candidatez' in 'budget'")
        expect("missing-references.yaml", 2, 8, "no search space 'no-such-space'")
        expect("missing-references.yaml", 3, 10, "dataset '/no/such/data.h5' does not load")
        expect("missing-table.yaml", 5, 10, "table '/no/such/nats_bench.csv' not found")
        expect("bad-space.yaml", 5, 14, "must be an integer")
        expect("a-list.yaml", 1, 1, "must be a mapping")
        expect("ambiguous.yaml", 1, 1, "pass --kind space or --kind experiment")
        expect("junk.yaml", 1, 1, "(a search space or experiment config is YAML text)")
        expect("nul.yaml", 2, 8, "control character U+0000")
        expect("bad-utf8.yaml", 2, 8, "invalid byte 0xC3")
        expect("big.yaml", 1, 1, "a search space or experiment config is at most 4194304 bytes")
        expect("deep.yaml", 2, 107, "nested more than 100 levels")
        // Several errors per file where the parser can go on.
        XCTAssertGreaterThanOrEqual(diagnostics(run.stderr, paths["huge-numbers.yaml"]!).count, 4)
        XCTAssertGreaterThanOrEqual(diagnostics(run.stderr, paths["wrong-types.yaml"]!).count, 5)

        // --kind forces the reading: the ambiguous file as an experiment is valid (space medium, digits).
        let forced = try CLI.run(["validate", "--kind", "experiment", "--samples", "4", paths["ambiguous.yaml"]!])
        XCTAssertEqual(forced.status, 0, forced.stderr)
        XCTAssertTrue(forced.stdout.contains("valid experiment 'nobody-knows'"), forced.stdout)

        // Brackets in comments do not count as nesting (they used to: "[" even inside a comment).
        let commented = try corpus("validate-comments", [
            "commented.yaml": Data(("# " + String(repeating: "[", count: 300) + "\nname: nobody-knows\n").utf8),
        ])
        let comments = try CLI.run(["validate", "--kind", "experiment", "--samples", "4", commented["commented.yaml"]!])
        XCTAssertEqual(comments.status, 0, comments.stderr)
        XCTAssertFalse(comments.stderr.contains("nested more than"), comments.stderr)
    }

    func testUnsatisfiableConstraintsAreAWarningWithTheSmallestCostsSeen() throws {
        let paths = try corpus("validate-unsat", [
            "unsat.yaml": Data((Self.goodExperiment + "\nconstraints:\n  max_params: 10\n  max_flops: 20\n").utf8),
            "ok.yaml": Data((Self.goodExperiment + "\nconstraints:\n  max_params: 60000\n").utf8),
        ])
        let run = try CLI.run(["validate", "--samples", "20", paths["unsat.yaml"]!, paths["ok.yaml"]!])
        XCTAssertEqual(run.status, 0, run.stderr)
        let warnings = diagnostics(run.stderr, paths["unsat.yaml"]!)
        XCTAssertEqual(warnings.count, 1, run.stderr)
        let w = try XCTUnwrap(warnings.first)
        XCTAssertTrue(w.hasPrefix("\(paths["unsat.yaml"]!):12:3: warning: no sampled architecture meets the constraints"), w)
        XCTAssertTrue(w.contains("smallest seen: params ") && w.contains("(max_params 10)") && w.contains("(max_flops 20)"), w)
        XCTAssertTrue(diagnostics(run.stderr, paths["ok.yaml"]!).isEmpty, run.stderr)
        let summaries = run.stdout.split(separator: "\n")
        XCTAssertEqual(summaries.count, 2, run.stdout)
        XCTAssertTrue(summaries[0].contains("valid experiment 'corpus'") && summaries[0].contains("met by none"), String(summaries[0]))
        XCTAssertTrue(summaries[1].contains("space small (image_classification, ") && summaries[1].contains("dataset digits (1x8x8, 10 classes")
                      && summaries[1].contains("budget 3 candidates"), String(summaries[1]))
    }

    func testShippedSpacesAndExperimentsValidate() throws {
        let root = CLI.repositoryRoot
        let fm = FileManager.default
        var spaces = [String]()
        for sub in ["SearchSpaces", "SearchSpaces/reference"] {
            let dir = root.appendingPathComponent(sub)
            for name in try fm.contentsOfDirectory(atPath: dir.path).sorted() where name.hasSuffix(".yaml") {
                spaces.append("\(sub)/\(name)")
            }
        }
        XCTAssertGreaterThanOrEqual(spaces.count, 12)
        let spaceRun = try CLI.run(["validate", "--samples", "20"] + spaces)
        XCTAssertEqual(spaceRun.status, 0, spaceRun.stderr)
        for space in spaces {
            XCTAssertTrue(spaceRun.stdout.contains("\(space): valid search space"), "\(space):\n\(spaceRun.stdout)")
        }

        let tableDirectory = root.deletingLastPathComponent().appendingPathComponent("shared/benchmarks/nasbench201").path
        let experiments = try fm.contentsOfDirectory(atPath: root.appendingPathComponent("Experiments").path)
            .filter { $0.hasSuffix(".yaml") }.sorted().map { "Experiments/\($0)" }
        XCTAssertGreaterThanOrEqual(experiments.count, 4)
        for experiment in experiments {
            let run = try CLI.run(["validate", "--samples", "10", experiment])
            if experiment.contains("nasbench201"), !fm.fileExists(atPath: tableDirectory) {
                print("skipping the table check of \(experiment): NAS-Bench-201 not found at \(tableDirectory) "
                    + "(expected ../shared/benchmarks/nasbench201/ from the repository root)")
                XCTAssertEqual(run.status, 1)
                XCTAssertTrue(run.stderr.contains("table '../shared/benchmarks/nasbench201/"), run.stderr)
                continue
            }
            if experiment.contains("fashion-mnist"), !fm.fileExists(atPath: "/usr/share/datasets/fashion-mnist"),
               ProcessInfo.processInfo.environment["NASLAB_FASHION_MNIST_DIR"] == nil {
                print("skipping the dataset check of \(experiment): Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
                XCTAssertTrue(run.stderr.contains("dataset 'fashion-mnist' does not load"), run.stderr)
                continue
            }
            XCTAssertEqual(run.status, 0, "\(experiment):\n\(run.stderr)")
            XCTAssertTrue(run.stdout.hasPrefix("\(experiment): valid experiment"), "\(experiment):\n\(run.stdout)")
            XCTAssertTrue(diagnostics(run.stderr, experiment).allSatisfy { $0.contains(": warning: ") }, run.stderr)
        }
    }

    /// Random bytes, truncations and byte flips of valid files: never a crash, always a verdict, and
    /// every error located inside the file.
    func testFuzzedInputsNeverCrash() throws {
        let seeds = [Self.goodExperiment, try String(contentsOf: CLI.repositoryRoot.appendingPathComponent("SearchSpaces/small.yaml"), encoding: .utf8)]
        var state: UInt64 = 12345
        func next() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(truncatingIfNeeded: state >> 33)
        }
        let options = Validation.Options(samples: 2)
        var checked = 0
        for round in 0..<240 {
            var bytes: [UInt8]
            let base = Array(seeds[round % 2].utf8)
            switch round % 4 {
            case 0: bytes = (0..<(next() % 300)).map { _ in UInt8(truncatingIfNeeded: next()) }
            case 1: bytes = Array(base.prefix(next() % (base.count + 1)))
            case 2:
                bytes = base
                for _ in 0..<(1 + next() % 4) { bytes[next() % bytes.count] = UInt8(truncatingIfNeeded: next()) }
            default:
                bytes = base
                let i = next() % bytes.count
                let pieces = Array("[{\"-: 1e999 &a *a !!binary |".utf8)
                bytes.insert(contentsOf: (0..<(1 + next() % 8)).map { _ in pieces[next() % pieces.count] }, at: i)
            }
            let file = round % 2 == 0 ? "fuzz.yaml" : "SearchSpaces/fuzz.yaml"
            let report = Validation.validate(data: Data(bytes), file: file, options: options)
            let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).count
            for d in report.errors {
                XCTAssertTrue(d.line >= 1 && d.line <= max(1, lines + 1) && d.column >= 1, "round \(round): \(d)")
            }
            XCTAssertEqual(report.isValid, !report.summary.isEmpty, "round \(round): \(report.diagnostics)")
            checked += 1
        }
        XCTAssertEqual(checked, 240)
    }
}
