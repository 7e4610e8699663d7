import Foundation
import Engine
import Hummingbird
import Lab
import NASCore

/// Deployments and predictions.
extension APIRoutes {
    static let instanceTypes = ["cpu", "gpu-small", "gpu-large"]
    static let maxReplicas = 16
    static let maxInputsPerRequest = 256

    /// `POST /v1/models/{model_id}/deploy`.
    func deploy(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let organization = try context.requireOrganization()
        let model = try await model(request, context)
        let body = try JSONObjectReader(try await body(request), allowed: ["replicas", "instance_type", "auto_scaling"])
        let instanceType = try body.string("instance_type", allowed: Self.instanceTypes) ?? "cpu"
        if instanceType.hasPrefix("gpu"), !settings.hasGPU {
            throw APIError.invalidRequest(
                "instance_type '\(instanceType)' needs a GPU and this server has none; use 'cpu'", param: "instance_type")
        }
        var replicas = try body.integer("replicas", in: 1...Self.maxReplicas)
        var minimum = replicas ?? 1, maximum = replicas ?? 1
        if let scaling = try body.object("auto_scaling", allowed: ["min_replicas", "max_replicas"]) {
            let lower = try scaling.integer("min_replicas", in: 1...Self.maxReplicas)
            let upper = try scaling.integer("max_replicas", in: 1...Self.maxReplicas)
            minimum = lower ?? replicas ?? 1
            maximum = upper ?? max(minimum, replicas ?? 1)
            guard minimum <= maximum else {
                throw APIError.invalidRequest("'auto_scaling.min_replicas' (\(minimum)) must not exceed 'auto_scaling.max_replicas' (\(maximum))",
                                              param: "auto_scaling.min_replicas")
            }
            if let count = replicas, !(minimum...maximum).contains(count) {
                throw APIError.invalidRequest("'replicas' (\(count)) must be between auto_scaling.min_replicas (\(minimum)) and max_replicas (\(maximum))",
                                              param: "replicas")
            }
            replicas = replicas ?? minimum
        }
        guard model.status == "trained" || model.artifactPath != nil, let artifact = model.artifactPath else {
            throw APIError.conflict("model '\(model.id)' has no trained weights (status \(model.status)); train it first")
        }
        let id = Identifier.make("dep_")
        let deployment = DeploymentRecord(
            id: id, organization: organization, modelID: model.id, status: .provisioning, replicas: replicas ?? 1,
            instanceType: instanceType, minReplicas: minimum, maxReplicas: maximum,
            endpointURL: address.baseURL + "/v1/deployments/\(id)/predict", failureReason: nil, createdAt: APIStore.now(),
            deletedAt: nil)
        try await store.insertDeployment(deployment)
        await deployments.provision(deployment, artifactPath: artifact)
        let current = try await store.deployment(id: id, organization: organization) ?? deployment
        return json(current.json(loadedReplicas: await deployments.loadedReplicas(id)))
    }

    private func deployment(_ context: APIRequestContext) async throws -> DeploymentRecord {
        let id = try context.parameters.require("deployment_id")
        guard let deployment = try await store.deployment(id: id, organization: try context.requireOrganization()) else {
            throw APIError.notFound("no deployment '\(id)'")
        }
        return deployment
    }

    func getDeployment(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let deployment = try await deployment(context)
        return json(deployment.json(loadedReplicas: await deployments.loadedReplicas(deployment.id)))
    }

    func listDeployments(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let organization = try context.requireOrganization()
        let (limit, after) = try pagination(try query(request, allowed: ["limit", "after"]))
        let page = try await paged { try await store.deployments(organization: organization, limit: limit, after: after) }
        var items = [JSONValue]()
        for item in page.items { items.append(item.json(loadedReplicas: await deployments.loadedReplicas(item.id))) }
        return json(listJSON(items, hasMore: page.hasMore))
    }

    /// `DELETE /v1/deployments/{id}`: unloads the replicas; the record stays, `status: deleted`.
    func deleteDeployment(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let deployment = try await deployment(context)
        guard deployment.status != .deleted else {
            throw APIError.conflict("deployment '\(deployment.id)' is already deleted")
        }
        await deployments.remove(deployment.id)
        let updated = try await store.updateDeployment(id: deployment.id, status: .deleted,
                                                       failureReason: deployment.failureReason) ?? deployment
        return json(updated.json(loadedReplicas: 0))
    }

