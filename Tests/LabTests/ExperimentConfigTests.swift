import Foundation
import Lab
import NASCore
import XCTest

final class ExperimentConfigTests: XCTestCase {
    func testShippedExperimentsParse() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = root.appendingPathComponent("Experiments")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }
        XCTAssertGreaterThanOrEqual(files.count, 3)
        for f in files {
            XCTAssertNoThrow(try ExperimentConfig.load(path: dir.appendingPathComponent(f).path), f)
        }
        let quick = try ExperimentConfig.load(path: dir.appendingPathComponent("quickstart-digits.yaml").path)
        XCTAssertEqual(quick.space, "small")
        XCTAssertEqual(quick.dataset, "digits")
        XCTAssertEqual(quick.constraints.maxParams, 60000)
        XCTAssertEqual(quick.training.weightDecay, 0.0005)
    }

    func testDefaults() throws {
        let c = try ExperimentConfig.parse(yaml: "name: x\n", file: "x.yaml")
        XCTAssertEqual(c.space, "medium")
        XCTAssertEqual(c.validationSplit, 0.1)
        XCTAssertEqual(c.searcher.kind, "regularized_evolution")
        XCTAssertEqual(c.outputPath, "Results/x.h5")
        XCTAssertTrue(c.constraints.isEmpty)
        XCTAssertEqual(c.training, TaskKind.imageClassification.defaultTraining)
    }

    /// Without `training:` a text or tabular experiment trains with its task's defaults, not the
    /// image defaults (SGD lr 0.05); given fields override them one by one.
    func testTrainingDefaultsFollowTheTask() throws {
        let text = try ExperimentConfig.parse(yaml: "name: t\nspace: text-small\ndataset: fortunes\n", file: "t.yaml")
        XCTAssertEqual(text.training, TaskKind.textClassification.defaultTraining)
        XCTAssertEqual(text.training.optimizer, "adamw")
        let tabular = try ExperimentConfig.parse(yaml: "name: t\nspace: tabular-small\ntraining:\n  epochs: 3\n", file: "t.yaml")
        var expected = TaskKind.tabularClassification.defaultTraining
        expected.epochs = 3
        XCTAssertEqual(tabular.training, expected)
        // task_type names the task even before the space is looked at.
        let named = try ExperimentConfig.parse(yaml: "name: t\nspace: no-such-space\ntask_type: text_classification\n", file: "t.yaml")
        XCTAssertEqual(named.training, TaskKind.textClassification.defaultTraining)
        // The defaults differ per task (else this test could not fail).
        XCTAssertNotEqual(TaskKind.textClassification.defaultTraining, TaskKind.imageClassification.defaultTraining)
    }

    /// Each malformed config must fail at the exact line and column, with a message naming the problem.
    func testMalformedConfigsPointAtTheProblem() {
        let cases: [(yaml: String, line: Int, column: Int, contains: String)] = [
            ("seed: 1\n", 1, 1, "missing required key 'name'"),
            ("name: a\nsede: 3\n", 2, 1, "unknown key 'sede'"),
            ("name: a\nseed: many\n", 2, 7, "must be an integer"),
            ("name: a\nbudget:\n  candidates: 0\n", 3, 15, "must be in 1..."),
            ("name: a\nsearcher:\n  kind: genetic\n", 3, 9, "must be one of"),
            ("name: a\ntraining:\n  epochs: 2\n  lr: 0.1\n", 4, 3, "unknown key 'lr' in 'training'"),
            ("name: a\nconstraints: 5\n", 2, 14, "must be a mapping"),
            ("name: a\nvalidation_split: 1.5\n", 2, 19, "must be in 0.0...0.9"),
            ("name: a\nsearcher:\n  population_size: 4\n  sample_size: 9\n", 4, 16, "must not exceed"),
            ("name: a\nevaluator:\n  kind: tabular\n", 3, 3, "needs 'table'"),
            ("name: a\n  bad: [\n", 2, 6, "invalid YAML"),
            ("name: a b\n", 1, 7, "'name' may contain"),
            ("name: a\nname: b\n", 2, 1, "duplicate key 'name'"),
            ("name: a\ntraining:\n  nesterov: maybe\n", 3, 13, "must be true or false"),
        ]
        for (yaml, line, column, contains) in cases {
            XCTAssertThrowsError(try ExperimentConfig.parse(yaml: yaml, file: "bad.yaml"), yaml) { error in
                guard let e = error as? ConfigError else { return XCTFail("not a ConfigError: \(error)") }
                XCTAssertEqual(e.file, "bad.yaml")
                XCTAssertEqual(e.line, line, "line for \(yaml.debugDescription): \(e)")
                XCTAssertEqual(e.column, column, "column for \(yaml.debugDescription): \(e)")
                XCTAssertTrue(e.message.contains(contains), "message for \(yaml.debugDescription): \(e)")
                XCTAssertTrue(e.description.hasPrefix("bad.yaml:\(line):\(column): "))
            }
        }
    }
}
