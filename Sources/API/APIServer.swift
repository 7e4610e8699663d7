import Foundation
import Hummingbird
import Logging
import NIOCore

/// The NASLab HTTP API server: the store in `settings.dataDirectory`, the routes, the job runner
/// and the deployments — and its life: ``resumeInterruptedWork()`` at start, ``drain()`` on
/// SIGTERM/SIGINT. The body of `naslab serve`.
///
/// ```swift
/// let server = try APIServer(settings: ServerSettings(port: 8080, dataDirectory: dataURL, workbench: LabWorkbench()))
/// let app = server.application { port in print("listening on \(port)") }
/// await server.resumeInterruptedWork()
/// try await app.runService()
/// ```
public final class APIServer: @unchecked Sendable {  // every stored property is set once in init; Router is only read
    public let settings: ServerSettings
    public let store: APIStore
    let routes: APIRoutes
    let router: Router<APIRequestContext>
    let address: ServerAddress
    let logger: Logger

    /// Opens the store and builds the routes; creates the default import directory (`<data-dir>/imports`).
    /// - Throws: ``APIStoreError`` when the data directory or database is unusable.
    public init(settings: ServerSettings, logger: Logger? = nil) throws {
        self.settings = settings
        store = try APIStore(dataDirectory: settings.dataDirectory)
        for root in settings.datasetImportRoots where root.path.hasPrefix(settings.dataDirectory.path) {
            try? FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        }
        var logger = logger ?? Logger(label: "naslab.api")
        if logger.logLevel > .info { logger.logLevel = .info }
        self.logger = logger
        address = ServerAddress(baseURL: settings.publicBaseURL ?? "http://\(settings.host):\(settings.port)")
        (router, routes) = makeRouter(store: store, settings: settings, address: address, logger: logger)
    }

    /// Continues the jobs the previous stop interrupted (searches from their records, training from
    /// its checkpoints, pending jobs queued in order) and loads the live deployments again.
    public func resumeInterruptedWork() async {
        let resumed = await routes.runner.resumeInterrupted(dataDirectory: settings.dataDirectory)
        if resumed > 0 { logger.info("resumed interrupted jobs", metadata: ["count": "\(resumed)"]) }
        await routes.deployments.restore()
    }

    /// Stops accepting jobs (new ones get a 503 with `Retry-After`), lets running jobs reach their
    /// next boundary for at most `settings.shutdownGraceSeconds`, and returns the ids of jobs still
    /// running then (they resume from their last finished candidate or epoch on the next start).
    public func drain() async -> [String] {
        let unfinished = await routes.runner.drain(graceSeconds: settings.shutdownGraceSeconds)
        logger.info("drained", metadata: ["unfinished": "\(unfinished)"])
        return unfinished
    }

    /// The HTTP application bound to `settings.host:settings.port`.
    /// - Parameter onServerRunning: Called with the bound port once the server listens (after `--port 0`
    ///   this is the port chosen by the system).
    public func application(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let host = settings.host, port = settings.port, fixedBase = settings.publicBaseURL
        let address = self.address
        let idle = TimeAmount.nanoseconds(Int64(settings.requestTimeoutSeconds * 1e9))
        return Application(router: router, server: .http1(configuration: .init(idleTimeout: idle)),
                           configuration: .init(address: .hostname(host, port: port), serverName: "naslab"),
                           onServerRunning: { channel in
                               let bound = channel.localAddress?.port ?? port
                               if fixedBase == nil { address.baseURL = "http://\(host):\(bound)" }
                               await onServerRunning(bound)
                           },
                           logger: logger)
    }
}

/// Builds the NASLab HTTP API application (``APIServer``) and starts resuming the previous stop's
/// jobs in the background. For embedding and tests; `naslab serve` uses ``APIServer`` directly
/// to drain on signals.
/// - Throws: ``APIStoreError`` when the data directory or database is unusable.
public func makeApplication(settings: ServerSettings, logger: Logger? = nil,
                            onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) throws -> some ApplicationProtocol {
    let server = try APIServer(settings: settings, logger: logger)
    Task { await server.resumeInterruptedWork() }
    return server.application(onServerRunning: onServerRunning)
}