    /// `POST /v1/models/{model_id}/predict`: served by the model's running deployment (409 when none).
    func predictModel(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let started = Date()
        let organization = try context.requireOrganization()
        let model = try await model(request, context)
        guard let deployment = try await store.activeDeployment(modelID: model.id, organization: organization) else {
            throw APIError.conflict("model '\(model.id)' is not deployed; deploy it with POST /v1/models/\(model.id)/deploy")
        }
        return try await predict(request, deployment: deployment, started: started)
    }

    /// `POST /v1/deployments/{deployment_id}/predict` (a deployment's `endpoint_url`).
    func predictDeployment(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let started = Date()
        return try await predict(request, deployment: try await deployment(context), started: started)
    }

    /// What a model predicted for a request's inputs.
    enum ModelOutput {
        /// Classification: the ranked classes of each input.
        case classes([[ModelPredictor.Prediction]])
        /// Segmentation: each input's H×W class ids, row-major.
        case masks([[Int32]])
        /// Detection: each input's boxes, best first.
        case boxes([[ObjectBox]])
    }

    private func predict(_ request: Request, deployment: DeploymentRecord, started: Date) async throws -> Response {
        let body = try JSONObjectReader(try await body(request), allowed: ["inputs", "parameters"])
        let parameters = try body.object("parameters", allowed: ["top_k", "temperature", "score_threshold", "max_detections"])
        let topK = try parameters?.integer("top_k", in: 1...1000)
        let temperature = try parameters?.number("temperature", in: 0...1000, openLower: true)
        let scoreThreshold = try parameters?.number("score_threshold", in: 0...1)
        let maxDetections = try parameters?.integer("max_detections", in: 1...1000)
        guard body.value("inputs") != nil else {
            throw APIError.invalidRequest("missing required field 'inputs'", param: "inputs")
        }
        switch deployment.status {
        case .running: break
        case .provisioning:
            throw APIError.conflict("deployment '\(deployment.id)' is still provisioning; retry when its status is running")
        case .failed:
            throw APIError.conflict("deployment '\(deployment.id)' failed: \(deployment.failureReason ?? "unknown reason")")
        case .deleted:
            throw APIError.conflict("deployment '\(deployment.id)' is deleted")
        }
        guard let pool = await deployments.pool(deployment.id), let schema = await pool.schema else {
            throw APIError.conflict("deployment '\(deployment.id)' is not loaded on this server")
        }
        // Parameters of another task are refused, not ignored.
        let task = schema.task
        for (name, value, applies, forWhat) in [("top_k", topK != nil, task.isClassification, "classification"),
                                                ("temperature", temperature != nil, task.isClassification, "classification"),
                                                ("score_threshold", scoreThreshold != nil, task == .detection, "detection"),
                                                ("max_detections", maxDetections != nil, task == .detection, "detection")]
            where value && !applies {
            throw APIError.invalidRequest("'parameters.\(name)' applies to \(forWhat) models; model '\(deployment.modelID)' is a \(task) model",
                                          param: "parameters.\(name)")
        }
        let inputs = try Self.readInputs(body.value("inputs")!, schema: schema)
        let replica = try await pool.acquire(limit: settings.maxPredictionsPerDeployment, timeout: settings.requestTimeoutSeconds,
                                             retryAfter: settings.retryAfterSeconds)
        let result: Result<(output: ModelOutput, tokens: Int), Error> = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: Result {
                    let predictor = replica.predictor
                    switch inputs {
                    case .values(let values):
                        let tokens = values.count * schema.valuesPerInput
                        switch task {
                        case .segmentation:
                            return (.masks(try predictor.predictMasks(values)), tokens)
                        case .detection:
                            var head = CenterNet()
                            if let scoreThreshold { head.scoreThreshold = Float(scoreThreshold) }
                            if let maxDetections { head.topK = maxDetections }
                            return (.boxes(try predictor.predictBoxes(values, head: head)), tokens)
                        case .imageClassification, .textClassification, .tabularClassification:
                            return (.classes(try predictor.predict(values, topK: topK ?? 1, temperature: temperature ?? 1)), tokens)
                        }
                    case .texts(let texts):
                        let (predictions, counts) = try predictor.predict(texts: texts, topK: topK ?? 1, temperature: temperature ?? 1)
                        return (.classes(predictions), counts.reduce(0, +))
                    }
                })
            }
        }
        await pool.release(replica)
        let output: ModelOutput
        let inputTokens: Int
        do { (output, inputTokens) = try result.get() } catch {
            throw APIError.invalidRequest("the model refused the inputs: \(error)", param: "inputs")
        }
        var items = [JSONValue]()
        switch output {
        case .classes(let predictions):
            for (index, ranked) in predictions.enumerated() {
                for prediction in ranked {
                    items.append(.object(["label": .string(prediction.label), "score": .number(prediction.score),
                                          "class_index": .number(Double(prediction.classIndex)),
                                          "input_index": .number(Double(index))]))
                }
            }
        case .masks(let masks):
            let (h, w) = (schema.shape[1], schema.shape[2])
            let predictor = replica.predictor
            for (index, mask) in masks.enumerated() {
                items.append(.object(["input_index": .number(Double(index)),
                                      "mask": Self.runLengthJSON(mask, height: h, width: w, className: predictor.className)]))
            }
        case .boxes(let boxes):
            let predictor = replica.predictor
            for (index, found) in boxes.enumerated() {
                let detections: [JSONValue] = found.map { b in
                    .object(["label": .string(predictor.className(b.classID)), "class_id": .number(Double(b.classID)),
                             "score": .number(Double(b.score)),
                             "box": .array([b.x1, b.y1, b.x2, b.y2].map { .number(Double($0)) })])
                }
                items.append(.object(["input_index": .number(Double(index)), "detections": .array(detections)]))
            }
        }
        let latency = Date().timeIntervalSince(started) * 1000
        return json(.object([
            "id": .string(Identifier.make("pred_")), "object": .string("prediction"), "model_id": .string(deployment.modelID),
            "deployment_id": .string(deployment.id), "created_at": .number(Double(APIStore.now())),
            "task": .string(task.rawValue),
            "predictions": .array(items),
            "usage": .object(["input_tokens": .number(Double(inputTokens)),
                              "inputs": .number(Double(inputs.count)),
                              "latency_ms": .number((latency * 1000).rounded() / 1000)]),
        ]))
    }

    /// Run lengths of a row-major mask: maximal runs of equal class ids, in order; `counts[i]`
    /// pixels of class id `values[i]` (the counts sum to the mask's size).
    static func runLengths(_ mask: [Int32]) -> (counts: [Int], values: [Int32]) {
        var counts = [Int](), values = [Int32]()
        for id in mask {
            if let last = values.last, last == id { counts[counts.count - 1] += 1 } else { values.append(id); counts.append(1) }
        }
        return (counts, values)
    }

    /// The API's mask object: `{height, width, counts, values, classes}` (see ``runLengths(_:)``);
    /// `classes[i]` names `values[i]`: `background` for 0, else the name of class `values[i] − 1`.
    static func runLengthJSON(_ mask: [Int32], height: Int, width: Int, className: (Int) -> String) -> JSONValue {
        let (counts, values) = runLengths(mask)
        return .object([
            "height": .number(Double(height)), "width": .number(Double(width)),
            "counts": .array(counts.map { .number(Double($0)) }),
            "values": .array(values.map { .number(Double($0)) }),
            "classes": .array(values.map { .string($0 == 0 ? "background" : className(Int($0) - 1)) }),
        ])
    }

    /// The validated inputs of a predict request.
    enum ModelInputs {
        case values([[Float]])
        case texts([String])

        var count: Int {
            switch self {
            case .values(let v): return v.count
            case .texts(let t): return t.count
            }
        }
    }

    /// Validates `inputs` against the model's schema: `{"text": "…"}` or `{"text": ["…", …]}` for
    /// text models (1–256 non-empty strings of at most `InputSchema.maximumTextCharacters`
    /// characters); `{"images": [[…]]}` or `{"features": [[…]]}` otherwise, each input a flat
    /// array of C·H·W finite numbers (a single flat array is one input).
    static func readInputs(_ value: JSONValue, schema: InputSchema) throws -> ModelInputs {
        if schema.task == .textClassification { return .texts(try readTexts(value)) }
        return .values(try readValues(value, schema: schema))
    }

    static func readTexts(_ value: JSONValue) throws -> [String] {
        let limit = InputSchema.maximumTextCharacters
        guard case .object(let fields) = value else {
            throw APIError.invalidRequest("'inputs' must be an object {\"text\": \"…\"} or {\"text\": [\"…\", …]} for this text model, not \(value.typeName)",
                                          param: "inputs")
        }
        let keys = fields.keys.sorted()
        guard keys == ["text"] else {
            throw APIError.invalidRequest("'inputs' of a text model must have exactly one field, 'text'; got \(keys.isEmpty ? "none" : keys.joined(separator: ", "))",
                                          param: "inputs")
        }
        var items: [JSONValue]
        switch fields["text"]! {
        case .string: items = [fields["text"]!]
        case .array(let list): items = list
        case let other:
            throw APIError.invalidRequest("'inputs.text' must be a string or an array of strings, not \(other.typeName)", param: "inputs.text")
        }
        guard !items.isEmpty else { throw APIError.invalidRequest("'inputs.text' is empty", param: "inputs.text") }
        guard items.count <= maxInputsPerRequest else {
            throw APIError.invalidRequest("at most \(maxInputsPerRequest) inputs per request; got \(items.count)", param: "inputs.text")
        }
        var texts = [String]()
        texts.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            guard case .string(let text) = item else {
                throw APIError.invalidRequest("'inputs.text[\(index)]' must be a string, not \(item.typeName)", param: "inputs.text")
            }
            guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw APIError.invalidRequest("'inputs.text[\(index)]' is empty", param: "inputs.text")
            }
            guard text.count <= limit else {
                throw APIError.invalidRequest("'inputs.text[\(index)]' has \(text.count) characters; at most \(limit) are accepted",
                                              param: "inputs.text")
            }
            texts.append(text)
        }
        return texts
    }

    static func readValues(_ value: JSONValue, schema: InputSchema) throws -> [[Float]] {
        let expected = schema.valuesPerInput
        let shapeText = schema.shape.map(String.init).joined(separator: "×")
        guard case .object(let fields) = value else {
            throw APIError.invalidRequest("'inputs' must be an object {\"\(schema.inputKey)\": [[…\(expected) numbers…], …]}, not \(value.typeName)",
                                          param: "inputs")
        }
        let keys = fields.keys.sorted()
        guard keys.count == 1, let key = keys.first, key == "images" || key == "features" else {
            throw APIError.invalidRequest("'inputs' must have exactly one field, 'images' or 'features'; got \(keys.isEmpty ? "none" : keys.joined(separator: ", "))",
                                          param: "inputs")
        }
        guard case .array(let list) = fields[key]! else {
            throw APIError.invalidRequest("'inputs.\(key)' must be an array of inputs, not \(fields[key]!.typeName)", param: "inputs")
        }
        var rows: [[JSONValue]]
        if let first = list.first, case .number = first {
            rows = [list]
        } else {
            rows = []
            for (index, item) in list.enumerated() {
                guard case .array(let row) = item else {
                    throw APIError.invalidRequest("'inputs.\(key)[\(index)]' must be an array of \(expected) numbers, not \(item.typeName)",
                                                  param: "inputs")
                }
                rows.append(row)
            }
        }
        guard !rows.isEmpty else { throw APIError.invalidRequest("'inputs.\(key)' is empty", param: "inputs") }
        guard rows.count <= maxInputsPerRequest else {
            throw APIError.invalidRequest("at most \(maxInputsPerRequest) inputs per request; got \(rows.count)", param: "inputs")
        }
        var result = [[Float]]()
        result.reserveCapacity(rows.count)
        for (index, row) in rows.enumerated() {
            guard row.count == expected else {
                throw APIError.invalidRequest(
                    "input \(index) has \(row.count) values; the model expects \(expected) (shape \(shapeText), flattened)",
                    param: "inputs")
            }
            var values = [Float]()
            values.reserveCapacity(expected)
            for (position, item) in row.enumerated() {
                guard case .number(let number) = item else {
                    throw APIError.invalidRequest("input \(index), value \(position) must be a number, not \(item.typeName)", param: "inputs")
                }
                let float = Float(number)
                guard float.isFinite else {
                    throw APIError.invalidRequest("input \(index), value \(position) is not a finite 32-bit float", param: "inputs")
                }
                values.append(float)
            }
            result.append(values)
        }
        return result
    }
}
