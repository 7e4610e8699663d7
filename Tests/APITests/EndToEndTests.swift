import Foundation
import XCTest
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `naslab serve` as a child process over real HTTP on loopback, driven like a client would:
/// key → NAS search → model from its best architecture → training → deployment → prediction →
/// experiments list with pagination.
final class EndToEndTests: XCTestCase {
    struct Server {
        let process: Process
        let baseURL: String
        let key: String
    }

    static var naslab: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("naslab")
    }

    static func naslabExecutable() throws -> URL {
        // `swift test` runs the bundle through xctest; the products directory holds naslab.
        let candidates = [naslab,
                          Bundle(for: EndToEndTests.self).bundleURL.deletingLastPathComponent().appendingPathComponent("naslab")]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw XCTSkip("naslab executable not found next to the test bundle (\(candidates.map(\.path)))")
        }
        return found
    }

    static func run(_ executable: URL, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "naslab \(arguments.joined(separator: " "))")
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Starts `naslab serve --port 0` and reads the bound port from its first line.
    /// Starts `naslab serve` on a free loopback port with a new key of organisation `e2e`.
    /// - Parameters:
    ///   - arguments: More `serve` options.
    ///   - log: Where the server's standard error (its log) goes; default: discarded.
    ///   - environment: The server's environment (default: the test's).
    /// Local servers get `--threads 1`; `--executor slurm` servers train on the cluster's CPUs.
    static func startServer(dataDirectory: URL, arguments: [String] = [], log: URL? = nil,
                            environment: [String: String]? = nil) throws -> Server {
        let executable = try naslabExecutable()
        let key = try run(executable, ["keys", "create", "--org", "e2e", "--data-dir", dataDirectory.path])
        XCTAssertTrue(key.hasPrefix("nsk_"), key)
        let process = Process()
        process.executableURL = executable
        let threads = arguments.contains("--executor") ? [] : ["--threads", "1"]
        process.arguments = ["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDirectory.path] + threads + arguments
        if let environment { process.environment = environment }
        let output = Pipe()
        process.standardOutput = output
        if let log {
            FileManager.default.createFile(atPath: log.path, contents: nil)
            process.standardError = try FileHandle(forWritingTo: log)
        } else {
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        while !text.contains("\n"), Date() < deadline, process.isRunning {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { Thread.sleep(forTimeInterval: 0.05) } else { text += String(decoding: chunk, as: UTF8.self) }
        }
        guard let range = text.range(of: #"http://127\.0\.0\.1:\d+"#, options: .regularExpression) else {
            process.terminate()
            throw XCTSkip("naslab serve did not report its address: '\(text)'")
        }
        return Server(process: process, baseURL: String(text[range]), key: key)
    }

    struct Reply {
        var status: Int
        var object: [String: Any]
        var text: String
        /// Response headers, by lower-cased name.
        var headers: [String: String] = [:]
        subscript(key: String) -> Any? { object[key] }
    }

    static func request(_ server: Server, _ method: String, _ path: String, json: Any? = nil) async throws -> Reply {
        var request = URLRequest(url: URL(string: server.baseURL + path)!, timeoutInterval: 30)
        request.httpMethod = method
        request.setValue("Bearer \(server.key)", forHTTPHeaderField: "Authorization")
        if let json {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: json)
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let text = String(decoding: data, as: UTF8.self)
        var headers = [String: String]()
        for (name, value) in (response as? HTTPURLResponse)?.allHeaderFields ?? [:] {
            headers[String(describing: name).lowercased()] = String(describing: value)
        }
        return Reply(status: (response as? HTTPURLResponse)?.statusCode ?? 0,
                     object: (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:], text: text, headers: headers)
    }

    static func poll(_ server: Server, _ path: String, until values: Set<String>, seconds: Double = 80) async throws -> Reply {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let reply = try await request(server, "GET", path)
            if let status = reply["status"] as? String, values.contains(status) { return reply }
            if Date() > deadline {
                XCTFail("\(path) never reached \(values): \(reply.text)")
                return reply
            }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
    }

    func testSearchTrainDeployPredictOverHTTP() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("naslab-e2e-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try Self.startServer(dataDirectory: directory)
        var stopped = false
        defer {
            if !stopped {
                server.process.terminate()
                server.process.waitUntilExit()
            }
        }

        let unauthorised = try await Self.request(Server(process: server.process, baseURL: server.baseURL, key: "nsk_wrong"),
                                                  "GET", "/v1/experiments")
        XCTAssertEqual(unauthorised.status, 401)
        let digits = try await Self.request(server, "GET", "/v1/datasets/digits")
        XCTAssertEqual(digits["id"] as? String, "digits", digits.text)

        let search = try await Self.request(server, "POST", "/v1/nas/searches", json: [
            "task_type": "image_classification", "dataset_id": "digits", "search_space": "small",
            "constraints": ["max_params": 30000], "budget": ["candidates": 2, "epochs_per_candidate": 1], "seed": 1,
        ])
        XCTAssertEqual(search.status, 200, search.text)
        XCTAssertEqual(search["object"] as? String, "nas.search")
        XCTAssertEqual(search["status"] as? String, "running")
        let searchID = try XCTUnwrap(search["id"] as? String)
        let searched = try await Self.poll(server, "/v1/nas/searches/\(searchID)", until: ["completed", "failed"])
        XCTAssertEqual(searched["status"] as? String, "completed", searched.text)
        XCTAssertEqual(searched["architectures_evaluated"] as? Int, 2)
        let best = try XCTUnwrap(searched["best_architecture"] as? String)

        let model = try await Self.request(server, "POST", "/v1/models", json: ["from_search": searchID])
        XCTAssertEqual(model.status, 200, model.text)
        XCTAssertEqual(model["architecture"] as? String, best)
        let modelID = try XCTUnwrap(model["id"] as? String)
        let early = try await Self.request(server, "POST", "/v1/models/\(modelID)/predict", json: ["inputs": ["images": [[0]]]])
        XCTAssertEqual(early.status, 409, early.text)

        let job = try await Self.request(server, "POST", "/v1/models/\(modelID)/train",
                                         json: ["dataset_id": "digits", "hyperparameters": ["epochs": 2]])
        XCTAssertEqual(job["object"] as? String, "training.job", job.text)
        let jobID = try XCTUnwrap(job["id"] as? String)
        XCTAssertTrue(jobID.hasPrefix("job_train_"))
        let trained = try await Self.poll(server, "/v1/jobs/\(jobID)", until: ["completed", "failed"])
        XCTAssertEqual(trained["status"] as? String, "completed", trained.text)

        let deployment = try await Self.request(server, "POST", "/v1/models/\(modelID)/deploy", json: ["replicas": 2])
        XCTAssertEqual(deployment.status, 200, deployment.text)
        let deploymentID = try XCTUnwrap(deployment["id"] as? String)
        XCTAssertEqual(deployment["endpoint_url"] as? String, "\(server.baseURL)/v1/deployments/\(deploymentID)/predict")
        let running = try await Self.poll(server, "/v1/deployments/\(deploymentID)", until: ["running", "failed"])
        XCTAssertEqual(running["status"] as? String, "running", running.text)

        let image = (0..<64).map { Double($0 % 17) }
        let prediction = try await Self.request(server, "POST", "/v1/models/\(modelID)/predict",
                                                json: ["inputs": ["images": [image]], "parameters": ["top_k": 2]])
        XCTAssertEqual(prediction.status, 200, prediction.text)
        let items = try XCTUnwrap(prediction["predictions"] as? [[String: Any]])
        XCTAssertEqual(items.count, 2)
        let scores = items.compactMap { $0["score"] as? Double }
        XCTAssertEqual(scores.count, 2)
        XCTAssertGreaterThanOrEqual(scores[0], scores[1])
        XCTAssertTrue(scores.allSatisfy { $0 > 0 && $0 <= 1 })
        XCTAssertTrue(items.allSatisfy { (0..<10).map(String.init).contains($0["label"] as? String ?? "") })
        XCTAssertEqual((prediction["usage"] as? [String: Any])?["input_tokens"] as? Int, 64)
        // The endpoint URL serves the same body.
        let endpoint = try XCTUnwrap(running["endpoint_url"] as? String)
        let viaEndpoint = try await Self.request(server, "POST", String(endpoint.dropFirst(server.baseURL.count)),
                                                 json: ["inputs": ["images": [image]], "parameters": ["top_k": 2]])
        XCTAssertEqual((viaEndpoint["predictions"] as? [[String: Any]])?.compactMap { $0["score"] as? Double }, scores)
        let bad = try await Self.request(server, "POST", "/v1/models/\(modelID)/predict", json: ["inputs": ["images": [[1, 2]]]])
        XCTAssertEqual(bad.status, 400, bad.text)

        // Experiments: the training job (newest) then the search, one page at a time.
        let first = try await Self.request(server, "GET", "/v1/experiments?limit=1")
        let firstData = try XCTUnwrap(first["data"] as? [[String: Any]])
        XCTAssertEqual(firstData.first?["id"] as? String, jobID)
        XCTAssertEqual(first["has_more"] as? Bool, true)
        let second = try await Self.request(server, "GET", "/v1/experiments?limit=1&after=\(jobID)")
        let secondData = try XCTUnwrap(second["data"] as? [[String: Any]])
        XCTAssertEqual(secondData.first?["id"] as? String, searchID)
        XCTAssertEqual(secondData.first?["type"] as? String, "nas_search")
        XCTAssertEqual(second["has_more"] as? Bool, false)
        let completed = try await Self.request(server, "GET", "/v1/experiments?status=completed")
        XCTAssertEqual((completed["data"] as? [[String: Any]])?.count, 2)

        // A restart (SIGTERM, graceful) loads the deployment again; it answers the same.
        server.process.terminate()
        server.process.waitUntilExit()
        stopped = true
        XCTAssertEqual(server.process.terminationReason, .exit, "naslab serve should stop gracefully on SIGTERM")
        let restarted = try Self.startServer(dataDirectory: directory)
        defer {
            restarted.process.terminate()
            restarted.process.waitUntilExit()
        }
        let reloaded = try await Self.poll(restarted, "/v1/deployments/\(deploymentID)", until: ["running", "failed"])
        XCTAssertEqual(reloaded["status"] as? String, "running", reloaded.text)
        let again = try await Self.request(restarted, "POST", "/v1/models/\(modelID)/predict",
                                           json: ["inputs": ["images": [image]], "parameters": ["top_k": 2]])
        XCTAssertEqual((again["predictions"] as? [[String: Any]])?.compactMap { $0["score"] as? Double }, scores, again.text)
    }

    /// `--threads 2 --max-concurrent-jobs 2`: two searches run at once, each in its own compute
    /// context of one thread, and each gives the result it gives alone (same seed ⇒ same candidates).
    func testServerRunsJobsConcurrentlyEachInItsOwnComputeContext() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("naslab-e2e-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try Self.startServer(dataDirectory: directory, arguments: ["--threads", "2", "--max-concurrent-jobs", "2"])
        defer {
            server.process.terminate()
            server.process.waitUntilExit()
        }
        var ids = [String]()
        for _ in 0..<2 {
            let search = try await Self.request(server, "POST", "/v1/nas/searches", json: [
                "task_type": "image_classification", "dataset_id": "digits", "search_space": "small",
                "constraints": ["max_params": 30000], "budget": ["candidates": 3, "epochs_per_candidate": 1], "seed": 4,
            ])
            XCTAssertEqual(search.status, 200, search.text)
            XCTAssertEqual(search["status"] as? String, "running", "two slots: the second search starts at once too")
            ids.append(try XCTUnwrap(search["id"] as? String))
        }
        // A third job waits for a slot.
        let third = try await Self.request(server, "POST", "/v1/nas/searches", json: [
            "task_type": "image_classification", "dataset_id": "digits", "search_space": "small",
            "constraints": ["max_params": 30000], "budget": ["candidates": 1, "epochs_per_candidate": 1], "seed": 5,
        ])
        XCTAssertEqual(third["status"] as? String, "pending", third.text)
        var done = [Reply]()
        for id in ids {
            done.append(try await Self.poll(server, "/v1/nas/searches/\(id)", until: ["completed", "failed"], seconds: 180))
        }
        for reply in done {
            XCTAssertEqual(reply["status"] as? String, "completed", reply.text)
            XCTAssertEqual(reply["architectures_evaluated"] as? Int, 3)
        }
        XCTAssertEqual(done[0]["best_architecture"] as? String, done[1]["best_architecture"] as? String)
        XCTAssertNotNil(done[0]["best_validation_accuracy"] as? Double, done[0].text)
        XCTAssertEqual(done[0]["best_validation_accuracy"] as? Double, done[1]["best_validation_accuracy"] as? Double,
                       "same seed and thread count, run side by side ⇒ same result")
        let last = try await Self.poll(server, "/v1/nas/searches/\(try XCTUnwrap(third["id"] as? String))",
                                       until: ["completed", "failed"], seconds: 120)
        XCTAssertEqual(last["status"] as? String, "completed", last.text)
    }
}
