import Foundation
import Hummingbird
import Logging
import NIOCore

/// Builds the NASLab HTTP API application: opens the store in `settings.dataDirectory`, marks
/// experiments cut off by the previous stop as failed ("server restarted"), creates the default
/// import directory (`<data-dir>/imports`), and binds
/// `settings.host:settings.port`. The body of `naslab serve`.
///
/// ```swift
/// let app = try makeApplication(settings: ServerSettings(port: 8080, dataDirectory: dataURL))
/// try await app.runService()
/// ```
/// - Throws: ``APIStoreError`` when the data directory or database is unusable.
/// - Parameter onServerRunning: Called with the bound port once the server listens (after `--port 0`
///   this is the port chosen by the system).
public func makeApplication(settings: ServerSettings, logger: Logger? = nil,
                            onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) throws -> some ApplicationProtocol {
    let store = try APIStore(dataDirectory: settings.dataDirectory)
    let recovered = try store.recoverInterruptedExperiments()
    for root in settings.datasetImportRoots where root.path.hasPrefix(settings.dataDirectory.path) {
        try? FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }
    var logger = logger ?? Logger(label: "naslab.api")
    if logger.logLevel > .info { logger.logLevel = .info }
    if !recovered.isEmpty {
        logger.warning("marked \(recovered.count) interrupted experiment(s) failed: server restarted", metadata: ["ids": "\(recovered)"])
    }
    let address = ServerAddress(baseURL: settings.publicBaseURL ?? "http://\(settings.host):\(settings.port)")
    let (router, routes) = makeRouter(store: store, settings: settings, address: address)
    Task { await routes.deployments.restore() }
    let host = settings.host
    let fixedBase = settings.publicBaseURL
    return Application(router: router,
                       configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "naslab"),
                       onServerRunning: { channel in
                           let port = channel.localAddress?.port ?? settings.port
                           if fixedBase == nil { address.baseURL = "http://\(host):\(port)" }
                           await onServerRunning(port)
                       },
                       logger: logger)
}

/// The API's router over an open store: every `/v1` route, authentication and the JSON error shape.
/// Use it directly to embed the API or to test it in-process.
///
/// Deployments' `endpoint_url` use `settings.publicBaseURL`, else `http://<host>:<port>` of `settings`.
public func buildRouter(store: APIStore, settings: ServerSettings) -> Router<APIRequestContext> {
    let address = ServerAddress(baseURL: settings.publicBaseURL ?? "http://\(settings.host):\(settings.port)")
    return makeRouter(store: store, settings: settings, address: address).router
}

func makeRouter(store: APIStore, settings: ServerSettings, address: ServerAddress) -> (router: Router<APIRequestContext>, routes: APIRoutes) {
    let router = Router(context: APIRequestContext.self)
    router.add(middleware: ErrorMiddleware<APIRequestContext>(bodyLimit: settings.maxJSONBodyBytes))
    router.add(middleware: AuthenticationMiddleware(store: store))
    let routes = APIRoutes(store: store, settings: settings,
                           runner: JobRunner(store: store, workbench: settings.workbench),
                           deployments: DeploymentManager(store: store, workbench: settings.workbench), address: address)

    router.get("/v1/datasets") { request, context in try await routes.listDatasets(request, context) }
    router.post("/v1/datasets") { request, context in try await routes.createDataset(request, context) }
    router.get("/v1/datasets/:dataset_id") { request, context in try await routes.getDataset(request, context) }

    router.post("/v1/models") { request, context in try await routes.createModel(request, context) }
    router.get("/v1/models") { request, context in try await routes.listModels(request, context) }
    router.get("/v1/models/:model_id") { request, context in try await routes.getModel(request, context) }
    router.post("/v1/models/:model_id/train") { request, context in try await routes.train(request, context) }

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
