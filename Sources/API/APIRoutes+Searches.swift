import Foundation
import Hummingbird
import Lab
import NASCore

/// NAS searches: creation (validated and recorded), lookup and cancellation.
extension APIRoutes {
    /// `classification` takes the dataset's own kind; the others name it (and must match it);
    /// `segmentation` and `detection` need a dataset with masks / boxes.
    static let supportedTaskTypes = ["classification"] + TaskKind.allCases.map(\.rawValue)

    /// The labels of `dataset`: the workbench reads the file (a 400 naming `dataset_id` when it
    /// cannot); without a workbench the record's own labels (`nil`: unknown).
    func datasetLabels(_ dataset: DatasetRecord) async throws -> DatasetLabels? {
        guard let workbench = settings.workbench else { return dataset.labels }
        do {
            return try await workbench.labels(of: dataset)
        } catch {
            throw APIError.invalidRequest("dataset '\(dataset.id)' cannot be read: \(error)", param: "dataset_id")
        }
    }

    /// The 400 for a dense `task` on a dataset without its labels.
    static func missingLabels(_ task: TaskKind, dataset: DatasetRecord, labels: DatasetLabels, subject: String,
                              param: String) -> APIError {
        let kind = DatasetLabels.kind(for: task)
        let what = task == .segmentation ? "per-pixel class ids" : "object boxes"
        return APIError.invalidRequest(
            "\(subject) needs a dataset with \(kind) (\(what): /\(kind) in an HDF5 scene file, docs/datasets.md; "
                + "e.g. the built-in 'fashion-scenes'), but dataset '\(dataset.id)' has \(labels.kinds.joined(separator: ", ")) "
                + "(\(labels.inputTask.inputDescription)); its tasks: \(labels.tasks.map(\.rawValue).joined(separator: ", "))",
            param: param)
    }

    /// The task of a search request on `dataset`: the dataset's own classification task for
    /// `classification`, else the named task, checked against the dataset (a mismatch — another
    /// input kind, or no masks / boxes for segmentation / detection — is a 400 naming `task_type`).
    func resolveTask(_ taskType: String, dataset: DatasetRecord) async throws -> TaskKind {
        let requested = taskType == "classification" ? nil : TaskKind(rawValue: taskType)
        guard let labels = try await datasetLabels(dataset) else { return requested ?? .imageClassification }
        if let requested, !requested.isClassification {
            guard labels.tasks.contains(requested) else {
                throw Self.missingLabels(requested, dataset: dataset, labels: labels, subject: "task_type '\(taskType)'", param: "task_type")
            }
            return requested
        }
        let own = labels.inputTask
        if let requested, requested != own {
            throw APIError.invalidRequest(
                "task_type '\(taskType)' does not match dataset '\(dataset.id)', which holds \(own.inputDescription): use '\(own.rawValue)' or 'classification'",
                param: "task_type")
        }
        return own
    }

    func createSearch(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let organization = try context.requireOrganization()
        let body = try JSONObjectReader(try await body(request),
                                        allowed: ["task_type", "dataset_id", "constraints", "search_space", "seed", "name", "budget",
                                                  "searcher"])
        let taskType = try body.require("task_type") { try body.string($0, maxLength: 100) }
        guard Self.supportedTaskTypes.contains(taskType) else {
            throw APIError.invalidRequest(
                "'task_type' must be one of \(Self.supportedTaskTypes.joined(separator: ", ")); got '\(taskType)'", param: "task_type")
        }
        let datasetID = try body.require("dataset_id") { try body.string($0, maxLength: 200) }
        let constraintsReader = try body.require("constraints") {
            try body.object($0, allowed: ["max_latency_ms", "max_params", "max_flops"])
        }
        var constraints = ExperimentConfig(name: "api").constraints
        constraints.maxLatencyMs = try constraintsReader.number("max_latency_ms", in: 0...3_600_000, openLower: true)
        constraints.maxParams = try constraintsReader.integer("max_params", in: 1...1_000_000_000_000)
        constraints.maxFlops = try constraintsReader.number("max_flops", in: 0...1e18, openLower: true)
        guard !constraints.isEmpty else {
            throw APIError.invalidRequest("'constraints' must set at least one of max_latency_ms, max_params, max_flops",
                                          param: "constraints")
        }
        let searchSpace = try body.string("search_space", allowed: TaskKind.spaceSizes) ?? "medium"
        let seed = try body.integer("seed", in: 0...Int(Int32.max)) ?? 0
        let name = try body.string("name", maxLength: 200)
        let searcher = try body.string("searcher", allowed: ExperimentConfig.searcherKinds) ?? ExperimentConfig(name: "api").searcher.kind
        let budget = try body.object("budget", allowed: ["candidates", "epochs_per_candidate"])
        let candidates = try budget?.integer("candidates", in: 1...1000) ?? 10
        let epochsPerCandidate = try budget?.integer("epochs_per_candidate", in: 1...100) ?? 3
        let dataset = try await dataset(datasetID, organization: organization, param: "dataset_id")
        let task = try await resolveTask(taskType, dataset: dataset)
        let space = task.shippedSpace(size: searchSpace)

        let id = Identifier.make("nas_")
        var constraintsJSON: [String: JSONValue] = [:]
        constraintsJSON["max_latency_ms"] = constraints.maxLatencyMs.map(JSONValue.number)
        constraintsJSON["max_params"] = constraints.maxParams.map { JSONValue.number(Double($0)) }
        constraintsJSON["max_flops"] = constraints.maxFlops.map(JSONValue.number)
        var searchRequest = SearchRequest(
            searchID: id, task: task, dataset: dataset, constraints: constraints, searchSpace: space,
            candidates: candidates, epochsPerCandidate: epochsPerCandidate, seed: UInt64(seed),
            outputDirectory: store.dataDirectory.appendingPathComponent("results").appendingPathComponent(id))
        searchRequest.searcher = searcher
        searchRequest.latencyTable = Self.latencyTable(dataDirectory: store.dataDirectory)
        let estimate = settings.workbench?.estimateSearchHours(searchRequest)
        let record = ExperimentRecord(
            id: id, organization: organization, kind: .nasSearch,
            name: name ?? "\(taskType) search (\(searchSpace)) on \(dataset.id)", status: .pending, modelID: nil,
            datasetID: dataset.id,
            parameters: .object(["task_type": .string(taskType), "task": .string(task.rawValue), "search_space": .string(searchSpace),
                                 "space": .string(space),
                                 "constraints": .object(constraintsJSON), "seed": .number(Double(seed)),
                                 "searcher": .string(searcher), "latency_policy": .string(searchRequest.constraints.latency),
                                 "budget": .object(["candidates": .number(Double(candidates)),
                                                    "epochs_per_candidate": .number(Double(epochsPerCandidate))]),
                                 "record_path": .string(searchRequest.recordURL.path),
                                 "estimated_duration_hours": estimate.map(JSONValue.number) ?? .null]),
            metrics: .object(["architectures_evaluated": .number(0), "best_architecture": .null]),
            failureReason: nil, createdAt: APIStore.now(), startedAt: nil, finishedAt: nil)
        try await insertJob(record)
        let dispatched = try await runner.submitSearch(searchRequest, record: record)
        return json(Self.searchJSON(dispatched))
    }

