import Datasets
import Engine
import Foundation
import HDF5Kit
import Lab
import NASCore
import TestSupport
import XCTest

/// `naslab predict` on segmentation and detection models (and `datasets export` on scenes): the
/// CLI's masks and boxes are the engine's (`Network.predictMasks` / `predictBoxes`) on the inputs
/// normalised with the model's normalisation, written in the documented layouts.
final class DensePredictionTests: XCTestCase {
    static let segmentationArchitecture = "stem.width=8 stage1.depth=1 stage1.width=16 stage1.block0.op=conv stage1.block0.kernel=3 "
        + "stage2.depth=1 stage2.width=24 stage2.block0.op=conv stage2.block0.kernel=3 stage3.depth=1 stage3.width=32 "
        + "stage3.block0.op=conv decoder.upsample=nearest decoder.level1.skip=true decoder.level1.width=24 decoder.level1.depth=1 "
        + "decoder.level2.skip=true decoder.level2.width=16 decoder.level2.depth=1 decoder.level3.skip=true decoder.level3.width=8 "
        + "decoder.level3.depth=1"
    static let detectionArchitecture = "stem.width=8 stage1.depth=1 stage1.width=16 stage1.block0.op=conv stage1.block0.kernel=3 "
        + "stage2.depth=1 stage2.width=24 stage2.block0.op=conv stage2.block0.kernel=3 stage3.depth=1 stage3.width=32 "
        + "stage3.block0.op=conv stage4.depth=1 stage4.width=48 stage4.block0.op=conv decoder.upsample=nearest "
        + "decoder.head_width=32 decoder.level1.skip=true decoder.level1.width=32 decoder.level1.depth=1 "
        + "decoder.level2.skip=true decoder.level2.width=24 decoder.level2.depth=1"

    /// A scenes file (64 + 16 scenes of 32×32, made by the CLI) and a segmentation and a detection
    /// model trained on it for one epoch (batch 16) through `ModelTraining.train`.
    struct Fixture {
        let directory: URL
        let scenes: String
        let segmentation: String
        let detection: String
    }

    static var cached: Result<Fixture, Error>?

    static func fixture() throws -> Fixture {
        if let cached { return try cached.get() }
        let result = Result { try makeFixture() }
        cached = result
        return try result.get()
    }

