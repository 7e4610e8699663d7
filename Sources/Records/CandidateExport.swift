import Foundation
import NASCore

/// Candidate tables as CSV and JSON, and back.
///
/// Columns / keys (in this order): `id, architecture, hash, parent_id, status, reason, params, macs,
/// flops, latency_ms_predicted, latency_ms_measured, val_<metric>, test_<metric>, epochs,
/// wall_seconds, worker`, where `<metric>` is the record's score metric (`accuracy` for
/// classification, `miou` for segmentation, `map50` for detection; ``RecordLayout/scoreMetric``). Unknown numbers (NaN, ±∞) are empty CSV fields and JSON `null`.
/// Integral numbers below 2⁵³ are written without a fraction (`1234`, not `1234.0`); other numbers
/// use Swift's shortest round-trip representation, so numbers survive a round trip exactly.
///
/// A record's reported values (``ExperimentRecord/readReported()``: e.g. every column of a tabular
/// benchmark under its own name) follow as extra CSV columns, one per name, and as a `reported`
/// object in JSON; parsing ignores them.
public enum CandidateExport {
    /// Reported values by candidate id, and their names in column order.
    public typealias Reported = (names: [String], values: [Int64: [String: Double]])
    /// The column names of exports of a record scored by `metric` (the HDF5 `candidates` fields).
    public static func columns(metric: String = "accuracy") -> [String] { ExperimentRecord.candidateColumnNames(metric: metric) }

    /// The score metric named by a header's `val_<metric>` column (`nil` if it has none there).
    static func metric(inHeader header: [String]) -> String? {
        let i = ExperimentRecord.validationScoreColumn
        guard header.count > i, header[i].hasPrefix("val_"), header[i].count > 4 else { return nil }
        return String(header[i].dropFirst(4))
    }

    static func fields(_ row: CandidateRow) -> [String?] {
        [String(row.id), row.architecture, row.hash, String(row.parentID), row.status.rawValue, row.reason,
         number(row.params), number(row.macs), number(row.flops), number(row.predictedLatencyMs),
         number(row.measuredLatencyMs), number(row.validationScore), number(row.testScore),
         String(row.epochs), number(row.wallSeconds), row.worker]
    }

    static let stringColumns: Set<Int> = [1, 2, 4, 5, 15]

    /// A finite number as text (`nil` for NaN/∞).
    static func number(_ value: Double) -> String? {
        guard value.isFinite else { return nil }
        if value == value.rounded(), abs(value) < 9_007_199_254_740_992 { return String(Int64(value)) }
        return "\(value)"
    }

    // MARK: CSV

