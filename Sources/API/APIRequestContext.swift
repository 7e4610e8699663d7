import Foundation
import Hummingbird
import NIOCore

/// The request context of the API: Hummingbird's core storage plus the caller's organisation,
/// set by ``AuthenticationMiddleware``.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The organisation of the API key that authenticated the request.
    public var organization: String?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.organization = nil
    }

    /// The authenticated organisation; routes only run after authentication, so a missing one is a 401.
    func requireOrganization() throws -> String {
        guard let organization else { throw APIError.authentication("missing API key") }
        return organization
    }
}

/// Requires `Authorization: Bearer <key>` on every request and records the key's organisation.
/// Missing, malformed, unknown or revoked keys are a 401 `authentication_error`.
/// The one exception is ``publicRoutes``.
public struct AuthenticationMiddleware: RouterMiddleware {
    public typealias Context = APIRequestContext
    let store: APIStore

    /// Routes served without a key: `GET /v1/health` (liveness and queue depth, nothing organisation-specific).
    public static let publicRoutes: Set<String> = ["GET /v1/health"]

    public init(store: APIStore) { self.store = store }

    public func handle(_ request: Request, context: APIRequestContext,
                       next: (Request, APIRequestContext) async throws -> Response) async throws -> Response {
        if Self.publicRoutes.contains("\(request.method) \(request.uri.path)") { return try await next(request, context) }
        guard let header = request.headers[.authorization] else {
            throw APIError.authentication("missing API key: send 'Authorization: Bearer <key>' (create one with 'naslab keys create --org NAME')")
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw APIError.authentication("malformed Authorization header: expected 'Bearer <key>'")
        }
        let secret = parts[1].trimmingCharacters(in: .whitespaces)
        guard let organization = try await store.organization(forAPIKey: secret) else {
            throw APIError.authentication("invalid API key")
        }
        var context = context
        context.organization = organization
        return try await next(request, context)
    }
}
