import Foundation

/// A JSON value as sent by a client, kept exact enough to validate it field by field.
public enum JSONValue: Codable, Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value):
            // JSON has no NaN or infinity (e.g. the training accuracy of a detector): null.
            if !value.isFinite { try container.encodeNil() } else if value.rounded() == value, abs(value) < 1e15 { try container.encode(Int64(value)) } else { try container.encode(value) }
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// The JSON type name used in error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    /// Parses a request body; malformed JSON is a 400.
    static func parse(_ data: Data) throws -> JSONValue {
        if data.isEmpty { throw APIError.invalidRequest("the request body is empty; a JSON object is expected") }
        do {
            return try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw APIError.invalidRequest("the request body is not valid JSON")
        }
    }

    /// Encodes to compact JSON text with sorted keys (for storage).
    var jsonText: String {
        String(decoding: (try? JSONEncoder.api.encode(self)) ?? Data("null".utf8), as: UTF8.self)
    }

    /// Decodes JSON text stored by ``jsonText``.
    static func fromText(_ text: String?) -> JSONValue {
        guard let text, let value = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else { return .null }
        return value
    }
}

/// Reads the fields of one JSON object strictly: unknown fields, wrong types and values out of
/// range are 400 errors naming the field (`param`) with its full path (`constraints.max_params`).
struct JSONObjectReader {
    let fields: [String: JSONValue]
    /// Prefix of field paths in errors (`""` at the top level, `"hyperparameters."` inside).
    let prefix: String

    /// - Parameters:
    ///   - value: The value that must be an object.
    ///   - name: Its path for errors (`nil` at the top level: "the request body").
    ///   - allowed: The field names accepted; any other is a 400.
    init(_ value: JSONValue, name: String? = nil, allowed: Set<String>) throws {
        guard case .object(let fields) = value else {
            if let name {
                throw APIError.invalidRequest("\(name) must be an object, not \(value.typeName)", param: name)
            }
            throw APIError.invalidRequest("the request body must be a JSON object, not \(value.typeName)")
        }
        for key in fields.keys.sorted() where !allowed.contains(key) {
            let path = (name.map { $0 + "." } ?? "") + key
            throw APIError.invalidRequest(
                "unknown field '\(path)'; allowed: \(allowed.sorted().joined(separator: ", "))", param: path)
        }
        self.fields = fields
        self.prefix = name.map { $0 + "." } ?? ""
    }

    func path(_ key: String) -> String { prefix + key }

    /// The raw value, `nil` when absent or `null`.
    func value(_ key: String) -> JSONValue? {
        guard let value = fields[key], value != .null else { return nil }
        return value
    }

    func require<T>(_ key: String, _ read: (String) throws -> T?) throws -> T {
        guard let value = try read(key) else {
            throw APIError.invalidRequest("missing required field '\(path(key))'", param: path(key))
        }
        return value
    }

    func typeError(_ key: String, expected: String, got: JSONValue) -> APIError {
        .invalidRequest("'\(path(key))' must be \(expected), not \(got.typeName)", param: path(key))
    }

    func string(_ key: String, maxLength: Int = 4096, allowed: [String]? = nil) throws -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let text) = value else { throw typeError(key, expected: "a string", got: value) }
        if text.isEmpty { throw APIError.invalidRequest("'\(path(key))' must not be empty", param: path(key)) }
        if text.utf8.count > maxLength {
            throw APIError.invalidRequest("'\(path(key))' is longer than \(maxLength) bytes", param: path(key))
        }
        if let allowed, !allowed.contains(text) {
            throw APIError.invalidRequest(
                "'\(path(key))' must be one of \(allowed.joined(separator: ", ")); got '\(text)'", param: path(key))
        }
        return text
    }

    func integer(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let value = value(key) else { return nil }
        guard case .number(let number) = value else { throw typeError(key, expected: "an integer", got: value) }
        guard number.rounded() == number else {
            throw APIError.invalidRequest("'\(path(key))' must be an integer; got \(number)", param: path(key))
        }
        guard number >= Double(range.lowerBound), number <= Double(range.upperBound) else {
            throw APIError.invalidRequest(
                "'\(path(key))' must be between \(range.lowerBound) and \(range.upperBound); got \(formatNumber(number))",
                param: path(key))
        }
        return Int(number)
    }

    /// A number in `range`; `openLower` excludes the lower bound (`learning_rate > 0`).
    func number(_ key: String, in range: ClosedRange<Double>, openLower: Bool = false) throws -> Double? {
        guard let value = value(key) else { return nil }
        guard case .number(let number) = value else { throw typeError(key, expected: "a number", got: value) }
        let aboveLower = openLower ? number > range.lowerBound : number >= range.lowerBound
        guard number.isFinite, aboveLower, number <= range.upperBound else {
            let lower = openLower ? "greater than \(formatNumber(range.lowerBound))" : "at least \(formatNumber(range.lowerBound))"
            throw APIError.invalidRequest(
                "'\(path(key))' must be \(lower) and at most \(formatNumber(range.upperBound)); got \(formatNumber(number))",
                param: path(key))
        }
        return number
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = value(key) else { return nil }
        guard case .bool(let flag) = value else { throw typeError(key, expected: "a boolean", got: value) }
        return flag
    }

    func object(_ key: String, allowed: Set<String>) throws -> JSONObjectReader? {
        guard let value = value(key) else { return nil }
        return try JSONObjectReader(value, name: path(key), allowed: allowed)
    }
}

func formatNumber(_ number: Double) -> String {
    if number.rounded() == number, abs(number) < 1e15 { return String(Int64(number)) }
    return String(number)
}
