import Datasets
import Engine
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
///
/// Dense models read the same image inputs (`/x` of an HDF5 file, e.g. a scene file) and apply the
/// model's normalisation exactly as classification does (`ModelPredictor`):
/// - segmentation: ``predictMasks(_:inputPath:batchSize:)`` and ``writeMasks(_:model:to:)`` — an
///   HDF5 file with `/masks` (N×H×W class ids: 0 background, `1 + k` class `k`; uint8 when every id
///   fits, else int32) and the dataset layout's root attribute `class_names` (or `class_count`);
/// - detection: ``predictBoxes(_:inputPath:scoreThreshold:maxDetections:batchSize:)`` — one ``DetectionRow`` per input.
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

    // MARK: - Dense models

    /// The raw images of `inputPath` for an image model (see the type's documentation).
    public static func readImages(_ inputPath: String, for model: TrainedModel) throws -> [[Float]] {
        guard case .image = model.inputKind, case let .values(values) = try readInputs(inputPath, for: model) else {
            throw LabError.invalid("a \(model.task) model takes images; this model takes \(model.inputKind.name) inputs")
        }
        return values
    }

    /// The predicted mask of every image of `inputPath` (segmentation models): `N × H × W` class ids,
    /// sample-major, row-major within a mask.
    public static func predictMasks(_ predictor: ModelPredictor, inputPath: String, batchSize: Int = 256) throws -> [Int32] {
        guard predictor.model.task == .segmentation else {
            throw LabError.invalid("this is a \(predictor.model.task) model, not a segmentation model")
        }
        let images = try readImages(inputPath, for: predictor.model)
        var masks = [Int32]()
        masks.reserveCapacity(images.count * predictor.model.inputShape.height * predictor.model.inputShape.width)
        for start in stride(from: 0, to: images.count, by: batchSize) {
            for mask in try predictor.predictMasks(Array(images[start..<min(images.count, start + batchSize)])) {
                masks += mask
            }
        }
        return masks
    }

    /// Writes `masks` (`N × H × W` for `model`'s H×W) to `path` as HDF5, atomically (a temporary file
    /// next to it, renamed): `/masks` uint8 when every id is in 0…255, else int32; root attribute
    /// `class_names` (the object classes, background excluded) or, without names, `class_count`;
    /// `task` = `segmentation`.
    public static func writeMasks(_ masks: [Int32], model: TrainedModel, to path: String) throws {
        let h = model.inputShape.height, w = model.inputShape.width
        guard h * w > 0, masks.count % (h * w) == 0 else {
            throw LabError.invalid("\(masks.count) mask values are not whole \(h)×\(w) masks")
        }
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp").path
        do {
            let file = try H5File.create(path: temporary, truncate: true)
            let shape = [masks.count / (h * w), h, w]
            if masks.allSatisfy({ $0 >= 0 && $0 <= 255 }) {
                try file.write("masks", values: masks.map { UInt8($0) }, shape: shape)
            } else {
                try file.write("masks", values: masks, shape: shape)
            }
            if let names = model.classNames { try file.setAttribute("class_names", names) } else { try file.setAttribute("class_count", model.classCount) }
            try file.setAttribute("task", TaskKind.segmentation.rawValue)
            try file.flush()
            try file.close()
            guard rename(temporary, path) == 0 else { throw LabError.invalid("\(path): cannot move '\(temporary)' into place (errno \(errno))") }
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
    }

    /// One JSON line of a detection model's predictions: the boxes of input `index`, best score
    /// first; `boxes[i]` is `[x1, y1, x2, y2]` in input pixels (`x2`/`y2` exclusive), `scores[i]` its
    /// score (sigmoid of the centre heatmap peak), `labels[i]` its class name (the decimal class id
    /// when the model has no class names, as classification labels) and `class_ids[i]` its 0-based class.
    public struct DetectionRow: Codable, Sendable, Equatable {
        public var index: Int
        public var boxes: [[Float]]
        public var scores: [Float]
        public var labels: [String]
        public var class_ids: [Int]
    }

    /// The CenterNet decoding defaults of evaluation (`CenterNet().scoreThreshold`, `.topK`).
    public static let defaultScoreThreshold = CenterNet().scoreThreshold
    public static let defaultMaxDetections = CenterNet().topK

    /// The boxes found in every image of `inputPath` (detection models), decoded as evaluation does
    /// (`CenterNet`) with at most `maxDetections` boxes of score ≥ `scoreThreshold` per input.
    public static func predictBoxes(_ predictor: ModelPredictor, inputPath: String,
                                    scoreThreshold: Float = defaultScoreThreshold, maxDetections: Int = defaultMaxDetections,
                                    batchSize: Int = 256) throws -> [DetectionRow] {
        var head = CenterNet()
        head.scoreThreshold = scoreThreshold
        head.topK = maxDetections
        guard predictor.model.task == .detection else {
            throw LabError.invalid("this is a \(predictor.model.task) model, not a detection model")
        }
        let images = try readImages(inputPath, for: predictor.model)
        var rows = [DetectionRow]()
        for start in stride(from: 0, to: images.count, by: batchSize) {
            let found = try predictor.predictBoxes(Array(images[start..<min(images.count, start + batchSize)]), head: head)
            for (i, boxes) in found.enumerated() {
                rows.append(DetectionRow(index: start + i, boxes: boxes.map { [$0.x1, $0.y1, $0.x2, $0.y2] },
                                         scores: boxes.map(\.score), labels: boxes.map { predictor.className($0.classID) },
                                         class_ids: boxes.map(\.classID)))
            }
        }
        return rows
    }

    /// Detection rows as JSON lines (sorted keys, one line per input, ending in a newline).
    public static func render(_ rows: [DetectionRow]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try rows.map { String(decoding: try encoder.encode($0), as: UTF8.self) + "\n" }.joined()
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