/// The API's router over an open store: every `/v1` route, authentication and the JSON error shape.
/// Use it directly to embed the API or to test it in-process.
///
/// Deployments' `endpoint_url` use `settings.publicBaseURL`, else `http://<host>:<port>` of `settings`.
public func buildRouter(store: APIStore, settings: ServerSettings) -> Router<APIRequestContext> {
    let address = ServerAddress(baseURL: settings.publicBaseURL ?? "http://\(settings.host):\(settings.port)")
    return makeRouter(store: store, settings: settings, address: address, logger: Logger(label: "naslab.api")).router
}

func makeRouter(store: APIStore, settings: ServerSettings, address: ServerAddress,
                logger: Logger) -> (router: Router<APIRequestContext>, routes: APIRoutes) {
    let router = Router(context: APIRequestContext.self)
    router.add(middleware: RequestLogMiddleware(logger: logger))
    router.add(middleware: ErrorMiddleware<APIRequestContext>(bodyLimit: settings.maxJSONBodyBytes))
    router.add(middleware: AuthenticationMiddleware(store: store))
    var jobLogger = logger
    jobLogger[metadataKey: "component"] = "jobs"
    let routes = APIRoutes(store: store, settings: settings,
                           runner: JobRunner(store: store, workbench: settings.workbench,
                                             maxConcurrentJobs: settings.maxConcurrentJobs, logger: jobLogger),
                           deployments: DeploymentManager(store: store, workbench: settings.workbench), address: address)

    router.get("/v1/datasets") { request, context in try await routes.listDatasets(request, context) }
    router.post("/v1/datasets") { request, context in try await routes.createDataset(request, context) }
    router.get("/v1/datasets/:dataset_id") { request, context in try await routes.getDataset(request, context) }

    router.post("/v1/models") { request, context in try await routes.createModel(request, context) }
    router.get("/v1/models") { request, context in try await routes.listModels(request, context) }
    router.get("/v1/models/:model_id") { request, context in try await routes.getModel(request, context) }
    router.post("/v1/models/:model_id/train") { request, context in try await routes.train(request, context) }
    router.get("/v1/models/:model_id/onnx") { request, context in try await routes.exportModelONNX(request, context) }

    router.get("/v1/jobs/:job_id") { request, context in try await routes.getJob(request, context) }
    router.post("/v1/jobs/:job_id/cancel") { request, context in try await routes.cancelJob(request, context) }

    router.post("/v1/nas/searches") { request, context in try await routes.createSearch(request, context) }
    router.get("/v1/nas/searches/:search_id") { request, context in try await routes.getSearch(request, context) }
    router.post("/v1/nas/searches/:search_id/cancel") { request, context in try await routes.cancelSearch(request, context) }

    router.post("/v1/models/:model_id/deploy") { request, context in try await routes.deploy(request, context) }
    router.post("/v1/models/:model_id/predict") { request, context in try await routes.predictModel(request, context) }
    router.get("/v1/deployments") { request, context in try await routes.listDeployments(request, context) }
    router.get("/v1/deployments/:deployment_id") { request, context in try await routes.getDeployment(request, context) }
    router.delete("/v1/deployments/:deployment_id") { request, context in try await routes.deleteDeployment(request, context) }
    router.post("/v1/deployments/:deployment_id/predict") { request, context in try await routes.predictDeployment(request, context) }

    router.get("/v1/experiments") { request, context in try await routes.listExperiments(request, context) }
    router.get("/v1/health") { _, _ in try await routes.health() }
    return (router, routes)
}

/// The handlers of every route.
struct APIRoutes: Sendable {
    let store: APIStore
    let settings: ServerSettings
    let runner: JobRunner
    let deployments: DeploymentManager
    let address: ServerAddress

    /// `GET /v1/health` (no key): the server answers, and how many jobs of all organisations wait or run.
    func health() async throws -> Response {
        let (pending, running) = try await store.queueDepth()
        return json(.object(["object": .string("health"), "status": .string("ok"),
                             "queue": .object(["pending": .number(Double(pending)), "running": .number(Double(running))])]))
    }

    // MARK: - Helpers

