import Foundation
import Hummingbird
import Logging

/// Logs one line per request after it is answered: method, path (without the query), status and
/// latency in milliseconds — and never a header, a body or a key.
///
/// With `naslab serve --log-format json` a line reads
/// `{"duration_ms":0.41,"label":"naslab.api","level":"info","message":"request","method":"GET","path":"/v1/health","status":200,"time":"…"}`.
struct RequestLogMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let logger: Logger

    func handle(_ request: Request, context: APIRequestContext,
                next: (Request, APIRequestContext) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        do {
            let response = try await next(request, context)
            log(request, status: Int(response.status.code), since: start)
            return response
        } catch {
            log(request, status: Int((error as? any HTTPResponseError)?.status.code ?? 500), since: start)
            throw error
        }
    }

    private func log(_ request: Request, status: Int, since start: UInt64) {
        let milliseconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        logger.info("request", metadata: [
            "method": "\(request.method)", "path": "\(request.uri.path)", "status": .stringConvertible(status),
            "duration_ms": .stringConvertible((milliseconds * 1000).rounded() / 1000),
        ])
    }
}

/// A swift-log handler writing one JSON object per line to standard error: `time` (ISO 8601),
/// `level`, `label`, `message` and the metadata as fields (numbers stay numbers). What
/// `naslab serve --log-format json` installs, for log collectors.
public struct JSONLineLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    private static let lock = NSLock()

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?, source: String,
                    file: String, function: String, line: UInt) {
        var fields: [String: JSONValue] = [
            "time": .string(ISO8601DateFormatter().string(from: Date())), "level": .string(level.rawValue),
            "label": .string(label), "message": .string(message.description),
        ]
        for (key, value) in metadata.merging(extra ?? [:], uniquingKeysWith: { $1 }) where fields[key] == nil {
            fields[key] = Self.json(value)
        }
        guard var data = try? JSONEncoder.api.encode(JSONValue.object(fields)) else { return }
        data.append(0x0A)
        Self.lock.withLock { FileHandle.standardError.write(data) }
    }

    static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let s): return .string(s)
        case .stringConvertible(let c):
            if let n = c as? Int { return .number(Double(n)) }
            if let d = c as? Double, d.isFinite { return .number(d) }
            return .string(c.description)
        case .array(let a): return .array(a.map(json))
        case .dictionary(let d): return .object(d.mapValues(json))
        }
    }
}
