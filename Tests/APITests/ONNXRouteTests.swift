import API
import Foundation
import Hummingbird
import HummingbirdTesting
import Lab
import TestSupport
import XCTest

/// `GET /v1/models/{model_id}/onnx`: a model trained through the API, exported, checked by onnx's
/// checker and run by onnxruntime (its softmax equals the deployed predictor's scores).
final class ONNXRouteTests: XCTestCase {
    /// A python3 with onnx and onnxruntime (skips unless `NASLAB_REQUIRE_ONNX=1`, see Tests/ONNXTests).
    func pythonWithONNXRuntime() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        var candidates = [environment["NASLAB_PYTHON"] ?? ""].filter { !$0.isEmpty }
        candidates += (environment["PATH"] ?? "").split(separator: ":").map { "\($0)/python3" } + ["/usr/bin/python3"]
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            if let result = try? runTool(candidate, ["-c", "import numpy, onnx, onnxruntime"]), result.status == 0 { return candidate }
        }
        let message = "no python3 with onnx and onnxruntime; install them with `pip install onnx onnxruntime`"
        if environment["NASLAB_REQUIRE_ONNX"] == "1" { XCTFail(message) }
        throw XCTSkip(message)
    }

    /// The raw body of a GET (the harness's `send` decodes bodies as text).
    static func download(_ api: APIClient, _ path: String) async throws -> (status: HTTPResponse.Status, headers: HTTPFields, body: Data) {
        var headers = HTTPFields()
        headers[.authorization] = "Bearer \(api.acmeKey)"
        return try await api.client.execute(uri: path, method: .get, headers: headers, body: nil) { response in
            (response.status, response.headers, Data(response.body.readableBytesView))
        }
    }

    func testExportTrainedModelAsONNX() async throws {
        let python = try pythonWithONNXRuntime()
        let harness = try APITestHarness(workbench: LabWorkbench(threads: 1))
        defer { harness.removeFiles() }
        let directory = harness.dataDirectory
        try await harness.test { api in
            let created = try await api.send(.post, "/v1/models", json: #"{"architecture": "\#(WorkbenchRoutesTests.architecture)", "space": "small"}"#)
            XCTAssertEqual(created.status, .ok, created.text)
            let model = try XCTUnwrap(created["id"] as? String)

            // No weights yet: 409; unknown or other organisation's model: 404; bad query: 400.
            assertError(try await api.send(.get, "/v1/models/\(model)/onnx"), .conflict, type: "conflict_error")
            assertError(try await api.send(.get, "/v1/models/model_nope/onnx"), .notFound, type: "not_found_error")
            assertError(try await api.send(.get, "/v1/models/\(model)/onnx", as: .globex), .notFound, type: "not_found_error")
            assertError(try await api.send(.get, "/v1/models/\(model)/onnx?opset=9"), .badRequest, type: "invalid_request_error",
                        param: "opset")
            assertError(try await api.send(.get, "/v1/models/\(model)/onnx?format=tf"), .badRequest, type: "invalid_request_error",
                        param: "format")

            let job = try await api.send(.post, "/v1/models/\(model)/train",
                                         json: #"{"dataset_id": "digits", "hyperparameters": {"epochs": 1, "batch_size": 32}, "seed": 5}"#)
            XCTAssertEqual(job.status, .ok, job.text)
            let jobID = try XCTUnwrap(job["id"] as? String)
            let done = try await WorkbenchRoutesTests.poll(api, "/v1/jobs/\(jobID)", until: ["completed", "failed"])
            XCTAssertEqual(done["status"] as? String, "completed", done.text)

            let (status, headers, body) = try await Self.download(api, "/v1/models/\(model)/onnx")
            XCTAssertEqual(status, .ok, String(decoding: body, as: UTF8.self))
            XCTAssertEqual(headers[.contentType], "application/octet-stream")
            XCTAssertEqual(headers[.contentDisposition], "attachment; filename=\"\(model).onnx\"")
            let older = try await Self.download(api, "/v1/models/\(model)/onnx?opset=13")
            XCTAssertEqual(older.status, .ok)
            XCTAssertNotEqual(older.body, body)

            // onnxruntime on raw digits-scale images: softmax(logits) equals the predictor's scores.
            let weights = directory.appendingPathComponent("models/\(model)/\(jobID).h5").path
            let images = [WorkbenchRoutesTests.image(1), WorkbenchRoutesTests.image(2), WorkbenchRoutesTests.image(3)]
            let predictions = try ModelPredictor(model: TrainedModel.load(from: weights)).predict(images.map { $0.map(Float.init) }, topK: 10)
            let scores = predictions.map { p in (0..<10).map { c in p.first { $0.classIndex == c }!.score } }
            let file = temporaryPath("api-\(model).onnx"), file13 = temporaryPath("api-\(model)-13.onnx")
            try body.write(to: URL(fileURLWithPath: file))
            try older.body.write(to: URL(fileURLWithPath: file13))
            let input = try String(decoding: JSONSerialization.data(withJSONObject: ["images": images, "scores": scores]), as: UTF8.self)
            let script = """
            import json, sys
            import numpy as np, onnx, onnxruntime as ort
            data = json.loads(sys.argv[1])
            x = np.array(data["images"], dtype=np.float32).reshape(-1, 1, 8, 8)
            for path in sys.argv[2:]:
                onnx.checker.check_model(onnx.load(path), full_check=True)
                logits = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(["logits"], {"input": x})[0]
                e = np.exp(logits.astype(np.float64) - logits.max(axis=1, keepdims=True))
                p = e / e.sum(axis=1, keepdims=True)
                print(float(np.max(np.abs(p - np.array(data["scores"])))))
            """
            let result = try runTool(python, ["-c", script, input, file, file13])
            XCTAssertEqual(result.status, 0, result.output)
            let differences = result.output.split(separator: "\n").compactMap { Double($0) }
            XCTAssertEqual(differences.count, 2, result.output)
            for d in differences { XCTAssertLessThanOrEqual(d, 1e-5, result.output) }
        }
    }
}
