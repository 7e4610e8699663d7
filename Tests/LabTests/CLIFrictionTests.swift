import Foundation
import Lab
import TestSupport
import XCTest

/// The command line's rough edges, each fixed: negative numbers, misspelled commands, channels-last
/// shapes, bad `evaluate` specs, `resume --config` differences, `reproduce --threads`.
final class CLIFrictionTests: XCTestCase {
    func testNegativeOptionValuesGetAClearMessage() throws {
        let budget = try CLI.run(["search", "Experiments/quickstart-digits.yaml", "--budget", "-3"])
        XCTAssertEqual(budget.status, 64, budget.stderr)
        XCTAssertTrue(budget.stderr.contains("--budget must be a positive integer, got -3"), budget.stderr)
        XCTAssertFalse(budget.stderr.contains("Missing value"), budget.stderr)

        let random = try CLI.run(["estimate", "--space", "small", "--random", "-2", "--no-latency"])
        XCTAssertEqual(random.status, 64, random.stderr)
        XCTAssertTrue(random.stderr.contains("--random must be 0 or more, got -2"), random.stderr)

        let rate = try CLI.run(["train", "--space", "small", "--learning-rate", "-0.5"])
        XCTAssertEqual(rate.status, 64, rate.stderr)
        XCTAssertTrue(rate.stderr.contains("--learning-rate must be positive"), rate.stderr)

        let seed = try CLI.run(["search", "Experiments/quickstart-digits.yaml", "--seed", "-1"])
        XCTAssertEqual(seed.status, 64, seed.stderr)
        XCTAssertTrue(seed.stderr.contains("'-1'") && seed.stderr.contains("--seed"), seed.stderr)
    }

    func testMisspelledCommandGetsASuggestion() throws {
        let top = try CLI.run(["serach", "Experiments/quickstart-digits.yaml"])
        XCTAssertEqual(top.status, 64, top.stderr)
        XCTAssertTrue(top.stderr.contains("unknown command 'serach'; did you mean 'search'?"), top.stderr)

        let nested = try CLI.run(["latency", "biuld-table"])
        XCTAssertEqual(nested.status, 64, nested.stderr)
        XCTAssertTrue(nested.stderr.contains("unknown command 'biuld-table' for 'naslab latency'; did you mean 'build-table'?"), nested.stderr)

        let prefix = try CLI.run(["valid"])
        XCTAssertTrue(prefix.stderr.contains("did you mean 'validate'?"), prefix.stderr)

        let nothingClose = try CLI.run(["frobnicate"])
        XCTAssertEqual(nothingClose.status, 64)
        XCTAssertTrue(nothingClose.stderr.contains("unknown command 'frobnicate'; commands: search, resume"), nothingClose.stderr)

        XCTAssertEqual(try CLI.run(["--version"]).status, 0)
        XCTAssertEqual(try CLI.run(["help", "search"]).status, 0)
    }

    func testChannelsLastInputShapeIsRejectedWithTheFix() throws {
        let bad = try CLI.run(["estimate", "--space", "small", "--random", "1", "--no-latency", "--input", "28x28x1"])
        XCTAssertEqual(bad.status, 1, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("--input 28x28x1 looks channels-last"), bad.stderr)
        XCTAssertTrue(bad.stderr.contains("pass --input 1x28x28"), bad.stderr)
        let rgb = try CLI.run(["estimate", "--space", "small", "--random", "1", "--no-latency", "--input", "32x32x3"])
        XCTAssertTrue(rgb.stderr.contains("pass --input 3x32x32"), rgb.stderr)

        let good = try CLI.run(["estimate", "--space", "small", "--random", "1", "--no-latency", "--input", "1x28x28"])
        XCTAssertEqual(good.status, 0, good.stderr)
        // Not channels-last: feature vectors (F×1×1) and token sequences (K×1×L).
        let features = try CLI.run(["estimate", "--space", "tabular-small", "--random", "1", "--no-latency", "--input", "16x1x1"])
        XCTAssertEqual(features.status, 0, features.stderr)

        let table = try CLI.run(["latency", "build-table", "--spaces", "small", "--input", "8x8x1", "--samples", "1"])
        XCTAssertEqual(table.status, 1, table.stderr)
        XCTAssertTrue(table.stderr.contains("pass --input 1x8x8"), table.stderr)
    }

