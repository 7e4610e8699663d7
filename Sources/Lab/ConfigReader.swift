import Foundation
import Yams

/// An error in a configuration file, located as `file:line:column`.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { "\(file):\(line):\(column): \(message)" }
}

/// Typed, located access to a YAML mapping: every failure names the file, line and column of the
/// offending node, and keys that nobody asked for are reported as unknown by `finish()`.
struct ConfigReader {
    let file: String
    let node: Node
    private let pairs: [(key: String, keyNode: Node, value: Node)]
    private var used = Set<String>()
    /// Problems found while reading the mapping that do not stop reading it (non-string and
    /// duplicate keys: the first occurrence of a key is kept), in document order.
    private(set) var problems: [ConfigError] = []

    /// Parses YAML text and returns a reader for its top-level mapping.
    static func parse(yaml: String, file: String) throws -> ConfigReader {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw located(error, file: file)
        }
        guard let root else { throw ConfigError(file: file, line: 1, column: 1, message: "the file is empty") }
        return try ConfigReader(node: root, file: file, what: "the document")
    }

    static func located(_ error: YamlError, file: String) -> ConfigError {
        switch error {
        case let .scanner(_, problem, mark, _), let .parser(_, problem, mark, _), let .composer(_, problem, mark, _):
            return ConfigError(file: file, line: mark.line, column: mark.column, message: "invalid YAML: \(problem)")
        default:
            return ConfigError(file: file, line: 1, column: 1, message: "invalid YAML: \(error)")
        }
    }

    init(node: Node, file: String, what: String) throws {
        self.file = file
        self.node = node
        guard let mapping = node.mapping else {
            throw ConfigReader.error(file: file, at: node, "\(what) must be a mapping of keys to values")
        }
        var pairs = [(key: String, keyNode: Node, value: Node)]()
        var seen = Set<String>()
        var problems = [ConfigError]()
        for (k, v) in mapping {
            guard let key = k.string else {
                problems.append(ConfigReader.error(file: file, at: k, "keys must be strings"))
                continue
            }
            guard seen.insert(key).inserted else {
                problems.append(ConfigReader.error(file: file, at: k, "duplicate key '\(key)'"))
                continue
            }
            pairs.append((key, k, v))
        }
        self.pairs = pairs
        self.problems = problems
    }

    static func error(file: String, at node: Node, _ message: String) -> ConfigError {
        let mark = node.mark
        return ConfigError(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1, message: message)
    }

    func error(at node: Node, _ message: String) -> ConfigError { ConfigReader.error(file: file, at: node, message) }

    func valueNode(_ key: String) -> Node? { pairs.first { $0.key == key }?.value }

    var keys: [String] { pairs.map(\.key) }

    /// Marks `key` as known and returns its node.
    mutating func take(_ key: String) -> Node? {
        used.insert(key)
        guard let node = valueNode(key) else { return nil }
        if case .scalar(let s) = node, s.style == .plain, ["", "~", "null", "Null", "NULL"].contains(s.string) { return nil }
        return node
    }

    mutating func string(_ key: String) throws -> String? {
        guard let node = take(key) else { return nil }
        guard let s = node.scalar?.string else { throw error(at: node, "'\(key)' must be a string") }
        return s
    }

    mutating func requiredString(_ key: String) throws -> String {
        guard let s = try string(key) else { throw error(at: node, "missing required key '\(key)'") }
        return s
    }

    mutating func int(_ key: String, range: ClosedRange<Int>? = nil) throws -> Int? {
        guard let node = take(key) else { return nil }
        guard let s = node.scalar?.string, let v = Int(s.replacingOccurrences(of: "_", with: "")) else {
            throw error(at: node, "'\(key)' must be an integer, got '\(node.scalar?.string ?? "a collection")'")
        }
        if let range, !range.contains(v) {
            throw error(at: node, "'\(key)' must be in \(range.lowerBound)...\(range.upperBound), got \(v)")
        }
        return v
    }

    mutating func double(_ key: String, range: ClosedRange<Double>? = nil) throws -> Double? {
        guard let node = take(key) else { return nil }
        guard let s = node.scalar?.string, let v = Double(s.replacingOccurrences(of: "_", with: "")), v.isFinite else {
            throw error(at: node, "'\(key)' must be a number, got '\(node.scalar?.string ?? "a collection")'")
        }
        if let range, !range.contains(v) {
            throw error(at: node, "'\(key)' must be in \(range.lowerBound)...\(range.upperBound), got \(v)")
        }
        return v
    }

    mutating func bool(_ key: String) throws -> Bool? {
        guard let node = take(key) else { return nil }
        switch node.scalar?.string.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error(at: node, "'\(key)' must be true or false")
        }
    }

    /// A string restricted to `allowed` values.
    mutating func choice(_ key: String, _ allowed: [String]) throws -> String? {
        guard let node = valueNode(key), let s = try string(key) else { return nil }
        guard allowed.contains(s) else {
            throw error(at: node, "'\(key)' must be one of \(allowed.joined(separator: ", ")), got '\(s)'")
        }
        return s
    }

    /// A list of strings (`[a, b]` or a block sequence).
    mutating func stringList(_ key: String) throws -> [String]? {
        guard let node = take(key) else { return nil }
        guard let seq = node.sequence else { throw error(at: node, "'\(key)' must be a list of strings") }
        return try seq.map { item in
            guard let s = item.scalar?.string else { throw error(at: item, "'\(key)' must be a list of strings") }
            return s
        }
    }

    mutating func mapping(_ key: String) throws -> ConfigReader? {
        guard let node = take(key) else { return nil }
        return try ConfigReader(node: node, file: file, what: "'\(key)'")
    }

    /// Throws for the first key that was never asked for.
    func finish(section: String? = nil) throws {
        if let first = unknownKeyErrors(section: section).first { throw first }
    }

    /// One error per key that was never asked for, in document order.
    func unknownKeyErrors(section: String? = nil) -> [ConfigError] {
        let known = used.sorted().joined(separator: ", ")
        let place = section.map { " in '\($0)'" } ?? ""
        return pairs.filter { !used.contains($0.key) }.map {
            error(at: $0.keyNode, "unknown key '\($0.key)'\(place) (known keys: \(known))")
        }
    }
}