    static func makeFixture() throws -> Fixture {
        let directory = IDXLoader.defaultFashionMNISTDirectory
        guard ["train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"].contains(where: {
            FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent($0))
        }) else {
            throw XCTSkip("Fashion-MNIST not installed at \(directory) (Debian package dataset-fashion-mnist)")
        }
        let scratch = try CLI.scratch("dense-predict")
        let scenes = scratch.appendingPathComponent("scenes.h5").path
        let made = try CLI.run(["datasets", "make", "fashion-scenes", "--output", scenes, "--count", "64", "--test-count", "16",
                                "--size", "32", "--max-objects", "2"])
        guard made.status == 0 else { throw LabError.invalid("datasets make failed: \(made.stderr)") }
        func train(_ space: String, _ architecture: String, _ task: TaskKind, _ name: String) throws -> String {
            var job = TrainingJob(spaceName: space, architecture: architecture, dataset: scenes)
            var training = task.defaultTraining
            training.epochs = 1
            training.batchSize = 16
            job.training = training
            job.threads = 1
            let outcome = try ModelTraining.train(job, datasets: DatasetCache())
            guard outcome.failureReason == nil else { throw LabError.invalid("training failed: \(outcome.failureReason!)") }
            let path = scratch.appendingPathComponent(name).path
            try outcome.model.save(to: path)
            return path
        }
        return Fixture(directory: scratch, scenes: scenes,
                       segmentation: try train("segmentation-small", segmentationArchitecture, .segmentation, "seg.h5"),
                       detection: try train("detection-small", detectionArchitecture, .detection, "det.h5"))
    }

    /// The engine's view of `/x` of `path`: raw values normalised with `model`'s normalisation.
    static func engineInputs(_ path: String, model: TrainedModel) throws -> LabeledArrays {
        let file = try H5File.open(path: path)
        defer { try? file.close() }
        var x = try file.read("x", as: Float.self).values
        let n = x.count / model.inputShape.elementCount
        model.normalization?.apply(to: &x, sampleShape: model.inputShape)
        return LabeledArrays(features: x, labels: [Int32](repeating: 0, count: n), sampleShape: model.inputShape,
                             classCount: model.classCount)
    }

    func testSegmentationPredictWritesTheEnginesMasksAsHDF5() throws {
        let f = try Self.fixture()
        let model = try TrainedModel.load(from: f.segmentation)
        XCTAssertEqual(model.task, .segmentation)
        XCTAssertNotNil(model.normalization, "images carry their training normalisation")
        let output = f.directory.appendingPathComponent("masks.h5").path
        let run = try CLI.run(["predict", f.segmentation, "--input", f.scenes, "--output", output, "--threads", "1"])
        XCTAssertEqual(run.status, 0, run.stderr)

        let expected = try model.makeNetwork().predictMasks(try Self.engineInputs(f.scenes, model: model))
        let file = try H5File.open(path: output)
        defer { try? file.close() }
        let info = try file.datasetInfo("masks")
        XCTAssertEqual(info.shape, [64, 32, 32])
        XCTAssertEqual(try file.read("masks", as: Int32.self).values, expected, "predict's masks are the engine's")
        XCTAssertTrue(expected.allSatisfy { (0...Int32(model.classCount)).contains($0) })
        XCTAssertEqual(try file.stringsAttribute("class_names"), model.classNames)
        XCTAssertEqual(try file.stringsAttribute("class_names"), IDXLoader.fashionMNISTClassNames)

        // The in-process predictor (what the API serves) gives the same masks.
        let images = try BatchPrediction.readImages(f.scenes, for: model)
        XCTAssertEqual(try ModelPredictor(model: model).predictMasks(Array(images.prefix(5))).flatMap { $0 },
                       Array(expected.prefix(5 * 32 * 32)))

        // A second reader: h5py sees N×H×W uint8 class ids and the datasets' class_names attribute.
        let out = try runPython("""
            import sys, h5py
            with h5py.File(sys.argv[1], "r") as f:
                m = f["masks"]
                names = [n.decode() if isinstance(n, bytes) else str(n) for n in f.attrs["class_names"]]
                print(m.shape, m.dtype, int(m[...].max()) <= 10, names[0], names[-1])
            """, [output])
        XCTAssertEqual(out.trimmingCharacters(in: .whitespacesAndNewlines), "(64, 32, 32) uint8 True T-shirt/top Ankle boot")
    }

    /// `naslab export-onnx` keeps a segmentation model's per-pixel logits N×(K+1)×H×W; onnxruntime
    /// (a second implementation) gives the engine's masks by arg-max over the channels.
    func testSegmentationONNXExportGivesTheEnginesMasks() throws {
        let f = try Self.fixture()
        let model = try TrainedModel.load(from: f.segmentation)
        let onnx = f.directory.appendingPathComponent("seg.onnx").path
        let export = try CLI.run(["export-onnx", f.segmentation, "-o", onnx])
        XCTAssertEqual(export.status, 0, export.stderr)
        XCTAssertTrue(export.stdout.contains("output 'logits' N×11×32×32"), export.stdout)
        let expected = try model.makeNetwork().predictMasks(try Self.engineInputs(f.scenes, model: model))
        let expectedPath = f.directory.appendingPathComponent("expected-masks.bin").path
        try expected.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: URL(fileURLWithPath: expectedPath))
        let out = try runPython("""
            import sys
            try:
                import numpy as np, onnxruntime as ort, h5py
            except ImportError:
                print("SKIP"); sys.exit(0)
            with h5py.File(sys.argv[2], "r") as f: x = f["x"][...].astype(np.float32)
            s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
            y = s.run(None, {"input": x})[0]
            masks = y.argmax(axis=1).astype(np.int32)
            expected = np.fromfile(sys.argv[3], dtype=np.int32).reshape(masks.shape)
            print(list(y.shape), float((masks == expected).mean()))
            """, [onnx, f.scenes, expectedPath])
        if out.hasPrefix("SKIP") {
            if ProcessInfo.processInfo.environment["NASLAB_REQUIRE_ONNX"] == "1" { XCTFail("onnxruntime is required (NASLAB_REQUIRE_ONNX=1)") }
            throw XCTSkip("onnxruntime not installed (pip install onnxruntime)")
        }
        let parts = out.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ", maxSplits: 4).map(String.init)
        XCTAssertEqual(parts.prefix(4).joined(separator: " "), "[64, 11, 32, 32]", out)
        // Float rounding may flip a pixel whose two best logits tie to ~1e-6; anything more is a bug.
        XCTAssertGreaterThanOrEqual(Double(parts.last ?? "") ?? 0, 0.9999, out)
    }

    func testDetectionPredictLinesAgreeWithTheEngine() throws {
        let f = try Self.fixture()
        let model = try TrainedModel.load(from: f.detection)
        XCTAssertEqual(model.task, .detection)
        let data = try Self.engineInputs(f.scenes, model: model)
        let network = try model.makeNetwork()
        for (arguments, head) in [([String](), CenterNet()),
                                  (["--score-threshold", "0.05", "--max-detections", "3"], { var h = CenterNet(); h.scoreThreshold = 0.05; h.topK = 3; return h }())] {
            let run = try CLI.run(["predict", f.detection, "--input", f.scenes, "--threads", "1"] + arguments)
            XCTAssertEqual(run.status, 0, run.stderr)
            let lines = run.stdout.split(separator: "\n")
            XCTAssertEqual(lines.count, 64, "one line per input")
            let expected = try network.predictBoxes(data, head: head, classCount: model.classCount)
            var total = 0
            for (i, line) in lines.enumerated() {
                let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                XCTAssertEqual(Set(object.keys), ["index", "boxes", "scores", "labels", "class_ids"])
                XCTAssertEqual(object["index"] as? Int, i)
                let row = try JSONDecoder().decode(BatchPrediction.DetectionRow.self, from: Data(line.utf8))
                let mine = expected.filter { $0.image == i }
                XCTAssertEqual(row.boxes, mine.map { [$0.x1, $0.y1, $0.x2, $0.y2] }, "input \(i) \(arguments)")
                XCTAssertEqual(row.scores, mine.map(\.score))
                XCTAssertEqual(row.class_ids, mine.map(\.classID))
                XCTAssertEqual(row.labels, mine.map { IDXLoader.fashionMNISTClassNames[$0.classID] })
                XCTAssertEqual(row.scores, row.scores.sorted(by: >), "best first")
                for b in row.boxes { XCTAssertTrue(b[0] >= 0 && b[2] <= 32 && b[1] >= 0 && b[3] <= 32 && b[0] <= b[2] && b[1] <= b[3]) }
                total += row.boxes.count
            }
            XCTAssertEqual(total, expected.count)
            if !arguments.isEmpty {
                XCTAssertTrue(expected.allSatisfy { $0.score >= 0.05 })
                XCTAssertTrue(lines.allSatisfy { line in
                    ((try? JSONDecoder().decode(BatchPrediction.DetectionRow.self, from: Data(line.utf8)))?.boxes.count ?? 99) <= 3
                })
            }
        }
    }

    func testFlagsThatDoNotApplyAreClearErrors() throws {
        let f = try Self.fixture()
        func refused(_ arguments: [String], _ message: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let run = try CLI.run(["predict"] + arguments + ["--input", f.scenes])
            XCTAssertEqual(run.status, 64, run.stderr, file: file, line: line)
            XCTAssertTrue(run.stderr.contains(message), run.stderr, file: file, line: line)
        }
        let out = f.directory.appendingPathComponent("refused.h5").path
        try refused([f.segmentation], "is a segmentation model: pass --output FILE.h5")
        try refused([f.segmentation, "--output", f.directory.appendingPathComponent("m.jsonl").path], "name it FILE.h5")
        try refused([f.segmentation, "--output", out, "--top-k", "3"], "--top-k does not apply to")
        try refused([f.segmentation, "--output", out, "--format", "csv"], "--format does not apply to")
        try refused([f.segmentation, "--output", out, "--score-threshold", "0.5"], "--score-threshold does not apply to")
        try refused([f.detection, "--format", "csv"], "--format csv does not apply to")
        try refused([f.detection, "--top-k", "2"], "a detection model: it writes boxes as JSON lines")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "nothing is written on a refused call")
        // The library refuses other tasks' predictions too.
        let predictor = try ModelPredictor(model: try TrainedModel.load(from: f.segmentation))
        let image = [Float](repeating: 0, count: 32 * 32)
        XCTAssertThrowsError(try predictor.predict([image])) { XCTAssertTrue("\($0)".contains("segmentation model"), "\($0)") }
        XCTAssertThrowsError(try predictor.predictBoxes([image])) { XCTAssertTrue("\($0)".contains("not a detection model"), "\($0)") }
        XCTAssertThrowsError(try predictor.predictMasks([[Float](repeating: 0, count: 7)])) {
            XCTAssertTrue("\($0)".contains("has 7 values"), "\($0)")
        }
    }

    func testExportWritesScenesWithMasksAndBoxes() throws {
        let f = try Self.fixture()
        let output = f.directory.appendingPathComponent("split.h5").path
        let run = try CLI.run(["datasets", "export", f.scenes, "--output", output])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("with masks and boxes"), run.stdout)
        let data = try DatasetCache().dataset(f.scenes, validationSplit: Dataset.defaultValidationSplit, seed: 0)
        let file = try H5File.open(path: output)
        defer { try? file.close() }
        for (name, part) in [("train", data.train), ("validation", data.validation), ("test", data.test)] {
            let group = try file.openGroup(name)
            XCTAssertEqual(try group.datasetInfo("x").shape, [part.count, 1, 32, 32])
            XCTAssertEqual(try group.read("x", as: Float.self).values, part.features)
            XCTAssertEqual(try group.read("masks", as: Int32.self).values, part.masks)
            XCTAssertEqual(try group.datasetInfo("boxes").shape, [part.boxes?.count ?? -1, 6])
            let rows = try group.read("boxes", as: Float.self).values
            XCTAssertEqual(rows, (part.boxes ?? []).flatMap { [Float($0.image), Float($0.classID), $0.x1, $0.y1, $0.x2, $0.y2] })
        }
        XCTAssertEqual(try file.stringsAttribute("class_names"), IDXLoader.fashionMNISTClassNames)
        // A CSV cannot hold masks and boxes: a clear error, nothing written.
        let csv = f.directory.appendingPathComponent("split.csv").path
        let refused = try CLI.run(["datasets", "export", f.scenes, "--output", csv])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("scene dataset (masks/boxes): export it to an HDF5 file"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: csv))
    }
}