    func testChannelsLastHDF5DatasetAndPredictionInputAreRejected() throws {
        let dir = try CLI.scratch("channels-last")
        let data = dir.appendingPathComponent("nhwc.h5").path
        let inputs = dir.appendingPathComponent("inputs-nhwc.h5").path
        let py = try CLI.python("""
            import sys, h5py, numpy as np
            rng = np.random.default_rng(0)
            with h5py.File(sys.argv[1], "w") as f:
                f["x"] = rng.random((40, 8, 8, 1), dtype=np.float32)
                f["y"] = np.arange(40) % 2
            with h5py.File(sys.argv[2], "w") as f:
                f["x"] = rng.random((3, 8, 8, 1), dtype=np.float32)
            """, [data, inputs])
        XCTAssertEqual(py.status, 0, py.stderr)
        let train = try CLI.run(["train", "--space", "SearchSpaces/reference/cnn.yaml", "--dataset", data, "--epochs", "1", "--threads", "1"])
        XCTAssertEqual(train.status, 1, train.stdout + train.stderr)
        XCTAssertTrue(train.stderr.contains("/x has shape [40, 8, 8, 1], which looks channels-last"), train.stderr)
        XCTAssertTrue(train.stderr.contains("x.transpose(0, 3, 1, 2)"), train.stderr)

        // A model trained on 1×8×8 digits refuses N×8×8×1 prediction inputs (same element count).
        let model = dir.appendingPathComponent("digits.h5").path
        let trained = try CLI.run(["train", "--space", "SearchSpaces/reference/cnn.yaml", "--dataset", "digits", "--epochs", "1",
                                   "--threads", "1", "--save", model, "--json"])
        XCTAssertEqual(trained.status, 0, trained.stderr)
        let predict = try CLI.run(["predict", model, "--input", inputs, "--threads", "1"])
        XCTAssertEqual(predict.status, 1, predict.stdout + predict.stderr)
        XCTAssertTrue(predict.stderr.contains("the model expects N×1x8x8") && predict.stderr.contains("looks channels-last"), predict.stderr)
    }