    /// The request of a stored search (to resume it after a restart): the inverse of the
    /// `parameters` that `createSearch` stores.
    /// The server's latency table: `<data-dir>/latency-table.h5` (everything a server writes is in its data directory).
    static func latencyTable(dataDirectory: URL) -> URL { dataDirectory.appendingPathComponent("latency-table.h5") }

    static func searchRequest(from record: ExperimentRecord, dataset: DatasetRecord, dataDirectory: URL) throws -> SearchRequest {
        guard case .object(let p) = record.parameters, case .string(let taskName)? = p["task"], let task = TaskKind(rawValue: taskName),
              case .string(let space)? = p["space"], case .object(let c)? = p["constraints"], case .number(let seed)? = p["seed"],
              case .object(let budget)? = p["budget"], case .number(let candidates)? = budget["candidates"],
              case .number(let epochs)? = budget["epochs_per_candidate"], case .string(let recordPath)? = p["record_path"] else {
            throw LabError.invalid("search '\(record.id)' has incomplete stored parameters")
        }
        var constraints = ExperimentConfig(name: "api").constraints
        if case .number(let v)? = c["max_latency_ms"] { constraints.maxLatencyMs = v }
        if case .number(let v)? = c["max_params"] { constraints.maxParams = Int(v) }
        if case .number(let v)? = c["max_flops"] { constraints.maxFlops = v }
        var request = SearchRequest(searchID: record.id, task: task, dataset: dataset, constraints: constraints, searchSpace: space,
                                    candidates: Int(candidates), epochsPerCandidate: Int(epochs), seed: UInt64(seed),
                                    outputDirectory: URL(fileURLWithPath: recordPath).deletingLastPathComponent())
        if case .string(let searcher)? = p["searcher"] { request.searcher = searcher }
        request.latencyTable = latencyTable(dataDirectory: dataDirectory)
        return request
    }

    func getSearch(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        json(Self.searchJSON(try await search(context)))
    }

    func cancelSearch(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let search = try await search(context)
        guard let cancelled = try await runner.cancel(id: search.id) else {
            throw APIError.conflict("search '\(search.id)' has already finished (\(search.status.rawValue))")
        }
        return json(Self.searchJSON(cancelled))
    }

    private func search(_ context: APIRequestContext) async throws -> ExperimentRecord {
        let id = try context.parameters.require("search_id")
        guard let search = try await store.experiment(id: id, organization: try context.requireOrganization(), kind: .nasSearch) else {
            throw APIError.notFound("no NAS search '\(id)'")
        }
        return search
    }

    static func searchJSON(_ search: ExperimentRecord) -> JSONValue {
        var fields: [String: JSONValue] = [
            "id": .string(search.id), "object": .string("nas.search"), "name": .string(search.name),
            "status": .string(search.status.rawValue), "dataset_id": search.datasetID.map(JSONValue.string) ?? .null,
            "created_at": .number(Double(search.createdAt)),
            "failure_reason": search.failureReason.map(JSONValue.string) ?? .null,
            "architectures_evaluated": .number(0), "best_architecture": .null,
        ]
        if case .object(let parameters) = search.parameters {
            for (key, value) in parameters { fields[key] = value }
        }
        if case .object(let metrics) = search.metrics {
            for (key, value) in metrics { fields[key] = value }
        }
        fields.merge(search.executionJSON) { $1 }
        return .object(fields)
    }
}
