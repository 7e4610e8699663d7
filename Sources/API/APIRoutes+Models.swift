import Foundation
import Hummingbird
import Lab
import NASCore

/// Models, training jobs and their cancellation.
extension APIRoutes {
    func createModel(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let organization = try context.requireOrganization()
        let body = try JSONObjectReader(try await body(request), allowed: ["name", "architecture", "space", "from_search"])
        let name = try body.string("name", maxLength: 200)
        var architecture: String
        let space: String
        let sourceSearch = try body.string("from_search", maxLength: 200)
        if let sourceSearch {
            for field in ["architecture", "space"] where body.value(field) != nil {
                throw APIError.invalidRequest("give either 'from_search' or 'architecture' and 'space', not both", param: field)
            }
            guard let search = try await store.experiment(id: sourceSearch, organization: organization, kind: .nasSearch) else {
                throw APIError.notFound("no NAS search '\(sourceSearch)'", param: "from_search")
            }
            guard case .object(let metrics) = search.metrics, case .string(let best)? = metrics["best_architecture"],
                  case .object(let parameters) = search.parameters, case .string(let searchSpace)? = parameters["search_space"] else {
                throw APIError.conflict("NAS search '\(search.id)' has no best architecture yet (status \(search.status.rawValue))",
                                        param: "from_search")
            }
            architecture = best
            // `space` is the shipped space the search ran in (searches before tasks stored only the size).
            if case .string(let shipped)? = parameters["space"] { space = shipped } else { space = searchSpace }
        } else {
            architecture = try body.require("architecture") { try body.string($0, maxLength: 65_536) }
            space = try body.require("space") { try body.string($0, maxLength: 200) }
        }
        var checked = false
        if let workbench = settings.workbench {
            do {
                architecture = try workbench.checkArchitecture(architecture, space: space)
                checked = true
            } catch {
                throw APIError.invalidRequest("invalid architecture: \(error)", param: "architecture")
            }
        }
        let id = Identifier.make("model_")
        let model = ModelRecord(id: id, organization: organization, name: name ?? id, architecture: architecture,
                                space: space, architectureChecked: checked, status: "created", artifactPath: nil,
                                createdAt: APIStore.now(), sourceSearchID: sourceSearch)
        try await store.insertModel(model)
        return json(model.json)
    }

    func listModels(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let organization = try context.requireOrganization()
        let (limit, after) = try pagination(try query(request, allowed: ["limit", "after"]))
        let page = try await paged { try await store.models(organization: organization, limit: limit, after: after) }
        return json(listJSON(page.items.map(\.json), hasMore: page.hasMore))
    }

    func getModel(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        json(try await model(request, context).json)
    }

