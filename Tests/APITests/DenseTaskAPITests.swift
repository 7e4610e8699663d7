import API
import Datasets
import Engine
import Foundation
import HDF5Kit
import Hummingbird
import Lab
import NASCore
import XCTest

/// Segmentation and detection through the HTTP API (in-process router, real `LabWorkbench`): a
/// registered scenes file → segmentation search → model from its best architecture → training →
/// deployment → run-length encoded masks equal to the engine's; a detection model's boxes; the
/// 400s for datasets without masks / boxes.
final class DenseTaskAPITests: XCTestCase {
    static let detectionArchitecture = "stem.width=8 stage1.depth=1 stage1.width=16 stage1.block0.op=conv stage1.block0.kernel=3 "
        + "stage2.depth=1 stage2.width=24 stage2.block0.op=conv stage2.block0.kernel=3 stage3.depth=1 stage3.width=32 "
        + "stage3.block0.op=conv stage4.depth=1 stage4.width=48 stage4.block0.op=conv decoder.upsample=nearest "
        + "decoder.head_width=32 decoder.level1.skip=true decoder.level1.width=32 decoder.level1.depth=1 "
        + "decoder.level2.skip=true decoder.level2.width=24 decoder.level2.depth=1"

    /// Writes 64 + 16 scenes of 32×32 (at most 2 items) to `path`; skips without Fashion-MNIST.
    static func writeScenes(_ path: String) throws {
        let directory = IDXLoader.defaultFashionMNISTDirectory
        guard ["train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"].contains(where: {
            FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent($0))
        }) else {
            throw XCTSkip("Fashion-MNIST not installed at \(directory) (Debian package dataset-fashion-mnist)")
        }
        try FashionScenes.generate(FashionScenes.Options(count: 64, testCount: 16, size: 32, maxObjects: 2, seed: 5)).write(to: path)
    }

    /// The first `count` raw test images of a scenes file, as JSON numbers.
    static func testImages(_ path: String, count: Int) throws -> [[Double]] {
        let file = try H5File.open(path: path)
        defer { try? file.close() }
        let x = try file.read("x_test", as: Float.self).values
        return (0..<count).map { i in x[(i * 1024)..<((i + 1) * 1024)].map(Double.init) }
    }

    /// The engine's output for raw `images`: normalised with the model's normalisation, then the network.
    static func engineData(_ model: TrainedModel, _ images: [[Double]]) -> LabeledArrays {
        var x = images.flatMap { $0.map(Float.init) }
        model.normalization?.apply(to: &x, sampleShape: model.inputShape)
        return LabeledArrays(features: x, labels: [Int32](repeating: 0, count: images.count), sampleShape: model.inputShape,
                             classCount: model.classCount)
    }

    static func json(_ object: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    /// Trains the `created` model on `dataset` (`hyperparameters`: default one epoch, batch 16) and
    /// deploys it; returns model id, deployment id, weights path and the finished training job.
    static func trainAndDeploy(_ api: APIClient, harness: APITestHarness, model created: APIResponse, dataset: String,
                               hyperparameters: String = #"{"epochs": 1, "batch_size": 16}"#) async throws
        -> (model: String, deployment: String, weights: String, job: APIResponse) {
        XCTAssertEqual(created.status, .ok, created.text)
        let model = try XCTUnwrap(created["id"] as? String, created.text)
        let job = try await api.send(.post, "/v1/models/\(model)/train",
                                     json: #"{"dataset_id": "\#(dataset)", "hyperparameters": \#(hyperparameters), "seed": 1}"#)
        XCTAssertEqual(job.status, .ok, job.text)
        let jobID = try XCTUnwrap(job["id"] as? String)
        let done = try await WorkbenchRoutesTests.poll(api, "/v1/jobs/\(jobID)", until: ["completed", "failed"], seconds: 120)
        XCTAssertEqual(done["status"] as? String, "completed", done.text)
        let deployed = try await api.send(.post, "/v1/models/\(model)/deploy", json: "{}")
        let deployment = try XCTUnwrap(deployed["id"] as? String, deployed.text)
        let running = try await WorkbenchRoutesTests.poll(api, "/v1/deployments/\(deployment)", until: ["running", "failed"])
        XCTAssertEqual(running["status"] as? String, "running", running.text)
        return (model, deployment, harness.dataDirectory.appendingPathComponent("models/\(model)/\(jobID).h5").path, done)
    }

    func testSegmentationSearchTrainDeployPredictsRunLengthMasks() async throws {
        let harness = try APITestHarness(workbench: LabWorkbench(threads: 1))
        defer { harness.removeFiles() }
        try FileManager.default.createDirectory(at: harness.importDirectory, withIntermediateDirectories: true)
        let scenes = harness.importDirectory.appendingPathComponent("scenes.h5").path
        try Self.writeScenes(scenes)
        let blobs = harness.importDirectory.appendingPathComponent("blobs.h5")
        try RegisteredDatasetTests.writeHDF5(blobs.path)
        try await harness.test { api in
            // The built-in scenes are listed with their labels and tasks.
            let builtin = try await api.send(.get, "/v1/datasets/fashion-scenes")
            XCTAssertEqual(builtin.status, .ok, builtin.text)
            XCTAssertEqual(builtin["labels"] as? [String], ["classes", "masks", "boxes"])
            XCTAssertEqual(builtin["tasks"] as? [String], ["image_classification", "segmentation", "detection"])

            let registered = try await api.send(.post, "/v1/datasets", json: #"{"path": "\#(scenes)", "name": "scenes"}"#)
            XCTAssertEqual(registered.status, .ok, registered.text)
            XCTAssertEqual(registered["labels"] as? [String], ["classes", "masks", "boxes"], registered.text)
            XCTAssertEqual(registered["tasks"] as? [String], ["image_classification", "segmentation", "detection"])
            let datasetID = try XCTUnwrap(registered["id"] as? String)
            let fetched = try await api.send(.get, "/v1/datasets/\(datasetID)")
            XCTAssertEqual(fetched["labels"] as? [String], ["classes", "masks", "boxes"], fetched.text)
            let plain = try await api.send(.post, "/v1/datasets", json: #"{"path": "\#(blobs.path)"}"#)
            XCTAssertEqual(plain["labels"] as? [String], ["classes"], plain.text)
            let plainID = try XCTUnwrap(plain["id"] as? String)

            // A dense task on a dataset without its labels: 400 naming task_type, saying what is missing.
            for (task, dataset, missing) in [("segmentation", plainID, "masks"), ("detection", "digits", "boxes")] {
                let refused = try await api.send(.post, "/v1/nas/searches", json: """
                    {"task_type": "\(task)", "dataset_id": "\(dataset)", "constraints": {"max_params": 1000000}}
                    """)
                assertError(refused, .badRequest, type: "invalid_request_error", param: "task_type")
                XCTAssertTrue(refused.errorMessage.contains("needs a dataset with \(missing)"), refused.errorMessage)
            }

            // A segmentation search: one candidate of one epoch in segmentation-small.
            let search = try await api.send(.post, "/v1/nas/searches", json: """
                {"task_type": "segmentation", "dataset_id": "\(datasetID)", "search_space": "small", "seed": 2,
                 "constraints": {"max_params": 2000000}, "budget": {"candidates": 1, "epochs_per_candidate": 1}}
                """)
            XCTAssertEqual(search.status, .ok, search.text)
            XCTAssertEqual(search["task"] as? String, "segmentation")
            XCTAssertEqual(search["space"] as? String, "segmentation-small")
            let searchID = try XCTUnwrap(search["id"] as? String)
            let searched = try await WorkbenchRoutesTests.poll(api, "/v1/nas/searches/\(searchID)", until: ["completed", "failed"],
                                                               seconds: 300)
            XCTAssertEqual(searched["status"] as? String, "completed", searched.text)
            XCTAssertEqual(searched["architectures_evaluated"] as? Int, 1, searched.text)
            let miou = try XCTUnwrap(searched["best_validation_miou"] as? Double, searched.text)
            XCTAssertTrue((0...1).contains(miou))
            XCTAssertNil(searched["best_validation_accuracy"], "a segmentation search reports mIoU, not accuracy")

            // Its best architecture: train, deploy, predict.
            let created = try await api.send(.post, "/v1/models", json: #"{"from_search": "\#(searchID)"}"#)
            XCTAssertEqual(created["space"] as? String, "segmentation-small", created.text)
            // A segmentation model does not train on a dataset without masks.
            let createdID = try XCTUnwrap(created["id"] as? String)
            let wrong = try await api.send(.post, "/v1/models/\(createdID)/train", json: #"{"dataset_id": "digits"}"#)
            assertError(wrong, .badRequest, type: "invalid_request_error", param: "dataset_id")
            XCTAssertTrue(wrong.errorMessage.contains("segmentation model"), wrong.errorMessage)
            let (model, deployment, weights, job) = try await Self.trainAndDeploy(api, harness: harness, model: created, dataset: datasetID)
            XCTAssertEqual(job["task"] as? String, "segmentation", job.text)
            XCTAssertEqual((job["hyperparameters"] as? [String: Any])?["optimizer"] as? String, "adamw", "the task's defaults")
            let metrics = try XCTUnwrap(job["metrics"] as? [String: Any], job.text)
            XCTAssertNotNil(metrics["validation_miou"] as? Double, job.text)
            XCTAssertNotNil(metrics["test_pixel_accuracy"] as? Double, job.text)
            let described = try await api.send(.get, "/v1/models/\(model)")
            let schema = try XCTUnwrap(described["input_schema"] as? [String: Any], described.text)
            XCTAssertEqual(schema["task"] as? String, "segmentation")
            XCTAssertEqual(schema["input_key"] as? String, "images")
            XCTAssertEqual(schema["shape"] as? [Int], [1, 32, 32])

            let images = try Self.testImages(scenes, count: 3)
            let prediction = try await api.send(.post, "/v1/deployments/\(deployment)/predict", json: try Self.json(["inputs": ["images": images]]))
            XCTAssertEqual(prediction.status, .ok, prediction.text)
            XCTAssertEqual(prediction["object"] as? String, "prediction")
            XCTAssertEqual(prediction["task"] as? String, "segmentation")
            XCTAssertEqual((prediction["usage"] as? [String: Any])?["input_tokens"] as? Int, 3 * 1024)
            let items = try XCTUnwrap(prediction["predictions"] as? [[String: Any]])
            XCTAssertEqual(items.map { $0["input_index"] as? Int }, [0, 1, 2])
            let trained = try TrainedModel.load(from: weights)
            let expected = try trained.makeNetwork().predictMasks(Self.engineData(trained, images))
            let names = ["background"] + IDXLoader.fashionMNISTClassNames
            for (i, item) in items.enumerated() {
                let mask = try XCTUnwrap(item["mask"] as? [String: Any])
                XCTAssertEqual(mask["height"] as? Int, 32)
                XCTAssertEqual(mask["width"] as? Int, 32)
                let counts = try XCTUnwrap(mask["counts"] as? [Int]), values = try XCTUnwrap(mask["values"] as? [Int])
                let classes = try XCTUnwrap(mask["classes"] as? [String])
                XCTAssertEqual(counts.reduce(0, +), 32 * 32, "run lengths cover the mask")
                XCTAssertEqual(counts.count, values.count)
                XCTAssertTrue(counts.allSatisfy { $0 > 0 })
                XCTAssertTrue(zip(values, values.dropFirst()).allSatisfy { $0 != $1 }, "runs are maximal")
                XCTAssertEqual(classes, values.map { names[$0] })
                let decoded = zip(counts, values).flatMap { [Int32](repeating: Int32($1), count: $0) }
                XCTAssertEqual(decoded, Array(expected[(i * 1024)..<((i + 1) * 1024)]), "input \(i): the engine's mask")
            }
            // The model's predict route answers the same.
            let viaModel = try await api.send(.post, "/v1/models/\(model)/predict", json: try Self.json(["inputs": ["images": images]]))
            XCTAssertEqual((viaModel["predictions"] as? [[String: Any]])?.count, 3, viaModel.text)
            XCTAssertEqual(((viaModel["predictions"] as? [[String: Any]])?[1]["mask"] as? [String: Any])?["counts"] as? [Int],
                           (items[1]["mask"] as? [String: Any])?["counts"] as? [Int])

            // Classification and detection parameters do not apply; bad inputs stay 400s.
            let path = "/v1/deployments/\(deployment)/predict"
            for (parameters, param) in [(["top_k": 3], "parameters.top_k"), (["temperature": 2], "parameters.temperature"),
                                        (["score_threshold": 0.5], "parameters.score_threshold")] as [([String: Any], String)] {
                let refused = try await api.send(.post, path, json: try Self.json(["inputs": ["images": images], "parameters": parameters]))
                assertError(refused, .badRequest, type: "invalid_request_error", param: param)
            }
            assertError(try await api.send(.post, path, json: #"{"inputs": {"images": [[1, 2, 3]]}}"#),
                        .badRequest, type: "invalid_request_error", param: "inputs")
            assertError(try await api.send(.post, path, json: #"{"inputs": {"text": "a scene"}}"#),
                        .badRequest, type: "invalid_request_error", param: "inputs")
        }
    }

    func testDetectionModelPredictsBoxes() async throws {
        let harness = try APITestHarness(workbench: LabWorkbench(threads: 1))
        defer { harness.removeFiles() }
        try FileManager.default.createDirectory(at: harness.importDirectory, withIntermediateDirectories: true)
        let scenes = harness.importDirectory.appendingPathComponent("scenes.h5").path
        try Self.writeScenes(scenes)
        try await harness.test { api in
            let registered = try await api.send(.post, "/v1/datasets", json: #"{"path": "\#(scenes)"}"#)
            let datasetID = try XCTUnwrap(registered["id"] as? String, registered.text)
            let created = try await api.send(.post, "/v1/models",
                                             json: #"{"architecture": "\#(Self.detectionArchitecture)", "space": "detection-small"}"#)
            // Long enough for the size regression to leave zero (decoding drops empty boxes).
            let (model, deployment, weights, job) = try await Self.trainAndDeploy(
                api, harness: harness, model: created, dataset: datasetID,
                hyperparameters: #"{"epochs": 8, "batch_size": 16, "learning_rate": 0.01}"#)
            XCTAssertEqual(job["task"] as? String, "detection", job.text)
            let metrics = try XCTUnwrap(job["metrics"] as? [String: Any], job.text)
            XCTAssertNotNil(metrics["test_map50"] as? Double, job.text)
            XCTAssertTrue(metrics["train_accuracy"] is NSNull, "a detector has no training accuracy: null, not NaN: \(job.text)")

            let images = try Self.testImages(scenes, count: 4)
            let trained = try TrainedModel.load(from: weights)
            let network = try trained.makeNetwork()
            for parameters in [[String: Any](), ["score_threshold": 0.05, "max_detections": 2]] {
                let prediction = try await api.send(.post, "/v1/models/\(model)/predict",
                                                    json: try Self.json(["inputs": ["images": images], "parameters": parameters]))
                XCTAssertEqual(prediction.status, .ok, prediction.text)
                XCTAssertEqual(prediction["task"] as? String, "detection")
                let items = try XCTUnwrap(prediction["predictions"] as? [[String: Any]])
                XCTAssertEqual(items.map { $0["input_index"] as? Int }, [0, 1, 2, 3])
                var head = CenterNet()
                if let t = parameters["score_threshold"] as? Double { head.scoreThreshold = Float(t) }
                if let k = parameters["max_detections"] as? Int { head.topK = k }
                let expected = try network.predictBoxes(Self.engineData(trained, images), head: head, classCount: trained.classCount)
                var total = 0
                for (i, item) in items.enumerated() {
                    let detections = try XCTUnwrap(item["detections"] as? [[String: Any]])
                    let mine = expected.filter { $0.image == i }
                    XCTAssertEqual(detections.count, mine.count, "input \(i)")
                    for (d, b) in zip(detections, mine) {
                        XCTAssertEqual(d["class_id"] as? Int, b.classID)
                        XCTAssertEqual(d["label"] as? String, IDXLoader.fashionMNISTClassNames[b.classID])
                        XCTAssertEqual(try XCTUnwrap(d["score"] as? Double), Double(b.score), accuracy: 1e-6)
                        let box = try XCTUnwrap(d["box"] as? [Double])
                        XCTAssertEqual(box.count, 4)
                        for (got, want) in zip(box, [b.x1, b.y1, b.x2, b.y2]) { XCTAssertEqual(got, Double(want), accuracy: 1e-4) }
                    }
                    let scores = detections.compactMap { $0["score"] as? Double }
                    XCTAssertEqual(scores, scores.sorted(by: >), "best first")
                    total += detections.count
                }
                XCTAssertEqual(total, expected.count)
                if parameters.isEmpty { XCTAssertGreaterThan(total, 0, "the evaluation's low threshold keeps boxes") }
            }
            // Training again fine-tunes from the trained weights (same task, same input shape).
            let tuned = try await api.send(.post, "/v1/models/\(model)/train",
                                           json: #"{"dataset_id": "\#(datasetID)", "hyperparameters": {"epochs": 1, "batch_size": 16}}"#)
            XCTAssertEqual(tuned.status, .ok, tuned.text)
            XCTAssertEqual(tuned["initialize"] as? String, "weights", tuned.text)
            let tunedID = try XCTUnwrap(tuned["id"] as? String)
            let tunedDone = try await WorkbenchRoutesTests.poll(api, "/v1/jobs/\(tunedID)", until: ["completed", "failed"], seconds: 120)
            XCTAssertEqual(tunedDone["status"] as? String, "completed", tunedDone.text)
            assertError(try await api.send(.post, "/v1/deployments/\(deployment)/predict",
                                           json: try Self.json(["inputs": ["images": images], "parameters": ["top_k": 1]])),
                        .badRequest, type: "invalid_request_error", param: "parameters.top_k")
            assertError(try await api.send(.post, "/v1/deployments/\(deployment)/predict",
                                           json: try Self.json(["inputs": ["images": images], "parameters": ["max_detections": 0]])),
                        .badRequest, type: "invalid_request_error", param: "parameters.max_detections")
        }
    }
}