    /// Stores a new job, refusing it while the server shuts down (503) or when the server's or the
    /// organisation's queue of pending jobs is full (429); both with `Retry-After`.
    func insertJob(_ record: ExperimentRecord) async throws {
        if await runner.isDraining {
            throw APIError.unavailable("the server is shutting down and accepts no new jobs; retry after it restarts",
                                       retryAfter: settings.retryAfterSeconds)
        }
        do {
            try await store.insertExperiment(record, limits: QueueLimits(server: settings.maxQueuedJobs,
                                                                         organization: settings.maxQueuedJobsPerOrganization))
        } catch let full as QueueFull {
            let whose = full.scope == "server" ? "the server" : "your organisation"
            throw APIError.rateLimited("\(whose) already has \(full.limit) jobs waiting (the limit); retry when some have started",
                                       retryAfter: settings.retryAfterSeconds)
        }
    }

    func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        let data = (try? JSONEncoder.api.encode(value)) ?? Data()
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Reads a JSON body of at most `maxJSONBodyBytes` (413 above).
    func body(_ request: Request) async throws -> JSONValue {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > settings.maxJSONBodyBytes {
            throw APIError.tooLarge(limit: settings.maxJSONBodyBytes)
        }
        var request = request
        let buffer = try await request.collectBody(upTo: settings.maxJSONBodyBytes)
        return try JSONValue.parse(Data(buffer.readableBytesView))
    }

    /// Query parameters, refusing names not in `allowed` and repeated names.
    func query(_ request: Request, allowed: Set<String>) throws -> [String: String] {
        var result: [String: String] = [:]
        for (key, value) in request.uri.queryParameters {
            let name = String(key)
            guard allowed.contains(name) else {
                throw APIError.invalidRequest(
                    "unknown query parameter '\(name)'; allowed: \(allowed.sorted().joined(separator: ", "))", param: name)
            }
            guard result[name] == nil else { throw APIError.invalidRequest("query parameter '\(name)' is repeated", param: name) }
            result[name] = String(value)
        }
        return result
    }

    /// `limit` (1…100, default 20) and `after` of a list request.
    func pagination(_ query: [String: String]) throws -> (limit: Int, after: String?) {
        var limit = 20
        if let text = query["limit"] {
            guard let value = Int(text) else { throw APIError.invalidRequest("'limit' must be an integer; got '\(text)'", param: "limit") }
            guard (1...100).contains(value) else {
                throw APIError.invalidRequest("'limit' must be between 1 and 100; got \(value)", param: "limit")
            }
            limit = value
        }
        let after = query["after"].flatMap { $0.isEmpty ? nil : $0 }
        return (limit, after)
    }

    func listJSON(_ items: [JSONValue], hasMore: Bool) -> JSONValue {
        .object(["object": .string("list"), "data": .array(items), "has_more": .bool(hasMore),
                 "first_id": items.first.flatMap(Self.id) ?? .null, "last_id": items.last.flatMap(Self.id) ?? .null])
    }

    static func id(_ item: JSONValue) -> JSONValue? {
        if case .object(let fields) = item { return fields["id"] }
        return nil
    }

    func paged<Item>(_ load: () async throws -> Page<Item>) async throws -> Page<Item> {
        do {
            return try await load()
        } catch is UnknownCursor {
            throw APIError.invalidRequest("'after' does not name an object of this list", param: "after")
        }
    }

    /// The dataset named by a body field, 404 when the caller's organisation cannot see it.
    func dataset(_ id: String, organization: String, param: String) async throws -> DatasetRecord {
        guard let dataset = try await store.dataset(id: id, organization: organization) else {
            throw APIError.notFound("no dataset '\(id)'", param: param)
        }
        return dataset
    }

    func model(_ request: Request, _ context: APIRequestContext) async throws -> ModelRecord {
        let id = try context.parameters.require("model_id")
        guard let model = try await store.model(id: id, organization: try context.requireOrganization()) else {
            throw APIError.notFound("no model '\(id)'")
        }
        return model
    }

    // MARK: - Experiments

    func listExperiments(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let organization = try context.requireOrganization()
        let query = try query(request, allowed: ["status", "limit", "after"])
        var status: ExperimentRecord.Status?
        if let text = query["status"] {
            guard let value = ExperimentRecord.Status(rawValue: text) else {
                throw APIError.invalidRequest(
                    "'status' must be one of \(ExperimentRecord.Status.allCases.map(\.rawValue).joined(separator: ", ")); got '\(text)'",
                    param: "status")
            }
            status = value
        }
        let (limit, after) = try pagination(query)
        let page = try await paged { try await store.experiments(organization: organization, status: status, limit: limit, after: after) }
        return json(listJSON(page.items.map(\.listJSON), hasMore: page.hasMore))
    }
}
