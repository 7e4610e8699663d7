import Foundation
import Hummingbird
import NIOCore

/// An error answered to an API client in the one JSON shape
/// `{"error":{"type":…,"message":…,"param":…}}`.
///
/// Every error a route throws is converted to this shape by ``ErrorMiddleware``; bad input is
/// always a 4xx, never a 500.
///
/// ```swift
/// throw APIError.invalidRequest("limit must be between 1 and 100", param: "limit")
/// ```
public struct APIError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The HTTP status (400, 401, 404, 409, 413, …).
    public var status: HTTPResponse.Status
    /// The error family: `invalid_request_error`, `authentication_error`, `not_found_error`,
    /// `conflict_error`, `request_too_large`, `api_error`.
    public var type: String
    /// A sentence a user can act on.
    public var message: String
    /// The offending request field (`dataset_id`, `hyperparameters.epochs`, …) when there is one.
    public var param: String?
    /// Seconds after which the request may succeed (429, 503): sent as the `Retry-After` header.
    public var retryAfter: Int?

    public init(status: HTTPResponse.Status, type: String, message: String, param: String? = nil, retryAfter: Int? = nil) {
        self.status = status
        self.type = type
        self.message = message
        self.param = param
        self.retryAfter = retryAfter
    }

    /// 400: a malformed body, an unknown field, a wrong type, a value out of range.
    public static func invalidRequest(_ message: String, param: String? = nil) -> APIError {
        APIError(status: .badRequest, type: "invalid_request_error", message: message, param: param)
    }

    /// 401: no key, or a key the server does not know.
    public static func authentication(_ message: String) -> APIError {
        APIError(status: .unauthorized, type: "authentication_error", message: message)
    }

    /// 404: no such object for the caller's organisation (objects of other organisations look the same).
    public static func notFound(_ message: String, param: String? = nil) -> APIError {
        APIError(status: .notFound, type: "not_found_error", message: message, param: param)
    }

    /// 409: the object exists but is in a state that does not allow the request.
    public static func conflict(_ message: String, param: String? = nil) -> APIError {
        APIError(status: .conflict, type: "conflict_error", message: message, param: param)
    }

    /// 413: the body exceeds the server's limit.
    public static func tooLarge(limit: Int) -> APIError {
        APIError(status: .contentTooLarge, type: "request_too_large",
                 message: "the request body exceeds the limit of \(limit) bytes")
    }

    /// 429: a queue or concurrency limit is reached (job queue of the server or organisation,
    /// predictions in flight on a deployment); retry after `retryAfter` seconds.
    public static func rateLimited(_ message: String, retryAfter: Int, param: String? = nil) -> APIError {
        APIError(status: .tooManyRequests, type: "rate_limit_error", message: message, param: param, retryAfter: retryAfter)
    }

    /// 503: the server is shutting down and accepts no new jobs; retry (against the restarted
    /// server) after `retryAfter` seconds.
    public static func unavailable(_ message: String, retryAfter: Int) -> APIError {
        APIError(status: .serviceUnavailable, type: "service_unavailable", message: message, retryAfter: retryAfter)
    }

    /// 504: the request did not finish within the server's request timeout.
    public static func timeout(seconds: Double) -> APIError {
        APIError(status: .gatewayTimeout, type: "timeout_error",
                 message: "the request did not finish within the server's timeout of \(formatNumber(seconds)) s")
    }

    /// 500: a fault of the server, not of the request.
    public static func server(_ message: String) -> APIError {
        APIError(status: .internalServerError, type: "api_error", message: message)
    }

    public var description: String {
        "\(status.code) \(type): \(message)" + (param.map { " (param: \($0))" } ?? "")
    }

    struct Body: Codable {
        struct Content: Codable {
            var type: String
            var message: String
            var param: String?

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(type, forKey: .type)
                try container.encode(message, forKey: .message)
                try container.encode(param, forKey: .param)   // explicit null when absent
            }
        }
        var error: Content
    }

    /// The JSON response of this error.
    func response() -> Response {
        let body = Body(error: .init(type: type, message: message, param: param))
        let data = (try? JSONEncoder.api.encode(body)) ?? Data("{\"error\":{\"type\":\"api_error\",\"message\":\"encoding failed\",\"param\":null}}".utf8)
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension JSONEncoder {
    /// The encoder of every API response: sorted keys so that bodies are stable.
    static var api: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

/// Converts every error thrown below it into the API's JSON error shape.
///
/// `APIError` passes through; Hummingbird's own errors (unknown route 404, 405, body too large 413)
/// are rewritten; anything else is logged and answered as a 500 `api_error` without internals.
public struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The body limit quoted in 413 messages.
    public var bodyLimit: Int

    public init(bodyLimit: Int) { self.bodyLimit = bodyLimit }

    public func handle(_ request: Request, context: Context,
                       next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response()
        } catch is NIOTooManyBytesError {
            return APIError.tooLarge(limit: bodyLimit).response()
        } catch let error as HTTPError {
            switch error.status {
            case .notFound:
                return APIError.notFound("no route \(request.method) \(request.uri.path)").response()
            case .methodNotAllowed:
                return APIError(status: .methodNotAllowed, type: "invalid_request_error",
                                message: "method \(request.method) is not allowed on \(request.uri.path)").response()
            case .contentTooLarge:
                return APIError.tooLarge(limit: bodyLimit).response()
            default:
                let type = error.status.code < 500 ? "invalid_request_error" : "api_error"
                return APIError(status: error.status, type: type,
                                message: error.body ?? error.status.reasonPhrase).response()
            }
        } catch let error as any HTTPResponseError {
            let type = error.status.code < 500 ? "invalid_request_error" : "api_error"
            return APIError(status: error.status, type: type, message: error.status.reasonPhrase).response()
        } catch {
            context.logger.error("internal error: \(String(describing: error))")
            return APIError.server("internal server error").response()
        }
    }
}