    /// `POST /v1/models/{model_id}/train`: validates, stores a `pending` job and hands it to the runner.
    func train(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let organization = try context.requireOrganization()
        let model = try await model(request, context)
        let body = try JSONObjectReader(try await body(request),
                                        allowed: ["dataset_id", "hyperparameters", "validation_split", "seed", "initialize"])
        let datasetID = try body.require("dataset_id") { try body.string($0, maxLength: 200) }
        let hyperparameters = try body.object("hyperparameters", allowed: Self.hyperparameterNames)
        let validationSplit = try body.number("validation_split", in: 0...0.5, openLower: true) ?? 0.1
        let seed = try body.integer("seed", in: 0...Int(Int32.max)) ?? 0
        // Fine-tuning is the default for a model that has weights; "scratch" opts out.
        let initialize = try body.string("initialize", allowed: ["weights", "scratch"]) ?? "weights"
        let dataset = try await dataset(datasetID, organization: organization, param: "dataset_id")
        let busy = try await store.hasActiveTraining(modelID: model.id)
        if model.status == "training" || busy {
            throw APIError.conflict("model '\(model.id)' already has a training job pending or running")
        }
        // The model's task comes from its space; a segmentation / detection model needs a dataset
        // with masks / boxes, a classification model one of its input kind.
        let spaceTask = settings.workbench.flatMap { try? $0.task(ofSpace: model.space) }
        let task: TaskKind
        if let spaceTask, !spaceTask.isClassification {
            if let labels = try await datasetLabels(dataset), !labels.tasks.contains(spaceTask) {
                throw Self.missingLabels(spaceTask, dataset: dataset, labels: labels,
                                         subject: "model '\(model.id)' is a \(spaceTask) model (space '\(model.space)'): it", param: "dataset_id")
            }
            task = spaceTask
        } else {
            task = try await resolveTask("classification", dataset: dataset)
            if let spaceTask, spaceTask != task {
                throw APIError.invalidRequest("model '\(model.id)' is a \(spaceTask) model (space '\(model.space)'), but dataset '\(dataset.id)' holds \(task.inputDescription)",
                                              param: "dataset_id")
            }
        }
        let training = try Self.trainingSettings(hyperparameters, defaults: task.defaultTraining)
        var initialArtifact: String?
        var initializedFrom: String?
        if initialize == "weights", let artifact = model.artifactPath {
            if let workbench = settings.workbench {
                do {
                    try await workbench.checkFineTuning(artifactPath: artifact, dataset: dataset)
                } catch {
                    throw APIError.invalidRequest("cannot fine-tune model '\(model.id)' on dataset '\(dataset.id)': \(error); "
                                                  + "train another model or pass \"initialize\": \"scratch\"", param: "dataset_id")
                }
            }
            initialArtifact = artifact
            // Weights files are named after the job that wrote them.
            initializedFrom = URL(fileURLWithPath: artifact).deletingPathExtension().lastPathComponent
        }

        let record = ExperimentRecord(
            id: Identifier.make("job_train_"), organization: organization, kind: .training,
            name: "train \(model.name) on \(dataset.id)", status: .pending, modelID: model.id, datasetID: dataset.id,
            parameters: .object(["hyperparameters": Self.json(training), "validation_split": .number(validationSplit),
                                 "seed": .number(Double(seed)), "task": .string(task.rawValue),
                                 "initialize": .string(initialArtifact == nil ? "scratch" : "weights"),
                                 "initialized_from": initializedFrom.map(JSONValue.string) ?? .null]),
            metrics: .object([:]), failureReason: nil, createdAt: APIStore.now(), startedAt: nil, finishedAt: nil)
        try await insertJob(record)
        let trainingRequest = try Self.trainingRequest(from: record, model: model, dataset: dataset,
                                                       dataDirectory: store.dataDirectory)
        let dispatched = try await runner.submitTraining(trainingRequest, record: record)
        return json(Self.trainingJobJSON(dispatched))
    }

    /// The request of a stored training job (at creation, and to resume it after a restart).
    /// Weights files are named after the job that wrote them, so `initialized_from` names the file
    /// a fine-tuning job starts from.
    static func trainingRequest(from record: ExperimentRecord, model: ModelRecord, dataset: DatasetRecord,
                                dataDirectory: URL) throws -> TrainingRequest {
        guard case .object(let p) = record.parameters, case .object? = p["hyperparameters"],
              case .number(let split)? = p["validation_split"], case .number(let seed)? = p["seed"],
              case .string(let taskName)? = p["task"], let task = TaskKind(rawValue: taskName) else {
            throw LabError.invalid("training job '\(record.id)' has incomplete stored parameters")
        }
        let hyperparameters = try JSONObjectReader(p["hyperparameters"]!, name: "hyperparameters", allowed: hyperparameterNames)
        let directory = dataDirectory.appendingPathComponent("models").appendingPathComponent(model.id)
        var request = TrainingRequest(jobID: record.id, model: model, dataset: dataset,
                                      training: try trainingSettings(hyperparameters, defaults: task.defaultTraining),
                                      validationSplit: split, seed: UInt64(seed), artifactDirectory: directory)
        if case .string(let initialize)? = p["initialize"], initialize == "weights", case .string(let from)? = p["initialized_from"] {
            request.initialArtifactPath = directory.appendingPathComponent("\(from).h5").path
            request.initializedFrom = from
        }
        return request
    }

    func getJob(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("job_id")
        guard let job = try await store.experiment(id: id, organization: try context.requireOrganization(), kind: .training) else {
            throw APIError.notFound("no training job '\(id)'")
        }
        return json(Self.trainingJobJSON(job))
    }

