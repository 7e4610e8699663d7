import Datasets
import Engine
import Foundation
import HDF5Kit
import Lab
import NASCore
import Spaces
import TestSupport
import XCTest

/// Text / tabular training, saving, prediction, fine-tuning and the trained-model format.
final class TaskTrainingTests: XCTestCase {
    static let textSpace = """
        name: tiny-text
        task: text_classification
        description: tiny text net for tests
        activation: relu
        stem:
          - {op: embedding, width: 16}
        stages:
          - blocks: {depth: 1, width: 16, op: conv1d, kernel: 3}
        head:
          pool: max
        """
    static let tabularSpace = """
        name: tiny-tabular
        task: tabular_classification
        description: tiny MLP for tests
        stages:
          - blocks: {depth: 1, width: 16, activation: relu, op: dense}
        head:
          pool: none
        """
    static let vocabularies = [["goal", "match", "team", "score", "ball", "coach", "league"],
                               ["pizza", "pasta", "salad", "soup", "bread", "cheese", "sauce"],
                               ["guitar", "drums", "song", "melody", "piano", "chorus", "band"]]
    static let classNames = ["sport", "food", "music"]

    /// A text CSV: `rows` rows per class, each 3-6 words of its class's vocabulary.
    static func writeTextCSV(_ url: URL, classes: Int, rows: Int, seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        var text = "text,label\n"
        for r in 0..<rows {
            for c in 0..<classes {
                let n = 3 + Int(rng.next() % 4)
                let words = (0..<n).map { _ in vocabularies[c][Int(rng.next() % UInt64(vocabularies[c].count))] }
                text += "\"\(words.joined(separator: " ")), ok\",\(classNames[c])\n"
                _ = r
            }
        }
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    /// A tabular CSV: two Gaussian blobs in 4 features at (±3 + offset, …) with a raw offset of 100 (so standardisation matters).
    static func writeTabularCSV(_ url: URL, rows: Int, seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        func noise() -> Double { Double(rng.next() % 1000) / 1000 - 0.5 }
        var text = "f1,f2,label,f3,f4\n"
        for _ in 0..<rows {
            for c in 0..<2 {
                let m = c == 0 ? -3.0 : 3.0
                text += String(format: "%.4f,%.4f,%@,%.4f,%.4f\n", 100 + m + noise(), 50 - m + noise(), c == 0 ? "a" : "b",
                               m * 10 + noise(), noise())
            }
        }
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    func options(space: URL?, dataset: URL, epochs: Int, seed: UInt64 = 1) -> TrainingRun.Options {
        var o = TrainingRun.Options(space: space?.path)
        o.dataset = dataset.path
        o.overrides.epochs = epochs
        o.overrides.batchSize = 8
        o.threads = 1
        o.seed = seed
        o.progress = false
        return o
    }

    func testTextTrainSaveReloadPredict() throws {
        let dir = try CLI.scratch("text-train")
        let space = dir.appendingPathComponent("tiny-text.yaml"), csv = dir.appendingPathComponent("two.csv")
        try Self.textSpace.write(to: space, atomically: true, encoding: .utf8)
        try Self.writeTextCSV(csv, classes: 2, rows: 20, seed: 3)
        var o = options(space: space, dataset: csv, epochs: 40)
        let path = dir.appendingPathComponent("text.h5").path
        o.saveWeights = path
        let m = try TrainingRun.run(o)
        XCTAssertEqual(m.status, "completed")
        XCTAssertEqual(m.task, "text_classification")
        XCTAssertEqual(m.training?.optimizer, "adamw", "text defaults apply")
        XCTAssertEqual(m.training?.epochs, 40, "the override applies")
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(m.test_accuracy), 0.99, "distinct vocabularies are separable")

        let model = try TrainedModel.load(from: path)
        XCTAssertEqual(model.task, .textClassification)
        let tokenizer = try XCTUnwrap(model.tokenizer)
        // Datasets tokenize with subword bags by default; a small dataset gets few buckets.
        let subwords = try XCTUnwrap(tokenizer.subwords)
        XCTAssertEqual(subwords.characterNGrams, Tokenizer.Subwords.standard.characterNGrams)
        XCTAssertEqual(subwords.idsPerToken, Tokenizer.Subwords.standard.idsPerToken)
        XCTAssertLessThan(subwords.buckets, 10_000)
        XCTAssertEqual(model.inputKind, .tokens(vocabularySize: tokenizer.idCount))
        XCTAssertEqual(model.inputShape, tokenizer.sampleShape)
        XCTAssertEqual(model.classNames, ["food", "sport"])
        XCTAssertNil(model.initializedFrom)
        let predictor = try ModelPredictor(model: model)
        let texts = ["pizza pasta and cheese", "team goal match score", "unknownword"]
        let (p, counts) = try predictor.predict(texts: texts, topK: 5)
        XCTAssertEqual(counts, [4, 4, 1])
        XCTAssertEqual(p[0][0].label, "food")
        XCTAssertEqual(p[1][0].label, "sport")
        for row in p {
            XCTAssertEqual(row.count, 2, "top-k above the class count gives every class")
            XCTAssertEqual(row.map(\.score).reduce(0, +), 1, accuracy: 1e-9)
            XCTAssertGreaterThanOrEqual(row[0].score, row[1].score)
        }
        // A text model refuses numbers that are not token ids; an image/tabular model refuses texts.
        XCTAssertThrowsError(try predictor.predict([[Float](repeating: 0.5, count: model.inputShape.elementCount)]))
    }

    func testPredictCLIJSONLAndCSV() throws {
        let dir = try CLI.scratch("predict-cli")
        let space = dir.appendingPathComponent("tiny-text.yaml"), csv = dir.appendingPathComponent("three.csv")
        try Self.textSpace.write(to: space, atomically: true, encoding: .utf8)
        try Self.writeTextCSV(csv, classes: 3, rows: 20, seed: 5)
        let model = dir.appendingPathComponent("m.h5").path
        let train = try CLI.run(["train", "--space", space.path, "--dataset", csv.path, "--epochs", "40", "--batch-size", "8", "--threads", "1",
                                 "--save", model, "--json"])
        XCTAssertEqual(train.status, 0, train.stderr)
        let inputs = dir.appendingPathComponent("in.txt")
        try "song on guitar band\npizza soup bread\n\ngoal goal goal\n".write(to: inputs, atomically: true, encoding: .utf8)
        let jsonl = try CLI.run(["predict", model, "--input", inputs.path, "--top-k", "9"])
        XCTAssertEqual(jsonl.status, 0, jsonl.stderr)
        let lines = jsonl.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 4, jsonl.stdout)
        let rows = try lines.map { try JSONDecoder().decode(BatchPrediction.Row.self, from: Data($0.utf8)) }
        XCTAssertEqual(rows.map(\.index), [0, 1, 2, 3])
        XCTAssertEqual(rows.map { $0.predictions[0].label }[0], "music")
        XCTAssertEqual(rows[1].predictions[0].label, "food")
        XCTAssertEqual(rows[3].predictions[0].label, "sport")
        XCTAssertEqual(rows[2].input_tokens, 0)
        XCTAssertEqual(rows[3].input_tokens, 3)
        for r in rows {
            XCTAssertEqual(r.predictions.count, 3)
            XCTAssertEqual(r.predictions.map(\.score).reduce(0, +), 1, accuracy: 1e-6)
            XCTAssertEqual(r.predictions.map(\.score), r.predictions.map(\.score).sorted(by: >))
        }
        // CSV format, CSV input with a text column, written to a file.
        let csvInput = dir.appendingPathComponent("in.csv"), out = dir.appendingPathComponent("out.csv")
        try "id,text\n1,\"melody, piano\"\n2,bread\n".write(to: csvInput, atomically: true, encoding: .utf8)
        let c = try CLI.run(["predict", model, "--input", csvInput.path, "--top-k", "2", "--format", "csv", "--output", out.path])
        XCTAssertEqual(c.status, 0, c.stderr)
        let csvLines = try String(contentsOf: out, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(csvLines.first, "index,rank,label,class_index,score")
        XCTAssertEqual(csvLines.count, 5)
        XCTAssertTrue(csvLines[1].hasPrefix("0,1,music,"), csvLines[1])
        XCTAssertTrue(csvLines[3].hasPrefix("1,1,food,"), csvLines[3])
        // A CSV without a text column is a clear error.
        let bad = dir.appendingPathComponent("bad.csv")
        try "words\nhello\n".write(to: bad, atomically: true, encoding: .utf8)
        let e = try CLI.run(["predict", model, "--input", bad.path])
        XCTAssertNotEqual(e.status, 0)
        XCTAssertTrue(e.stderr.contains("bad.csv:1: no 'text' column"), e.stderr)
    }

    func testTabularTrainAndPredictWithStandardisation() throws {
        let dir = try CLI.scratch("tabular")
        let space = dir.appendingPathComponent("tiny-tab.yaml"), csv = dir.appendingPathComponent("blobs.csv")
        try Self.tabularSpace.write(to: space, atomically: true, encoding: .utf8)
        try Self.writeTabularCSV(csv, rows: 30, seed: 2)
        let model = dir.appendingPathComponent("tab.h5").path
        let train = try CLI.run(["train", "--space", space.path, "--dataset", csv.path, "--epochs", "10", "--batch-size", "8", "--threads", "1",
                                 "--save", model, "--json"])
        XCTAssertEqual(train.status, 0, train.stderr)
        XCTAssertTrue(train.stdout.contains("\"task\" : \"tabular_classification\""), train.stdout)
        let loaded = try TrainedModel.load(from: model)
        XCTAssertEqual(loaded.inputKind, .features)
        XCTAssertNotNil(loaded.normalization)
        // Raw (unstandardised) rows; the label column is ignored wherever it is.
        let input = dir.appendingPathComponent("rows.csv")
        try "f1,f2,label,f3,f4\n97,53,x,-30,0\n103,47,x,30,0\n".write(to: input, atomically: true, encoding: .utf8)
        let p = try CLI.run(["predict", model, "--input", input.path, "--format", "csv"])
        XCTAssertEqual(p.status, 0, p.stderr)
        let lines = p.stdout.split(separator: "\n")
        XCTAssertTrue(lines[1].hasPrefix("0,1,a,0,"), p.stdout)
        XCTAssertTrue(lines[2].hasPrefix("1,1,b,1,"), p.stdout)
        // A bad row: file:line.
        try "f1,f2,f3,f4\n1,2,3,4\n1,oops,3,4\n".write(to: input, atomically: true, encoding: .utf8)
        let e = try CLI.run(["predict", model, "--input", input.path])
        XCTAssertNotEqual(e.status, 0)
        XCTAssertTrue(e.stderr.contains("rows.csv:3: column 2 ('f2'): 'oops' is not a finite number"), e.stderr)
    }

    func testFineTuningStartsAtTheTrainedAccuracyAndScratchDoesNot() throws {
        let dir = try CLI.scratch("finetune")
        let space = dir.appendingPathComponent("tiny-text.yaml"), csv = dir.appendingPathComponent("two.csv")
        try Self.textSpace.write(to: space, atomically: true, encoding: .utf8)
        try Self.writeTextCSV(csv, classes: 2, rows: 40, seed: 9)
        var o = options(space: space, dataset: csv, epochs: 40)
        o.validationSplit = 0.5
        let path = dir.appendingPathComponent("base.h5").path
        o.saveWeights = path
        let base = try TrainingRun.run(o)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(base.val_accuracy), 0.95)

        // Scratch, with the accuracy before training.
        var scratch = TrainingJob(spaceName: space.path, architecture: nil, dataset: csv.path)
        scratch.validationSplit = 0.5
        scratch.datasetSeed = 1
        scratch.seed = 7
        scratch.evaluateBeforeTraining = true
        scratch.training = TaskKind.textClassification.defaultTraining
        scratch.training?.epochs = 1
        scratch.training?.batchSize = 8
        let s = try ModelTraining.train(scratch, datasets: DatasetCache())
        let s0 = try XCTUnwrap(s.initialValidationAccuracy)
        XCTAssertLessThanOrEqual(s0, 0.8, "an untrained network is near chance")

        // Fine-tuned (CLI options: the space and architecture come from the model).
        var f = options(space: nil, dataset: csv, epochs: 1, seed: 1)
        f.validationSplit = 0.5
        f.initFrom = path
        let saved = dir.appendingPathComponent("tuned.h5").path
        f.saveWeights = saved
        let tuned = try TrainingRun.run(f)
        XCTAssertEqual(try XCTUnwrap(tuned.initial_val_accuracy), try XCTUnwrap(base.val_accuracy), accuracy: 1e-12,
                       "fine-tuning starts at the trained model's accuracy")
        XCTAssertEqual(tuned.initialized_from, path)
        XCTAssertEqual(try TrainedModel.load(from: saved).initializedFrom, path)
    }

