import Datasets
import Engine
import Foundation
import HDF5Kit
import Lab
import NASCore
import Records
import Spaces

/// The `metadata_props` keys NASLab writes into exported models (see docs/onnx.md).
public enum ONNXMetadataKey {
    /// `1`: the version of this metadata layout.
    public static let formatVersion = "naslab.format_version"
    /// `image_classification`, `text_classification` or `tabular_classification`.
    public static let task = "naslab.task"
    /// `image`, `tokens` or `features`.
    public static let inputKind = "naslab.input_kind"
    /// NASLab's sample shape, `CxHxW` (text: `Kx1xL`).
    public static let inputShape = "naslab.input_shape"
    /// `logits`: the output is the network's output before softmax.
    public static let output = "naslab.output"
    /// The class names as a JSON array of strings, in class-index order (absent without names).
    public static let classNames = "naslab.class_names"
    /// The class count.
    public static let classCount = "naslab.class_count"
    /// The search space's name and its architecture text.
    public static let space = "naslab.space"
    public static let architecture = "naslab.architecture"
    /// JSON `{"mean": [...], "std": [...]}` per channel: informational, the graph already applies it.
    public static let normalization = "naslab.normalization"
    /// Text models: the tokenizer as NASLab stores it (JSON: vocabulary, maximum length, subword settings).
    public static let tokenizer = "naslab.tokenizer"
    /// Text models: the vocabulary as a JSON array of strings in id order (`<pad>` = 0, `<unk>` = 1).
    public static let vocabulary = "naslab.vocabulary"
    /// Text models: positions per text (L), ids per position (K), padding and unknown ids.
    public static let maximumLength = "naslab.max_length"
    public static let idsPerToken = "naslab.ids_per_token"
    public static let paddingID = "naslab.padding_id"
    public static let unknownID = "naslab.unknown_id"
    /// What the model was fine-tuned from, when it was.
    public static let initializedFrom = "naslab.initialized_from"
}

extension TrainedModel {
    /// The network, weights, input and metadata of this model, ready for `ONNXExporter`.
    public func onnxNetwork() throws -> ONNXNetwork {
        let space = try SearchSpace.load(yaml: spaceYAML, fileName: spaceName)
        let graph = try space.network(for: try space.parse(architecture), inputShape: inputShape, inputKind: inputKind,
                                      classCount: classCount)
        let input: ONNXInputSpec
        switch inputKind {
        case let .tokens(vocabularySize):
            input = .tokens(idCount: vocabularySize)
        case .image, .features:
            if inputKind.isStandardized, let n = normalization {
                input = .floats(mean: n.mean, std: n.std)
            } else {
                input = .floats(mean: nil, std: nil)
            }
        }
        return ONNXNetwork(graph: graph, tensors: tensors.map { ($0.name, $0.shape, $0.values) }, input: input,
                           metadata: try onnxMetadata(), name: "\(spaceName): \(architecture)",
                           docString: "NASLab \(task) model (space \(spaceName)); input 'input', output 'logits' (before softmax)")
    }

