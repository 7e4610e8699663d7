import Datasets
import Foundation
import HDF5Kit
import NASCore

/// `naslab predict MODEL --input FILE`: predictions for every input of a file.
///
/// Input files, by the model's input kind:
/// - text models: a CSV file (name ending in `.csv`) with a `text` column (other columns ignored),
///   or any other file: one text per line (empty lines are inputs too, except a final newline);
/// - tabular (feature) models: a CSV with a header row and one numeric column per feature (a
///   `label` column, if present, is ignored); raw values, the model standardises them;
/// - image models: an HDF5 file with a float dataset `/x` of shape N×C×H×W (or N×(C·H·W)).
///
/// Output: `jsonl`, one line per input `{"index":i,"predictions":[{"class_index":c,"label":…,"score":p},…]}`
/// (softmax probabilities, descending; text models add `"input_tokens"`), or `csv` with the header
/// `index,rank,label,class_index,score` (rank 1 = best).
public enum BatchPrediction {
    public enum Format: String, CaseIterable, Sendable {
        case jsonl, csv
    }

    public struct Item: Codable, Sendable, Equatable {
        public var label: String
        public var class_index: Int
        public var score: Double
    }

    public struct Row: Codable, Sendable, Equatable {
        public var index: Int
        public var predictions: [Item]
        public var input_tokens: Int?
    }

    /// The inputs of `path` for `model` (see the type's documentation).
    public enum Inputs {
        case texts([String])
        case values([[Float]])
    }

    public static func readInputs(_ path: String, for model: TrainedModel) throws -> Inputs {
        guard FileManager.default.fileExists(atPath: path) else { throw LabError.invalid("\(path): no such file") }
        switch model.inputKind {
        case .tokens:
            if path.lowercased().hasSuffix(".csv") {
                let (records, header) = try csv(path)
                let names = header.fields.map { $0.trimmingCharacters(in: .whitespaces) }
                guard let column = names.firstIndex(of: "text") else {
                    throw LabError.invalid("\(path):\(header.line): no 'text' column (columns: \(names.joined(separator: ", "))); "
                        + "a text model reads the 'text' column of a CSV, or a plain file with one text per line")
                }
                return .texts(try records.map { r in
                    guard column < r.fields.count else {
                        throw LabError.invalid("\(path):\(r.line): the row has \(r.fields.count) fields, the header \(names.count)")
                    }
                    return r.fields[column]
                })
            }
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                throw LabError.invalid("\(path): not readable UTF-8 text")
            }
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
                $0.hasSuffix("\r") ? String($0.dropLast()) : String($0)
            }
            if lines.last == "" { lines.removeLast() }
            return .texts(lines)
        case .features:
            let (records, header) = try csv(path)
            let names = header.fields.map { $0.trimmingCharacters(in: .whitespaces) }
            let columns = names.indices.filter { names[$0] != "label" }
            let n = model.inputShape.elementCount
            guard columns.count == n else {
                throw LabError.invalid("\(path):\(header.line): \(columns.count) feature columns (besides 'label'); the model expects \(n)")
            }
            return .values(try records.map { r in
                guard r.fields.count == names.count else {
                    throw LabError.invalid("\(path):\(r.line): the row has \(r.fields.count) fields, the header \(names.count)")
                }
                return try columns.map { c in
                    let field = r.fields[c].trimmingCharacters(in: .whitespaces)
                    guard let v = Double(field), v.isFinite else {
                        throw LabError.invalid("\(path):\(r.fieldLines[c]): column \(c + 1) ('\(names[c])'): '\(field)' is not a finite number")
                    }
                    return Float(v)
                }
            })
        case .image:
            let x: HDF5Array<Float>
            do {
                let file = try H5File.open(path: path)
                defer { try? file.close() }
                x = try file.read("x", as: Float.self)
            } catch {
                throw LabError.invalid("\(path): an image model reads an HDF5 file with a float dataset /x (N×C×H×W): \(error)")
            }
            let n = model.inputShape.elementCount
            let expected = model.inputShape
            if x.shape.count == 4, Array(x.shape.dropFirst()) != [expected.channels, expected.height, expected.width] {
                let channelsLast = Array(x.shape.dropFirst()) == [expected.height, expected.width, expected.channels]
                throw LabError.invalid("\(path): /x has shape \(x.shape); the model expects N×\(expected)"
                    + (channelsLast ? " (channels first: this file looks channels-last, N×H×W×C; transpose it, e.g. with numpy x.transpose(0, 3, 1, 2))" : ""))
            }
            guard let count = x.shape.first, count > 0, x.values.count == count * n else {
                throw LabError.invalid("\(path): /x has shape \(x.shape); the model expects N×\(model.inputShape)")
            }
            return .values((0..<count).map { Array(x.values[($0 * n)..<(($0 + 1) * n)]) })
        }
    }

    private static func csv(_ path: String) throws -> (records: ArraySlice<CSVLoader.Record>, header: CSVLoader.Record) {
        guard let data = FileManager.default.contents(atPath: path) else { throw LabError.invalid("\(path): not readable") }
        let records = try CSVLoader.parse(data, path: path).records
        guard let header = records.first else { throw LabError.invalid("\(path):1: empty file: expected a header row") }
        return (records.dropFirst(), header)
    }

    /// Predictions for every input of `inputPath`.
    public static func predict(_ predictor: ModelPredictor, inputPath: String, topK: Int,
                               batchSize: Int = 256) throws -> [Row] {
        guard topK >= 1 else { throw LabError.invalid("--top-k must be at least 1") }
        var rows = [Row]()
        switch try readInputs(inputPath, for: predictor.model) {
        case let .texts(texts):
            for start in stride(from: 0, to: texts.count, by: batchSize) {
                let chunk = Array(texts[start..<min(texts.count, start + batchSize)])
                let (p, counts) = try predictor.predict(texts: chunk, topK: topK)
                for i in chunk.indices { rows.append(row(start + i, p[i], tokens: counts[i])) }
            }
        case let .values(values):
            for start in stride(from: 0, to: values.count, by: batchSize) {
                let chunk = Array(values[start..<min(values.count, start + batchSize)])
                let p = try predictor.predict(chunk, topK: topK)
                for i in chunk.indices { rows.append(row(start + i, p[i], tokens: nil)) }
            }
        }
        return rows
    }

    private static func row(_ index: Int, _ p: [ModelPredictor.Prediction], tokens: Int?) -> Row {
        Row(index: index, predictions: p.map { Item(label: $0.label, class_index: $0.classIndex, score: $0.score) },
            input_tokens: tokens)
    }

    /// The rows as `format` text (ending in a newline).
    public static func render(_ rows: [Row], format: Format) throws -> String {
        switch format {
        case .jsonl:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return try rows.map { String(decoding: try encoder.encode($0), as: UTF8.self) + "\n" }.joined()
        case .csv:
            var out = "index,rank,label,class_index,score\n"
            for r in rows {
                for (rank, p) in r.predictions.enumerated() {
                    out += "\(r.index),\(rank + 1),\(csvField(p.label)),\(p.class_index),\(p.score)\n"
                }
            }
            return out
        }
    }

    static func csvField(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