    func testFineTuningToAnotherClassCountKeepsTheBodyAndReinitialisesTheClassifier() throws {
        let dir = try CLI.scratch("finetune-classes")
        let space = dir.appendingPathComponent("tiny-text.yaml")
        let two = dir.appendingPathComponent("two.csv"), three = dir.appendingPathComponent("three.csv")
        try Self.textSpace.write(to: space, atomically: true, encoding: .utf8)
        try Self.writeTextCSV(two, classes: 2, rows: 20, seed: 1)
        try Self.writeTextCSV(three, classes: 3, rows: 20, seed: 2)
        var job = TrainingJob(spaceName: space.path, architecture: nil, dataset: two.path)
        job.training = TaskKind.textClassification.defaultTraining
        job.training?.epochs = 3
        job.training?.batchSize = 8
        let base = try ModelTraining.train(job, datasets: DatasetCache()).model

        // Encoding with a given tokenizer keeps the dataset's split: with the dataset's own tokenizer it is the same dataset.
        let own = try DatasetCache().dataset(three.path, validationSplit: 0.2, seed: 4)
        let again = try DatasetCache().dataset(three.path, validationSplit: 0.2, seed: 4, tokenizer: own.tokenizer!)
        XCTAssertEqual(again.train, own.train)
        XCTAssertEqual(again.validation, own.validation)
        XCTAssertEqual(again.test, own.test)
        XCTAssertEqual(again.metadata, own.metadata)

        // The new network for 3 classes, encoded with the base model's tokenizer.
        let data = try DatasetCache().dataset(three.path, validationSplit: 0.1, seed: 0, tokenizer: base.tokenizer!)
        XCTAssertEqual(data.metadata.inputKind, base.inputKind)
        XCTAssertEqual(data.metadata.classCount, 3)
        let reference = try SpaceReference.resolve(space.path)
        let graph = try reference.space.network(for: try reference.space.parse(SearchSpace.fixedArchitectureText),
                                                inputShape: data.metadata.sampleShape, inputKind: data.metadata.inputKind,
                                                classCount: 3)
        var rng = SeededGenerator(seed: 123)
        let network = try Network(graph: graph, classCount: 3, rng: &rng)
        let fresh = Dictionary(uniqueKeysWithValues: network.namedTensors().map { ($0.name, $0.values) })
        let copied = try ModelTraining.initialize(network, from: base, datasetName: three.path)
        let baseByName = Dictionary(uniqueKeysWithValues: base.tensors.map { ($0.name, $0.values) })
        var bodyCount = 0, classifierCount = 0
        for t in network.namedTensors() {
            if t.name.hasPrefix(ModelTraining.classifierPrefix) {
                classifierCount += 1
                XCTAssertEqual(t.values, fresh[t.name], "\(t.name) stays freshly initialised")
                XCTAssertFalse(copied.contains(t.name))
            } else {
                bodyCount += 1
                XCTAssertEqual(t.values, baseByName[t.name], "\(t.name) comes from the trained model")
            }
        }
        XCTAssertGreaterThan(bodyCount, 0)
        XCTAssertEqual(classifierCount, 2)

        // Through the pipeline: trains, and the outcome says what was copied.
        var tune = TrainingJob(spaceName: nil, architecture: nil, dataset: three.path)
        tune.initialModel = base
        tune.training = job.training
        tune.training?.epochs = 1
        let outcome = try ModelTraining.train(tune, datasets: DatasetCache())
        XCTAssertEqual(outcome.model.classCount, 3)
        XCTAssertEqual(Set(outcome.initializedTensors), Set(baseByName.keys.filter { !$0.hasPrefix(ModelTraining.classifierPrefix) }))
    }

