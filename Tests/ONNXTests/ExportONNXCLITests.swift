import Datasets
import Foundation
import Lab
import NASCore
import ONNX
import Records
import TestSupport
import XCTest

/// `naslab export-onnx` on a model file and on an experiment record's candidate.
final class ExportONNXCLITests: XCTestCase {
    @discardableResult
    static func naslab(_ arguments: [String]) throws -> CLI.Output { try CLI.run(arguments) }

    func scratch(_ name: String) throws -> URL { try CLI.scratch("onnx-\(name)") }

    /// A case comparing the ONNX file `path` with `model`'s logits on raw digits.
    func fileCase(_ name: String, path: String, model: TrainedModel) throws -> ONNXCase {
        let (digits, _) = try digitsSamples(5, offset: 300)
        var c = try onnxCase(name, model: model, rawInputs: digits)
        c.onnx = try Data(contentsOf: URL(fileURLWithPath: path))
        return c
    }

    func testExportModelFileAndRecordCandidate() throws {
        _ = try pythonWithONNXRuntime()
        let dir = try scratch("cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        let record = dir.appendingPathComponent("run.h5").path
        let config = dir.appendingPathComponent("run.yaml").path
        try """
        name: onnx-cli
        seed: 4
        space: small
        dataset: digits
        searcher:
          kind: random
        budget:
          candidates: 3
        training:
          epochs: 1
          batch_size: 64
          learning_rate: 0.05
        threads: 1
        output: \(record)
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let search = try Self.naslab(["search", config, "--quiet"])
        XCTAssertEqual(search.status, 0, search.stderr)

        let opened = try ExperimentRecord.openReadOnly(path: record)
        let best = try XCTUnwrap(try opened.bestCandidateID())
        let rows = try opened.readCandidates()
        try opened.close()
        let weights = ExperimentRunner.weightsDirectory(forRecord: record) + "/candidate-\(best).h5"
        XCTAssertTrue(FileManager.default.fileExists(atPath: weights), weights)

        // The record's best (default), the same candidate by id, and its weights file: the same model.
        let fromRecord = dir.appendingPathComponent("best.onnx").path
        let run = try Self.naslab(["export-onnx", record, "-o", fromRecord])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("wrote \(fromRecord)"), run.stdout)
        XCTAssertTrue(run.stdout.contains("input 'input' N×1×8×8 float, output 'logits' N×10"), run.stdout)
        let byID = dir.appendingPathComponent("by-id.onnx").path
        XCTAssertEqual(try Self.naslab(["export-onnx", record, "--candidate", String(best), "--output", byID]).status, 0)
        let fromFile = dir.appendingPathComponent("file.onnx").path
        XCTAssertEqual(try Self.naslab(["export-onnx", weights, "-o", fromFile]).status, 0)
        let opset13 = dir.appendingPathComponent("file-13.onnx").path
        XCTAssertEqual(try Self.naslab(["export-onnx", weights, "-o", opset13, "--opset", "13"]).status, 0)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: fromRecord))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: byID)), bytes)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: fromFile)), bytes, "the export is deterministic")

        let model = try TrainedModel.load(from: weights)
        let cases = [try fileCase("record best", path: fromRecord, model: model),
                     try fileCase("model file, opset 13", path: opset13, model: model)]
        let results = try runONNXRuntime(cases)
        assertMatches(results, cases)
        XCTAssertEqual(results["model file, opset 13"]?.opset, 13)

        // Errors: a candidate without saved weights, an unknown candidate, --candidate on a model
        // file, an opset out of range, a file that is neither.
        // (A candidate that was the best when it finished keeps its file; remove one to be sure.)
        let other = try XCTUnwrap(rows.first { $0.id != best })
        try? FileManager.default.removeItem(atPath: ExperimentRunner.weightsDirectory(forRecord: record) + "/candidate-\(other.id).h5")
        let missing = try Self.naslab(["export-onnx", record, "--candidate", String(other.id), "-o", dir.appendingPathComponent("x.onnx").path])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("candidate \(other.id)") && missing.stderr.contains("has no saved weights")
                      && missing.stderr.contains("best candidate only (saved: ") && missing.stderr.contains("\(best))"), missing.stderr)
        let unknown = try Self.naslab(["export-onnx", record, "--candidate", "99", "-o", dir.appendingPathComponent("x.onnx").path])
        XCTAssertEqual(unknown.status, 1)
        XCTAssertTrue(unknown.stderr.contains("no candidate 99"), unknown.stderr)
        let notRecord = try Self.naslab(["export-onnx", weights, "--candidate", "0", "-o", dir.appendingPathComponent("x.onnx").path])
        XCTAssertEqual(notRecord.status, 1)
        XCTAssertTrue(notRecord.stderr.contains("is a model file; --candidate 0 applies to experiment records only"), notRecord.stderr)
        let badOpset = try Self.naslab(["export-onnx", weights, "--opset", "7", "-o", dir.appendingPathComponent("x.onnx").path])
        XCTAssertNotEqual(badOpset.status, 0)
        XCTAssertTrue(badOpset.stderr.contains("--opset must be between 13 and 21, got 7"), badOpset.stderr)
        let yaml = try Self.naslab(["export-onnx", config, "-o", dir.appendingPathComponent("x.onnx").path])
        XCTAssertEqual(yaml.status, 1)
        XCTAssertTrue(yaml.stderr.contains("not a NASLab model file or experiment record"), yaml.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.onnx").path))
    }
}