    func cancelJob(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("job_id")
        guard let job = try await store.experiment(id: id, organization: try context.requireOrganization(), kind: .training) else {
            throw APIError.notFound("no training job '\(id)'")
        }
        guard let cancelled = try await runner.cancel(id: job.id) else {
            throw APIError.conflict("training job '\(id)' has already finished (\(job.status.rawValue))")
        }
        return json(Self.trainingJobJSON(cancelled))
    }

    // MARK: - Hyperparameters

    static let hyperparameterNames: Set<String> = [
        "epochs", "batch_size", "learning_rate", "optimizer", "momentum", "nesterov", "weight_decay", "schedule",
        "warmup_epochs", "label_smoothing",
    ]

    /// The training settings of a `hyperparameters` object; absent fields keep `defaults` (the
    /// task's defaults, `TaskKind.defaultTraining`).
    static func trainingSettings(_ reader: JSONObjectReader?,
                                 defaults: ExperimentConfig.TrainingSettings) throws -> ExperimentConfig.TrainingSettings {
        var settings = defaults
        guard let reader else { return settings }
        settings.epochs = try reader.integer("epochs", in: 1...1000) ?? settings.epochs
        settings.batchSize = try reader.integer("batch_size", in: 1...65_536) ?? settings.batchSize
        settings.learningRate = try reader.number("learning_rate", in: 0...10, openLower: true) ?? settings.learningRate
        settings.optimizer = try reader.string("optimizer", allowed: ["sgd", "adamw"]) ?? settings.optimizer
        settings.momentum = try reader.number("momentum", in: 0...0.999) ?? settings.momentum
        settings.nesterov = try reader.bool("nesterov") ?? settings.nesterov
        settings.weightDecay = try reader.number("weight_decay", in: 0...1) ?? settings.weightDecay
        settings.schedule = try reader.string("schedule", allowed: ["constant", "step", "cosine"]) ?? settings.schedule
        settings.warmupEpochs = try reader.integer("warmup_epochs", in: 0...1000) ?? settings.warmupEpochs
        settings.labelSmoothing = try reader.number("label_smoothing", in: 0...0.5) ?? settings.labelSmoothing
        guard settings.warmupEpochs < settings.epochs || settings.warmupEpochs == 0 else {
            throw APIError.invalidRequest("'hyperparameters.warmup_epochs' (\(settings.warmupEpochs)) must be less than epochs (\(settings.epochs))",
                                          param: "hyperparameters.warmup_epochs")
        }
        return settings
    }

    static func json(_ settings: ExperimentConfig.TrainingSettings) -> JSONValue {
        .object([
            "epochs": .number(Double(settings.epochs)), "batch_size": .number(Double(settings.batchSize)),
            "learning_rate": .number(settings.learningRate), "optimizer": .string(settings.optimizer),
            "momentum": .number(settings.momentum), "nesterov": .bool(settings.nesterov),
            "weight_decay": .number(settings.weightDecay), "schedule": .string(settings.schedule),
            "warmup_epochs": .number(Double(settings.warmupEpochs)), "label_smoothing": .number(settings.labelSmoothing),
        ])
    }

    static func trainingJobJSON(_ job: ExperimentRecord) -> JSONValue {
        var fields: [String: JSONValue] = [
            "id": .string(job.id), "object": .string("training.job"), "model_id": job.modelID.map(JSONValue.string) ?? .null,
            "dataset_id": job.datasetID.map(JSONValue.string) ?? .null, "status": .string(job.status.rawValue),
            "created_at": .number(Double(job.createdAt)), "metrics": job.metrics,
            "failure_reason": job.failureReason.map(JSONValue.string) ?? .null,
            "started_at": job.startedAt.map { .number(Double($0)) } ?? .null,
            "finished_at": job.finishedAt.map { .number(Double($0)) } ?? .null,
        ]
        if case .object(let parameters) = job.parameters {
            for (key, value) in parameters { fields[key] = value }
        }
        fields.merge(job.executionJSON) { $1 }
        return .object(fields)
    }
}