    /// RFC 4180 CSV: a header row, CRLF line ends, fields quoted when they contain `,`, `"`, CR or LF
    /// (quotes doubled). Unknown numbers are empty fields.
    public static func csv(_ rows: [CandidateRow], metric: String = "accuracy", reported: Reported = ([], [:])) -> String {
        let columns = columns(metric: metric)
        func quote(_ field: String) -> String {
            guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
            return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        var lines = [(columns + reported.names).map(quote).joined(separator: ",")]
        for row in rows {
            let extra = reported.names.map { number(reported.values[row.id]?[$0] ?? .nan) }
            lines.append((fields(row) + extra).map { quote($0 ?? "") }.joined(separator: ","))
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// Parses CSV written by ``csv(_:)`` (RFC 4180; CRLF or LF line ends).
    public static func parseCSV(_ text: String) throws -> [CandidateRow] {
        var records = [[String]]()
        var field = "", record = [String]()
        var inQuotes = false, fieldWasQuoted = false
        var characters = Array(text)[...]
        while let c = characters.popFirst() {
            if inQuotes {
                if c == "\"" {
                    if characters.first == "\"" { field.append("\""); characters.removeFirst() } else { inQuotes = false }
                } else {
                    field.append(c)
                }
            } else if c == "\"" && field.isEmpty && !fieldWasQuoted {
                inQuotes = true
                fieldWasQuoted = true
            } else if c == "," {
                record.append(field); field = ""; fieldWasQuoted = false
            } else if c == "\n" || c == "\r\n" || c == "\r" {
                if c == "\r", characters.first == "\n" { characters.removeFirst() }
                record.append(field); records.append(record)
                field = ""; record = []; fieldWasQuoted = false
            } else {
                field.append(c)
            }
        }
        if inQuotes { throw RecordError.export(detail: "CSV ends inside a quoted field") }
        if !field.isEmpty || !record.isEmpty { record.append(field); records.append(record) }
        guard let header = records.first else { throw RecordError.export(detail: "CSV is empty") }
        let columns = columns(metric: metric(inHeader: header) ?? "accuracy")
        guard Array(header.prefix(columns.count)) == columns else {
            throw RecordError.export(detail: "CSV header \(header) differs from \(columns)")
        }
        return try records.dropFirst().enumerated().map { index, values in
            guard values.count == header.count else {
                throw RecordError.export(detail: "CSV row \(index + 1) has \(values.count) fields, expected \(header.count)")
            }
            return try row(from: Array(values.prefix(columns.count)), columns: columns, line: index + 2, isNull: { $0.isEmpty })
        }
    }

    static func row(from values: [String?], columns: [String], line: Int, isNull: (String) -> Bool) throws -> CandidateRow {
        func text(_ i: Int) -> String { values[i] ?? "" }
        func int(_ i: Int) throws -> Int64 {
            guard let v = values[i], let n = Int64(v) else {
                throw RecordError.export(detail: "row \(line): \(columns[i]) '\(values[i] ?? "null")' is not an integer")
            }
            return n
        }
        func double(_ i: Int) throws -> Double {
            guard let v = values[i], !isNull(v) else { return .nan }
            guard let d = Double(v) else { throw RecordError.export(detail: "row \(line): \(columns[i]) '\(v)' is not a number") }
            return d
        }
        guard let status = CandidateStatus(rawValue: text(4)) else {
            throw RecordError.export(detail: "row \(line): unknown status '\(text(4))'")
        }
        return CandidateRow(id: try int(0), architecture: text(1), hash: text(2), parentID: try int(3), status: status,
                            reason: text(5), params: try double(6), macs: try double(7), flops: try double(8),
                            predictedLatencyMs: try double(9), measuredLatencyMs: try double(10),
                            validationScore: try double(11), testScore: try double(12), epochs: try int(13),
                            wallSeconds: try double(14), worker: text(15))
    }

    // MARK: JSON

    /// A JSON array of objects, one per row, keys as in ``columns``; unknown numbers are `null`.
    public static func json(_ rows: [CandidateRow], metric: String = "accuracy", reported: Reported = ([], [:])) -> String {
        rows.isEmpty ? "[]\n" : "[\n" + rows.map { "  " + jsonObject($0, metric: metric, reported: reported) }.joined(separator: ",\n") + "\n]\n"
    }

    /// One row as a single-line JSON object (the format of JSON Lines logs).
    public static func jsonObject(_ row: CandidateRow, metric: String = "accuracy", reported: Reported = ([], [:])) -> String {
        func escape(_ s: String) -> String {
            var out = "\""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
                default: out.unicodeScalars.append(scalar)
                }
            }
            return out + "\""
        }
        let pairs = zip(columns(metric: metric), fields(row)).enumerated().map { index, pair -> String in
            let value: String
            if let text = pair.1 { value = stringColumns.contains(index) ? escape(text) : text } else { value = "null" }
            return escape(pair.0) + ": " + value
        }
        guard !reported.names.isEmpty else { return "{" + pairs.joined(separator: ", ") + "}" }
        let values = reported.names.map { escape($0) + ": " + (number(reported.values[row.id]?[$0] ?? .nan) ?? "null") }
        return "{" + pairs.joined(separator: ", ") + ", \"reported\": {" + values.joined(separator: ", ") + "}}"
    }

    struct JSONRow: Decodable {
        let id: Int64, architecture: String, hash: String, parent_id: Int64, status: String, reason: String
        let params: Double?, macs: Double?, flops: Double?, latency_ms_predicted: Double?, latency_ms_measured: Double?
        let validationScore: Double?, testScore: Double?, epochs: Int64, wall_seconds: Double?, worker: String

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: AnyCodingKey.self)
            func k(_ s: String) -> AnyCodingKey { AnyCodingKey(s) }
            id = try c.decode(Int64.self, forKey: k("id"))
            architecture = try c.decode(String.self, forKey: k("architecture"))
            hash = try c.decode(String.self, forKey: k("hash"))
            parent_id = try c.decode(Int64.self, forKey: k("parent_id"))
            status = try c.decode(String.self, forKey: k("status"))
            reason = try c.decode(String.self, forKey: k("reason"))
            params = try c.decodeIfPresent(Double.self, forKey: k("params"))
            macs = try c.decodeIfPresent(Double.self, forKey: k("macs"))
            flops = try c.decodeIfPresent(Double.self, forKey: k("flops"))
            latency_ms_predicted = try c.decodeIfPresent(Double.self, forKey: k("latency_ms_predicted"))
            latency_ms_measured = try c.decodeIfPresent(Double.self, forKey: k("latency_ms_measured"))
            // The score columns are named by the record's metric: val_<metric>, test_<metric>.
            guard let metric = c.allKeys.map(\.stringValue).first(where: { $0.hasPrefix("val_") })?.dropFirst(4) else {
                throw DecodingError.keyNotFound(k("val_<metric>"), .init(codingPath: c.codingPath, debugDescription: "no val_<metric> key"))
            }
            validationScore = try c.decodeIfPresent(Double.self, forKey: k("val_" + metric))
            testScore = try c.decodeIfPresent(Double.self, forKey: k("test_" + metric))
            epochs = try c.decode(Int64.self, forKey: k("epochs"))
            wall_seconds = try c.decodeIfPresent(Double.self, forKey: k("wall_seconds"))
            worker = try c.decode(String.self, forKey: k("worker"))
        }
    }

    /// Parses JSON written by ``json(_:metric:reported:)`` (`null` numbers become NaN).
    public static func parseJSON(_ text: String) throws -> [CandidateRow] {
        let decoded: [JSONRow]
        do {
            decoded = try JSONDecoder().decode([JSONRow].self, from: Data(text.utf8))
        } catch {
            throw RecordError.export(detail: "JSON does not match the candidate export: \(error)")
        }
        return try decoded.enumerated().map { index, r in
            guard let status = CandidateStatus(rawValue: r.status) else {
                throw RecordError.export(detail: "object \(index): unknown status '\(r.status)'")
            }
            return CandidateRow(id: r.id, architecture: r.architecture, hash: r.hash, parentID: r.parent_id, status: status,
                                reason: r.reason, params: r.params ?? .nan, macs: r.macs ?? .nan, flops: r.flops ?? .nan,
                                predictedLatencyMs: r.latency_ms_predicted ?? .nan, measuredLatencyMs: r.latency_ms_measured ?? .nan,
                                validationScore: r.validationScore ?? .nan, testScore: r.testScore ?? .nan,
                                epochs: r.epochs, wallSeconds: r.wall_seconds ?? .nan, worker: r.worker)
        }
    }

    /// Writes ``csv(_:)`` of `rows` to `path`.
    public static func writeCSV(_ rows: [CandidateRow], to path: String) throws {
        try Data(csv(rows).utf8).write(to: URL(fileURLWithPath: path))
    }

    /// Writes ``json(_:)`` of `rows` to `path`.
    public static func writeJSON(_ rows: [CandidateRow], to path: String) throws {
        try Data(json(rows).utf8).write(to: URL(fileURLWithPath: path))
    }
}
