import Datasets
import Foundation
import XCTest
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The API document's own text example, end to end over HTTP against `naslab serve`: upload a
/// text CSV → NAS search in the text space → model from its best architecture → training →
/// deployment → the documented predict request, verbatim → fine-tuning from the trained weights.
final class TextEndToEndTests: XCTestCase {
    typealias E2E = EndToEndTests

    /// A small sentiment CSV: the two classes use different words (with quoting and commas).
    static func reviewsCSV() -> String {
        let good = ["great", "love", "excellent", "wonderful", "perfect", "happy", "fantastic", "recommend"]
        let bad = ["terrible", "awful", "hate", "broken", "refund", "disappointed", "worst", "useless"]
        var lines = ["text,label"]
        for i in 0..<30 {
            lines.append("\"The product is \(good[i % 8]), really \(good[(i + 3) % 8]), I \(good[(i + 5) % 8]) it\",positive")
            lines.append("\"\(bad[i % 8]) purchase, \(bad[(i + 2) % 8]) and \(bad[(i + 5) % 8])\",negative")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func upload(_ server: E2E.Server, filename: String, body: String) async throws -> E2E.Reply {
        var request = URLRequest(url: URL(string: server.baseURL + "/v1/datasets?filename=\(filename)")!, timeoutInterval: 30)
        request.httpMethod = "POST"
        request.setValue("Bearer \(server.key)", forHTTPHeaderField: "Authorization")
        request.setValue("application/octet-stream", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(body.utf8)
        let (data, response) = try await URLSession.shared.data(for: request)
        return E2E.Reply(status: (response as? HTTPURLResponse)?.statusCode ?? 0,
                         object: (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:],
                         text: String(decoding: data, as: UTF8.self))
    }

    func testTheDocumentedTextPredictionWorksOnASearchedAndTrainedModel() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("naslab-text-e2e-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try E2E.startServer(dataDirectory: directory)
        defer {
            server.process.terminate()
            server.process.waitUntilExit()
        }

        // A broken CSV is refused at upload, with its line and column.
        let broken = try await Self.upload(server, filename: "broken.csv", body: "text,label\n\"unterminated,positive\n")
        XCTAssertEqual(broken.status, 400, broken.text)
        XCTAssertTrue(broken.text.contains("broken.csv:2:"), broken.text)

        let uploaded = try await Self.upload(server, filename: "reviews.csv", body: Self.reviewsCSV())
        XCTAssertEqual(uploaded.status, 200, uploaded.text)
        let datasetID = try XCTUnwrap(uploaded["id"] as? String)

        // A task type that does not match the data is a 400 naming task_type.
        let mismatch = try await E2E.request(server, "POST", "/v1/nas/searches", json: [
            "task_type": "image_classification", "dataset_id": datasetID, "constraints": ["max_params": 1_000_000],
        ])
        XCTAssertEqual(mismatch.status, 400, mismatch.text)
        XCTAssertEqual((mismatch["error"] as? [String: Any])?["param"] as? String, "task_type", mismatch.text)

        // "classification" takes the dataset's own kind: a search in text-small.
        let search = try await E2E.request(server, "POST", "/v1/nas/searches", json: [
            "task_type": "classification", "dataset_id": datasetID, "search_space": "small",
            "constraints": ["max_params": 2_000_000], "budget": ["candidates": 2, "epochs_per_candidate": 2], "seed": 3,
        ])
        XCTAssertEqual(search.status, 200, search.text)
        XCTAssertEqual(search["task"] as? String, "text_classification", search.text)
        XCTAssertEqual(search["space"] as? String, "text-small", search.text)
        let searchID = try XCTUnwrap(search["id"] as? String)
        let searched = try await E2E.poll(server, "/v1/nas/searches/\(searchID)", until: ["completed", "failed"], seconds: 300)
        XCTAssertEqual(searched["status"] as? String, "completed", searched.text)

        let model = try await E2E.request(server, "POST", "/v1/models", json: ["from_search": searchID])
        XCTAssertEqual(model.status, 200, model.text)
        XCTAssertEqual(model["space"] as? String, "text-small", model.text)
        let modelID = try XCTUnwrap(model["id"] as? String)

        let job = try await E2E.request(server, "POST", "/v1/models/\(modelID)/train",
                                        json: ["dataset_id": datasetID, "hyperparameters": ["epochs": 8, "batch_size": 8]])
        XCTAssertEqual(job.status, 200, job.text)
        XCTAssertEqual(job["initialize"] as? String, "scratch", job.text)
        // Text defaults: AdamW.
        XCTAssertEqual((job["hyperparameters"] as? [String: Any])?["optimizer"] as? String, "adamw", job.text)
        let jobID = try XCTUnwrap(job["id"] as? String)
        let trained = try await E2E.poll(server, "/v1/jobs/\(jobID)", until: ["completed", "failed"], seconds: 300)
        XCTAssertEqual(trained["status"] as? String, "completed", trained.text)

        let described = try await E2E.request(server, "GET", "/v1/models/\(modelID)")
        let schema = try XCTUnwrap(described["input_schema"] as? [String: Any], described.text)
        XCTAssertEqual(schema["input_key"] as? String, "text")
        XCTAssertEqual(Set(schema["classes"] as? [String] ?? []), ["negative", "positive"])

        let deployment = try await E2E.request(server, "POST", "/v1/models/\(modelID)/deploy", json: ["replicas": 1])
        XCTAssertEqual(deployment.status, 200, deployment.text)
        let deploymentID = try XCTUnwrap(deployment["id"] as? String)
        let running = try await E2E.poll(server, "/v1/deployments/\(deploymentID)", until: ["running", "failed"])
        XCTAssertEqual(running["status"] as? String, "running", running.text)

        // The API document's example, verbatim.
        let example = "Classify this customer review sentiment."
        let prediction = try await E2E.request(server, "POST", "/v1/deployments/\(deploymentID)/predict",
                                               json: ["inputs": ["text": example]])
        XCTAssertEqual(prediction.status, 200, prediction.text)
        let items = try XCTUnwrap(prediction["predictions"] as? [[String: Any]], prediction.text)
        XCTAssertEqual(items.count, 1)
        XCTAssertTrue(["positive", "negative"].contains(items[0]["label"] as? String ?? ""), prediction.text)
        let score = try XCTUnwrap(items[0]["score"] as? Double)
        XCTAssertTrue(score >= 0.5 && score <= 1, "top-1 of 2 classes: \(score)")
        // usage.input_tokens is what the model's tokenizer produced: classify, this, customer, review, sentiment, "."
        XCTAssertEqual(Tokenizer.tokenize(example).count, 6)
        XCTAssertEqual((prediction["usage"] as? [String: Any])?["input_tokens"] as? Int, 6, prediction.text)

        // A list of texts: one ranked list per input; the trained model separates the classes.
        let texts = ["The product is great, really excellent, I love it", "awful purchase, broken and useless"]
        let batch = try await E2E.request(server, "POST", "/v1/models/\(modelID)/predict",
                                          json: ["inputs": ["text": texts], "parameters": ["top_k": 5]])
        XCTAssertEqual(batch.status, 200, batch.text)
        let ranked = try XCTUnwrap(batch["predictions"] as? [[String: Any]])
        XCTAssertEqual(ranked.count, 4, "top_k above the class count gives every class")
        let top = Dictionary(grouping: ranked, by: { $0["input_index"] as? Int ?? -1 }).mapValues { $0[0]["label"] as? String }
        XCTAssertEqual(top[0], "positive", batch.text)
        XCTAssertEqual(top[1], "negative", batch.text)
        XCTAssertEqual((batch["usage"] as? [String: Any])?["input_tokens"] as? Int,
                       texts.map { Tokenizer.tokenize($0).count }.reduce(0, +))

        // Bad text inputs: clear 400s with param.
        for bad: Any in [["text": ""], ["text": [1]], ["text": []], ["images": [[1]]],
                         ["text": String(repeating: "a", count: 10_001)]] {
            let reply = try await E2E.request(server, "POST", "/v1/models/\(modelID)/predict", json: ["inputs": bad])
            XCTAssertEqual(reply.status, 400, reply.text)
            XCTAssertTrue(((reply["error"] as? [String: Any])?["param"] as? String ?? "").hasPrefix("inputs"), reply.text)
        }

        // Fine-tuning: a second training job starts from the first job's weights.
        let tuned = try await E2E.request(server, "POST", "/v1/models/\(modelID)/train",
                                          json: ["dataset_id": datasetID, "hyperparameters": ["epochs": 1, "batch_size": 8]])
        XCTAssertEqual(tuned.status, 200, tuned.text)
        XCTAssertEqual(tuned["initialize"] as? String, "weights", tuned.text)
        XCTAssertEqual(tuned["initialized_from"] as? String, jobID, tuned.text)
        let tunedID = try XCTUnwrap(tuned["id"] as? String)
        let tunedDone = try await E2E.poll(server, "/v1/jobs/\(tunedID)", until: ["completed", "failed"], seconds: 300)
        XCTAssertEqual(tunedDone["status"] as? String, "completed", tunedDone.text)
        // An image dataset does not fit a text model: 400 naming dataset_id.
        let wrong = try await E2E.request(server, "POST", "/v1/models/\(modelID)/train", json: ["dataset_id": "digits"])
        XCTAssertEqual(wrong.status, 400, wrong.text)
        XCTAssertEqual((wrong["error"] as? [String: Any])?["param"] as? String, "dataset_id", wrong.text)
    }
}
