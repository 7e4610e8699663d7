import Foundation

/// Errors reading a tabular benchmark.
public enum TabularBenchmarkError: Error, Equatable, CustomStringConvertible {
    case fileNotFound(path: String)
    case unreadable(path: String, reason: String)
    case emptyFile(path: String)
    case missingColumn(path: String, column: String, available: [String])
    case wrongFieldCount(path: String, line: Int, expected: Int, found: Int)
    case badNumber(path: String, line: Int, column: String, value: String)
    case duplicateKey(path: String, line: Int, key: String, firstLine: Int)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "tabular benchmark file not found: \(path)"
        case .unreadable(let path, let reason):
            return "cannot read tabular benchmark \(path): \(reason)"
        case .emptyFile(let path):
            return "tabular benchmark \(path) is empty (no header line)"
        case .missingColumn(let path, let column, let available):
            return "\(path): no column '\(column)'; columns are \(available.joined(separator: ", "))"
        case .wrongFieldCount(let path, let line, let expected, let found):
            return "\(path):\(line): expected \(expected) fields, found \(found)"
        case .badNumber(let path, let line, let column, let value):
            return "\(path):\(line): column '\(column)' holds '\(value)', which is not a number"
        case .duplicateKey(let path, let line, let key, let firstLine):
            return "\(path):\(line): key '\(key)' already appeared on line \(firstLine)"
        }
    }
}

/// A table of precomputed results keyed by architecture text (e.g. NAS-Bench-201's
/// `ArchitectureString`), read from a CSV file with a header line.
///
/// Fields are separated by commas; a field may be quoted with `"` (with `""` for a quote).
/// Empty lines are skipped; line numbers in errors count from 1 (the header).
///
/// ```swift
/// let table = try TabularBenchmark(
///     contentsOf: URL(fileURLWithPath: "../shared/benchmarks/nasbench201/nats_bench_tss_200ep.csv"),
///     keyColumn: "ArchitectureString", metricColumn: "CIFAR10TestAccuracy200Epochs")
/// let accuracy = table.lookup("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
/// ```
///
/// References:
/// - X. Dong, Y. Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture
///   Search", ICLR 2020.
public struct TabularBenchmark: Sendable {
    public let keyColumn: String
    public let metricColumn: String
    private let values: [String: Double]

    /// The number of rows.
    public var count: Int { values.count }
    /// All keys (in no particular order).
    public var keys: Dictionary<String, Double>.Keys { values.keys }

    /// Reads `keyColumn` and `metricColumn` of a CSV file.
    /// - Throws: `TabularBenchmarkError` for a missing or unreadable file, a missing column, a row
    ///   with the wrong number of fields, a metric that is not a number, or a repeated key.
    public init(contentsOf url: URL, keyColumn: String = "ArchitectureString",
                metricColumn: String = "CIFAR10TestAccuracy200Epochs") throws {
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else { throw TabularBenchmarkError.fileNotFound(path: path) }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TabularBenchmarkError.unreadable(path: path, reason: "\(error)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw TabularBenchmarkError.unreadable(path: path, reason: "not UTF-8 text")
        }
        try self.init(csv: text, keyColumn: keyColumn, metricColumn: metricColumn, source: path)
    }

    /// Reads `keyColumn` and `metricColumn` from CSV text; `source` names it in errors.
    public init(csv text: String, keyColumn: String = "ArchitectureString",
                metricColumn: String = "CIFAR10TestAccuracy200Epochs", source: String = "<csv>") throws {
        self.keyColumn = keyColumn
        self.metricColumn = metricColumn
        var header: [String]?
        var keyIndex = 0, metricIndex = 0
        var values = [String: Double]()
        var lineOfKey = [String: Int]()
        var lineNumber = 0
        let bytes = Array(text.utf8)
        var lineStart = 0
        while lineStart < bytes.count {
            var lineEnd = lineStart
            while lineEnd < bytes.count && bytes[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
            let next = lineEnd + 1
            if lineEnd > lineStart && bytes[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
            lineNumber += 1
            defer { lineStart = next }
            let line = bytes[lineStart..<lineEnd]
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) { continue }
            let fields = TabularBenchmark.fields(of: line)
            guard let columns = header else {
                header = fields
                guard let k = fields.firstIndex(of: keyColumn) else {
                    throw TabularBenchmarkError.missingColumn(path: source, column: keyColumn, available: fields)
                }
                guard let m = fields.firstIndex(of: metricColumn) else {
                    throw TabularBenchmarkError.missingColumn(path: source, column: metricColumn, available: fields)
                }
                keyIndex = k
                metricIndex = m
                continue
            }
            guard fields.count == columns.count else {
                throw TabularBenchmarkError.wrongFieldCount(path: source, line: lineNumber,
                                                            expected: columns.count, found: fields.count)
            }
            let rawValue = fields[metricIndex].trimmingCharacters(in: .whitespaces)
            guard let value = Double(rawValue), !value.isNaN else {
                throw TabularBenchmarkError.badNumber(path: source, line: lineNumber, column: metricColumn,
                                                      value: fields[metricIndex])
            }
            let key = fields[keyIndex]
            if let first = lineOfKey[key] {
                throw TabularBenchmarkError.duplicateKey(path: source, line: lineNumber, key: key, firstLine: first)
            }
            lineOfKey[key] = lineNumber
            values[key] = value
        }
        guard header != nil else { throw TabularBenchmarkError.emptyFile(path: source) }
        self.values = values
    }

    /// The metric of the row whose key is `key`, or `nil` if there is none.
    public func lookup(_ key: String) -> Double? { values[key] }

    /// Splits one CSV line (UTF-8 bytes) into fields (RFC 4180 quoting within a line).
    static func fields(of line: ArraySlice<UInt8>) -> [String] {
        let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ",")
        var fields = [String]()
        var current = [UInt8]()
        var inQuotes = false
        var index = line.startIndex
        while index < line.endIndex {
            let byte = line[index]
            if inQuotes {
                if byte == quote {
                    if index + 1 < line.endIndex && line[index + 1] == quote {
                        current.append(quote)
                        index += 1
                    } else {
                        inQuotes = false
                    }
                } else {
                    current.append(byte)
                }
            } else if byte == quote {
                inQuotes = true
            } else if byte == comma {
                fields.append(String(decoding: current, as: UTF8.self))
                current.removeAll(keepingCapacity: true)
            } else {
                current.append(byte)
            }
            index += 1
        }
        fields.append(String(decoding: current, as: UTF8.self))
        return fields
    }
}