    func testFineTuningOnAnIncompatibleDatasetIsAClearError() throws {
        let dir = try CLI.scratch("finetune-bad")
        let space = dir.appendingPathComponent("tiny-tab.yaml"), tab = dir.appendingPathComponent("blobs.csv")
        let text = dir.appendingPathComponent("text.csv")
        try Self.tabularSpace.write(to: space, atomically: true, encoding: .utf8)
        try Self.writeTabularCSV(tab, rows: 20, seed: 1)
        try Self.writeTextCSV(text, classes: 2, rows: 20, seed: 1)
        var job = TrainingJob(spaceName: space.path, architecture: nil, dataset: tab.path)
        job.training = TaskKind.tabularClassification.defaultTraining
        job.training?.epochs = 1
        let tabular = try ModelTraining.train(job, datasets: DatasetCache()).model
        var tune = TrainingJob(spaceName: nil, architecture: nil, dataset: text.path)
        tune.initialModel = tabular
        XCTAssertThrowsError(try ModelTraining.train(tune, datasets: DatasetCache())) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("features inputs") && message.contains("'\(text.path)' has tokens inputs"), message)
        }
        // A tabular model with 4 features on 2-feature data.
        let narrow = dir.appendingPathComponent("narrow.csv")
        try "a,b,label\n" .appending((0..<20).map { "\($0),\($0 % 3),\($0 % 2)\n" }.joined()).write(to: narrow, atomically: true, encoding: .utf8)
        tune.dataset = narrow.path
        XCTAssertThrowsError(try ModelTraining.train(tune, datasets: DatasetCache())) { error in
            XCTAssertTrue("\(error)".contains("shape 4x1x1 but dataset '\(narrow.path)' has samples of shape 2x1x1"), "\(error)")
        }
        // A text model on tabular data.
        var textJob = TrainingJob(spaceName: nil, spaceYAML: Self.textSpace, architecture: nil, dataset: text.path)
        textJob.training = TaskKind.textClassification.defaultTraining
        textJob.training?.epochs = 1
        let textModel = try ModelTraining.train(textJob, datasets: DatasetCache()).model
        var wrong = TrainingJob(spaceName: nil, architecture: nil, dataset: tab.path)
        wrong.initialModel = textModel
        XCTAssertThrowsError(try ModelTraining.train(wrong, datasets: DatasetCache())) { error in
            XCTAssertTrue("\(error)".contains("dataset '\(tab.path)' is not a text dataset"), "\(error)")
        }
        // And texts to a tabular predictor.
        XCTAssertThrowsError(try ModelPredictor(model: tabular).predict(texts: ["hello"])) { error in
            XCTAssertTrue("\(error)".contains("tabular_classification model: it takes features inputs, not text"), "\(error)")
        }
    }

    func testVersion1ModelFilesStillLoad() throws {
        let dir = try CLI.scratch("v1")
        let reference = try SpaceReference.resolve(CLI.repositoryRoot.appendingPathComponent("SearchSpaces/reference/cnn.yaml").path)
        let shape = FeatureShape(channels: 1, height: 8, width: 8)
        let graph = try reference.space.network(for: try reference.space.parse(SearchSpace.fixedArchitectureText),
                                                inputShape: shape, classCount: 10)
        var rng = SeededGenerator(seed: 0)
        let network = try Network(graph: graph, classCount: 10, rng: &rng)
        let path = dir.appendingPathComponent("v1.h5").path
        // Exactly what version 1 wrote.
        let file = try H5File.create(path: path, truncate: true)
        try file.setAttribute("format", "naslab-model")
        try file.setAttribute("space_name", "reference/cnn")
        try file.setAttribute("space_yaml", reference.yaml)
        try file.setAttribute("architecture", "")
        try file.setAttribute("input_shape", "1x8x8")
        try file.setAttribute("class_count", 10)
        try file.requireGroup("weights").writeTensors(network.namedTensors().map { ($0.name, $0.shape, $0.values) })
        try file.close()
        let model = try TrainedModel.load(from: path)
        XCTAssertEqual(model.inputKind, .image)
        XCTAssertEqual(model.task, .imageClassification)
        XCTAssertNil(model.tokenizer)
        let p = try ModelPredictor(model: model).predict([[Float](repeating: 0.1, count: 64)], topK: 3)
        XCTAssertEqual(p[0].count, 3)
        // Saved again: version 2 with the task.
        let again = dir.appendingPathComponent("v2.h5").path
        try model.save(to: again)
        let f = try H5File.open(path: again)
        XCTAssertEqual(try f.intAttribute("format_version"), 2)
        XCTAssertEqual(try f.stringAttribute("task"), "image_classification")
        try f.close()
        // Candidate weights written as model files are still read by WeightsFile.
        XCTAssertEqual(try WeightsFile.read(again).count, model.tensors.count)
    }

    func testSpacesJSONListsEveryTask() throws {
        let out = try CLI.run(["spaces", "--json"])
        XCTAssertEqual(out.status, 0, out.stderr)
        struct Entry: Decodable { var name: String; var task: String; var size: String; var decisions: Int; var description: String }
        let entries = try JSONDecoder().decode([Entry].self, from: Data(out.stdout.utf8))
        let tasks = Dictionary(entries.map { ($0.name, $0.task) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(tasks["small"], "image_classification")
        XCTAssertEqual(tasks["text-small"], "text_classification")
        XCTAssertEqual(tasks["reference/text-cnn"], "text_classification")
        XCTAssertEqual(tasks["tabular-small"], "tabular_classification")
    }
}