    func testEvaluateNamesTheSpecFileAndWhatIsWrong() throws {
        let dir = try CLI.scratch("evaluate-spec")
        func write(_ name: String, _ text: String) throws -> String {
            let path = dir.appendingPathComponent(name).path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let output = dir.appendingPathComponent("result.json").path
        func evaluate(_ spec: String, output: String = "") throws -> CLI.Output {
            try CLI.run(["evaluate", spec, "--output", output.isEmpty ? dir.appendingPathComponent("result.json").path : output])
        }
        let missing = dir.appendingPathComponent("nope.json").path
        let cases: [(String, String)] = [
            (missing, "candidate spec '\(missing)': no such file"),
            (try write("empty.json", ""), "the file is empty"),
            (try write("garbage.json", "{not json"), "not valid JSON"),
            (try write("partial.json", #"{"id": 1}"#), "missing key 'architecture'"),
        ]
        for (path, expected) in cases {
            let r = try evaluate(path)
            XCTAssertEqual(r.status, 1, r.stderr)
            XCTAssertTrue(r.stderr.hasPrefix("error: candidate spec '\(path)': "), r.stderr)
            XCTAssertTrue(r.stderr.contains(expected), r.stderr)
            for raw in ["NSCocoaErrorDomain", "DecodingError", "CodingKeys", "couldn’t be opened"] {
                XCTAssertFalse(r.stderr.contains(raw), r.stderr)
            }
        }
        var spec: [String: Any] = [
            "id": 0, "architecture": "(fixed)", "spaceYAML": "name: x\nstages: []\n", "spaceName": "x", "dataset": "digits",
            "validationSplit": 0.1, "datasetSeed": 0, "seed": 1, "threads": 1,
            "training": ["epochs": 1, "batchSize": 64, "learningRate": 0.05, "optimizer": "sgd", "momentum": 0.9,
                         "nesterov": true, "weightDecay": 0.0005, "schedule": "cosine", "warmupEpochs": 0, "labelSmoothing": 0],
        ]
        spec["threads"] = "two"
        let wrongType = try write("wrong-type.json", String(decoding: try JSONSerialization.data(withJSONObject: spec), as: UTF8.self))
        let r1 = try evaluate(wrongType)
        XCTAssertTrue(r1.stderr.contains("'threads' has the wrong type (expected an integer)"), r1.stderr)
        spec["threads"] = 1
        var training = spec["training"] as! [String: Any]
        training["epochs"] = 0
        spec["training"] = training
        let badValue = try write("bad-value.json", String(decoding: try JSONSerialization.data(withJSONObject: spec), as: UTF8.self))
        let r2 = try evaluate(badValue)
        XCTAssertTrue(r2.stderr.contains("'training.epochs' must be at least 1, got 0"), r2.stderr)
        training["epochs"] = 1
        spec["training"] = training
        let good = try write("good.json", String(decoding: try JSONSerialization.data(withJSONObject: spec), as: UTF8.self))
        let r3 = try evaluate(good, output: "/no/such/directory/result.json")
        XCTAssertEqual(r3.status, 1, r3.stderr)
        XCTAssertTrue(r3.stderr.contains("cannot write the result to '/no/such/directory/result.json': directory '/no/such/directory' does not exist"), r3.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output))
    }

    func testConfigDifferencesNameEveryChangedKeyWithBothValues() throws {
        let base = """
            name: d
            seed: 5
            space: small
            dataset: digits
            threads: 1
            budget:
              candidates: 7
            training:
              epochs: 1
              learning_rate: 0.05
            """
        let stored = try ExperimentConfig.parse(yaml: base, file: "stored.yaml")
        let given = try ExperimentConfig.parse(
            yaml: base.replacingOccurrences(of: "candidates: 7", with: "candidates: 9")
                .replacingOccurrences(of: "learning_rate: 0.05", with: "learning_rate: 0.1") + "\nconstraints:\n  max_params: 5000\n",
            file: "given.yaml")
        XCTAssertEqual(given.differences(from: stored), [
            ExperimentConfig.Difference(key: "budget.candidates", stored: "7", given: "9"),
            ExperimentConfig.Difference(key: "training.learning_rate", stored: "0.05", given: "0.1"),
            ExperimentConfig.Difference(key: "constraints.max_params", stored: "(not set)", given: "5000"),
        ])
        XCTAssertEqual(given.differenceSummary(from: stored),
                       "budget.candidates: stored 7, given 9; training.learning_rate: stored 0.05, given 0.1; "
                           + "constraints.max_params: stored (not set), given 5000")
        XCTAssertEqual(stored.differences(from: stored), [])
        XCTAssertEqual(stored.differenceSummary(from: stored, limit: 1), "given config ≠ stored config")
        var seeded = stored
        seeded.seed = 6
        seeded.searcher.kind = "random"
        XCTAssertEqual(seeded.differenceSummary(from: stored, limit: 1), "seed: stored 5, given 6; … and 1 more")
    }

    func testReproduceWithAnotherThreadCountComparesWithATolerance() throws {
        let dir = try CLI.scratch("reproduce-threads")
        let config = dir.appendingPathComponent("t.yaml").path
        let record = dir.appendingPathComponent("t.h5").path
        try """
            name: t
            seed: 4
            space: small
            dataset: digits
            searcher: {kind: random}
            budget: {candidates: 2}
            training: {epochs: 2, batch_size: 64, learning_rate: 0.05}
            threads: 2
            output: \(record)
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let search = try CLI.run(["search", config, "--quiet"])
        XCTAssertEqual(search.status, 0, search.stderr)

        let other = try CLI.run(["reproduce", record, "--threads", "1"])
        XCTAssertTrue(other.stdout.contains("threads: 1 (record: 2 per candidate"), other.stdout)
        XCTAssertTrue(other.stdout.contains("bit-identical results are not expected"), other.stdout)
        XCTAssertFalse(other.stdout.contains("same thread count and seed should give identical results"), other.stdout)
        let verdict = try XCTUnwrap(other.stdout.split(separator: "\n").last.map(String.init))
        if verdict.contains("DIFFERENT") {
            XCTAssertEqual(other.status, 3, other.stdout)
            XCTAssertTrue(other.stdout.contains("max |Δ| of metrics"), other.stdout)
        } else {
            XCTAssertEqual(other.status, 0, other.stdout + other.stderr)
            XCTAssertTrue(verdict.contains("within tolerance") || verdict.contains("identical (bit for bit, even with another thread count)"),
                          verdict)
            if verdict.contains("within tolerance") { XCTAssertTrue(other.stdout.contains("max |Δ| of metrics: "), other.stdout) }
        }

        // The record's own thread count still demands bit-identity.
        let same = try CLI.run(["reproduce", record])
        XCTAssertEqual(same.status, 0, same.stdout + same.stderr)
        XCTAssertTrue(same.stdout.contains("reproduced: identical"), same.stdout)
        XCTAssertFalse(same.stdout.contains("not expected"), same.stdout)
    }
}