    /// The `metadata_props` of this model's ONNX export.
    public func onnxMetadata() throws -> [(key: String, value: String)] {
        typealias K = ONNXMetadataKey
        var m: [(key: String, value: String)] = [
            (K.formatVersion, "1"), (K.task, task.rawValue), (K.inputKind, inputKind.name), (K.inputShape, inputShape.description),
            (K.output, "logits"), (K.classCount, String(classCount)), (K.space, spaceName), (K.architecture, architecture),
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        if let classNames { m.append((K.classNames, String(decoding: try encoder.encode(classNames), as: UTF8.self))) }
        if inputKind.isStandardized, let normalization {
            m.append((K.normalization, String(decoding: try encoder.encode(normalization), as: UTF8.self)))
        }
        if let tokenizer {
            m.append((K.tokenizer, try tokenizer.encodedJSON()))
            m.append((K.vocabulary, String(decoding: try encoder.encode(tokenizer.vocabulary), as: UTF8.self)))
            m.append((K.maximumLength, String(tokenizer.maximumLength)))
            m.append((K.idsPerToken, String(tokenizer.idsPerToken)))
            m.append((K.paddingID, String(InputKind.paddingToken)))
            m.append((K.unknownID, String(InputKind.unknownToken)))
        }
        if let initializedFrom { m.append((K.initializedFrom, initializedFrom)) }
        return m
    }

    /// This model as an ONNX model (the bytes of a `.onnx` file).
    /// - Throws: `ONNXExportError` (e.g. an unsupported opset), or the errors of decoding the model's architecture.
    public func onnxData(opset: Int = ONNXExporter.defaultOpset) throws -> Data {
        try ONNXExporter(opset: opset, producerVersion: NASLabVersion.current).serialized(try onnxNetwork())
    }
}

/// Finds the model `naslab export-onnx` exports: a model file, or a candidate of an experiment record.
public enum ONNXModelSource {
    /// The model in `path`: a model file (`naslab train --save`, an API training job's weights,
    /// `candidate-<id>.h5`), or an experiment record, whose candidate `candidate` (default: the
    /// record's best) is read from the record's weights directory (`run.h5` → `run.weights/candidate-<id>.h5`).
    /// - Throws: `LabError.invalid` naming the problem (no such file, a candidate without saved
    ///   weights, `candidate` given for a model file, …).
    public static func load(path: String, candidate: Int? = nil) throws -> TrainedModel {
        guard FileManager.default.fileExists(atPath: path) else { throw LabError.invalid("\(path): no such file") }
        let format: String?
        do {
            let file = try H5File.open(path: path)
            defer { try? file.close() }
            format = file.hasAttribute("format") ? try file.stringAttribute("format") : nil
        } catch {
            throw LabError.invalid("\(path): not a NASLab model file or experiment record (not readable as HDF5: \(error))")
        }
        switch format {
        case "naslab-model":
            if let candidate {
                throw LabError.invalid("\(path) is a model file; --candidate \(candidate) applies to experiment records only")
            }
            return try TrainedModel.load(from: path)
        case ExperimentRecord.formatName:
            return try candidateModel(record: path, candidate: candidate)
        default:
            throw LabError.invalid("\(path): not a NASLab model file (format=naslab-model) or experiment record (format=\(ExperimentRecord.formatName))")
        }
    }

    static func candidateModel(record path: String, candidate: Int?) throws -> TrainedModel {
        let record = try ExperimentRecord.openReadOnly(path: path)
        defer { try? record.close() }
        let rows = try record.readCandidates()
        let best = try record.bestCandidateID()
        guard let id = candidate.map(Int64.init) ?? best else {
            throw LabError.invalid("\(path): the record has no best candidate (none completed); pass --candidate ID")
        }
        guard let row = rows.first(where: { $0.id == id }) else {
            throw LabError.invalid("\(path): no candidate \(id)" + (rows.isEmpty ? " (the record has none)" : " (ids 0...\(rows.count - 1))"))
        }
        let directory = ExperimentRunner.weightsDirectory(forRecord: path)
        let file = (directory as NSString).appendingPathComponent("candidate-\(id).h5")
        guard FileManager.default.fileExists(atPath: file) else {
            var message = "\(path): candidate \(id) (\(row.status.rawValue)) has no saved weights: \(file) does not exist"
            let saved = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
                .compactMap { name -> Int? in
                    guard name.hasPrefix("candidate-"), name.hasSuffix(".h5") else { return nil }
                    return Int(name.dropFirst("candidate-".count).dropLast(3))
                }.sorted()
            message += saved.isEmpty ? "; a search keeps the weights of its best candidate only, and none are saved"
                : "; a search keeps the weights of its best candidate only (saved: \(saved.map(String.init).joined(separator: ", ")))"
            throw LabError.invalid(message)
        }
        return try TrainedModel.load(from: file)
    }
}
