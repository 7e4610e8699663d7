import Datasets
import Engine
import Foundation
import HDF5Kit
import NASCore
import Spaces

/// A trained network and everything needed to use it: one HDF5 file with the weights
/// (`/weights/<layer path>/<tensor>`) and, as root attributes, the space (YAML text), the
/// architecture text, the input shape, the classes and the input normalisation.
///
/// Format version 2 (attribute `format_version`) adds `task`, `input_kind` (+ `vocabulary_size`
/// for token inputs), `tokenizer_json` (text models) and `initialized_from` (fine-tuned models).
/// Files without `format_version` (version 1) load as image models, or feature models for F×1×1
/// inputs. Search candidates' weights files (`candidate-<id>.h5`) are model files too.
///
/// Written by `naslab train --save`, search candidates and the API's training jobs (all through
/// `ModelTraining.train`); read by `ModelPredictor`.
public struct TrainedModel: Sendable {
    public var spaceName: String
    public var spaceYAML: String
    public var architecture: String
    public var inputShape: FeatureShape
    public var classCount: Int
    public var classNames: [String]?
    public var normalization: Normalization?
    public var tensors: [NamedTensorValue]
    public var task: TaskKind
    public var inputKind: InputKind
    /// The tokenizer of a text model (stored as the JSON attribute `tokenizer_json`).
    public var tokenizer: Tokenizer?
    /// What the weights were initialised from before training (fine-tuning), e.g. a model file.
    public var initializedFrom: String?

    /// The version `save(to:)` writes.
    public static let formatVersion = 2

    public struct NamedTensorValue: Sendable {
        public var name: String
        public var shape: [Int]
        public var values: [Float]
    }

    public init(spaceName: String, spaceYAML: String, architecture: String, inputShape: FeatureShape, classCount: Int,
                classNames: [String]?, normalization: Normalization?, network: Network, task: TaskKind? = nil,
                inputKind: InputKind? = nil, tokenizer: Tokenizer? = nil, initializedFrom: String? = nil) {
        self.init(spaceName: spaceName, spaceYAML: spaceYAML, architecture: architecture, inputShape: inputShape,
                  classCount: classCount, classNames: classNames, normalization: normalization,
                  tensors: network.namedTensors().map { NamedTensorValue(name: $0.name, shape: $0.shape, values: $0.values) })
        let kind = inputKind ?? tokenizer?.inputKind ?? DatasetMetadata.defaultInputKind(for: inputShape)
        self.inputKind = kind
        self.task = task ?? TaskKind(inputKind: kind)
        self.tokenizer = tokenizer
        self.initializedFrom = initializedFrom
    }

    public func save(to path: String) throws {
        let file = try H5File.create(path: path, truncate: true)
        try file.setAttribute("format", "naslab-model")
        try file.setAttribute("format_version", TrainedModel.formatVersion)
        try file.setAttribute("task", task.rawValue)
        try file.setAttribute("input_kind", inputKind.name)
        if case let .tokens(v) = inputKind { try file.setAttribute("vocabulary_size", v) }
        if let tokenizer { try file.setAttribute("tokenizer_json", try tokenizer.encodedJSON()) }
        if let initializedFrom { try file.setAttribute("initialized_from", initializedFrom) }
        try file.setAttribute("space_name", spaceName)
        try file.setAttribute("space_yaml", spaceYAML)
        try file.setAttribute("architecture", architecture)
        try file.setAttribute("input_shape", inputShape.description)
        try file.setAttribute("class_count", classCount)
        if let classNames { try file.setAttribute("class_names", classNames) }
        if let n = normalization {
            try file.setAttribute("normalization_json", String(decoding: try JSONEncoder().encode(n), as: UTF8.self))
        }
        try file.requireGroup("weights").writeTensors(tensors.map { ($0.name, $0.shape, $0.values) })
        try file.flush()
        try file.close()
    }

    public static func load(from path: String) throws -> TrainedModel {
        let file = try H5File.open(path: path)
        defer { try? file.close() }
        guard file.hasAttribute("format"), (try? file.stringAttribute("format")) == "naslab-model" else {
            throw LabError.invalid("\(path): not a NASLab model file (no format=naslab-model attribute)")
        }
        guard let shape = FeatureShape(parsing: try file.stringAttribute("input_shape")) else {
            throw LabError.invalid("\(path): bad input_shape attribute")
        }
        var normalization: Normalization?
        if file.hasAttribute("normalization_json") {
            normalization = try JSONDecoder().decode(Normalization.self, from: Data(try file.stringAttribute("normalization_json").utf8))
        }
        var model = TrainedModel(
            spaceName: try file.stringAttribute("space_name"), spaceYAML: try file.stringAttribute("space_yaml"),
            architecture: try file.stringAttribute("architecture"), inputShape: shape,
            classCount: try file.intAttribute("class_count"),
            classNames: file.hasAttribute("class_names") ? try file.stringsAttribute("class_names") : nil,
            normalization: normalization, tensors: [])
        let version = file.hasAttribute("format_version") ? try file.intAttribute("format_version") : 1
        guard version <= formatVersion else {
            throw LabError.invalid("\(path): model format version \(version) is newer than this NASLab reads (\(formatVersion))")
        }
        if file.hasAttribute("tokenizer_json") {
            model.tokenizer = try Tokenizer(json: try file.stringAttribute("tokenizer_json"))
        }
        if file.hasAttribute("input_kind") {
            switch try file.stringAttribute("input_kind") {
            case "image": model.inputKind = .image
            case "features": model.inputKind = .features
            case "tokens":
                let v = file.hasAttribute("vocabulary_size") ? try file.intAttribute("vocabulary_size") : model.tokenizer?.vocabularySize
                guard let v else { throw LabError.invalid("\(path): a token model without vocabulary_size") }
                model.inputKind = .tokens(vocabularySize: v)
            case let other: throw LabError.invalid("\(path): unknown input_kind '\(other)'")
            }
        }
        if case .tokens = model.inputKind, model.tokenizer == nil {
            throw LabError.invalid("\(path): a text model without its tokenizer (tokenizer_json)")
        }
        model.task = TaskKind(inputKind: model.inputKind)
        if file.hasAttribute("task") {
            let name = try file.stringAttribute("task")
            guard let t = TaskKind(name: name) else { throw LabError.invalid("\(path): unknown task '\(name)'") }
            model.task = t
        }
        if file.hasAttribute("initialized_from") { model.initializedFrom = try file.stringAttribute("initialized_from") }
        model.tensors = try file.openGroup("weights").readTensors().map { NamedTensorValue(name: $0.name, shape: $0.shape, values: $0.values) }
        return model
    }

    private init(spaceName: String, spaceYAML: String, architecture: String, inputShape: FeatureShape, classCount: Int,
                 classNames: [String]?, normalization: Normalization?, tensors: [NamedTensorValue]) {
        self.spaceName = spaceName
        self.spaceYAML = spaceYAML
        self.architecture = architecture
        self.inputShape = inputShape
        self.classCount = classCount
        self.classNames = classNames
        self.normalization = normalization
        self.tensors = tensors
        self.inputKind = DatasetMetadata.defaultInputKind(for: inputShape)
        self.task = TaskKind(inputKind: inputKind)
        self.tokenizer = nil
        self.initializedFrom = nil
    }

    /// A fresh engine network with these weights.
    public func makeNetwork() throws -> Network {
        let space = try SearchSpace.load(yaml: spaceYAML, fileName: spaceName)
        let graph = try space.network(for: try space.parse(architecture), inputShape: inputShape, inputKind: inputKind,
                                      classCount: classCount)
        var rng = SeededGenerator(seed: 0)
        let network = try Network(graph: graph, classCount: task.isClassification ? classCount : nil, rng: &rng)
        try network.load(namedTensors: tensors.map { ($0.name, $0.shape, $0.values) })
        return network
    }
}

/// Serves predictions from a `TrainedModel`. One predictor is one loaded copy of the network;
/// it is not safe to use from two threads at once (use one per replica).
public final class ModelPredictor {
    public let model: TrainedModel
    private let network: Network
    private let lock = NSLock()

    public struct Prediction: Sendable, Equatable {
        public var label: String
        public var classIndex: Int
        public var score: Double
    }

    public init(model: TrainedModel) throws {
        self.model = model
        self.network = try model.makeNetwork()
    }

    /// Class scores for raw (unnormalised) inputs, each `inputShape.elementCount` values in C×H×W order
    /// (images), F feature values (tabular models; standardised here as in training) or token ids
    /// (text models; `predict(texts:)` tokenizes for you).
    ///
    /// - Parameters:
    ///   - topK: how many classes per input, highest score first (more than the class count: all).
    ///   - temperature: softmax temperature (> 0; 1 is the plain softmax).
    public func predict(_ inputs: [[Float]], topK: Int = 1, temperature: Double = 1) throws -> [[Prediction]] {
        guard model.task.isClassification else {
            throw LabError.invalid("this is a \(model.task) model: it predicts \(model.task == .segmentation ? "masks (predictMasks)" : "boxes (predictBoxes)"), not class scores")
        }
        guard temperature > 0, temperature.isFinite else { throw LabError.invalid("temperature must be positive") }
        return try scores(try prepared(inputs), count: inputs.count, topK: topK, temperature: temperature)
    }

    /// Checks raw inputs (`inputShape.elementCount` finite values each; token ids for text models)
    /// and returns them sample-major, normalised as in training (images per channel, features per
    /// feature; token ids untouched) — the one input path of every prediction.
    private func prepared(_ inputs: [[Float]]) throws -> [Float] {
        let n = model.inputShape.elementCount
        let what: String
        switch model.inputKind {
        case .image: what = "values (\(model.inputShape) image)"
        case .features: what = "features"
        case .tokens: what = "token ids"
        }
        for (i, x) in inputs.enumerated() where x.count != n {
            throw LabError.invalid("input \(i) has \(x.count) values; the model expects \(n) \(what)")
        }
        if case let .tokens(v) = model.inputKind {
            for (i, x) in inputs.enumerated() {
                if let bad = x.first(where: { !($0 >= 0 && $0 < Float(v) && $0 == $0.rounded()) }) {
                    throw LabError.invalid("input \(i): \(bad) is not a token id in 0..<\(v) (use predict(texts:) for text)")
                }
            }
        }
        var features = inputs.flatMap { $0 }
        if let bad = features.firstIndex(where: { !$0.isFinite }) {
            throw LabError.invalid("input \(bad / max(1, n)): value \(features[bad]) is not a finite number")
        }
        if model.inputKind.isStandardized { model.normalization?.apply(to: &features, sampleShape: model.inputShape) }
        return features
    }

    /// The prepared inputs as engine data (labels are placeholders; no targets).
    private func arrays(_ inputs: [[Float]]) throws -> LabeledArrays {
        let features = try prepared(inputs)
        return LabeledArrays(features: features, labels: [Int32](repeating: 0, count: inputs.count), sampleShape: model.inputShape,
                             classCount: model.classCount)
    }

    /// The mask of every raw (unnormalised) image of a segmentation model: per input `H × W` class
    /// ids in row-major order, 0 = background and `1 + k` = class `k` (`model.classNames[k]`) —
    /// `Network.predictMasks` (arg-max per pixel) on the inputs normalised as in training.
    public func predictMasks(_ inputs: [[Float]]) throws -> [[Int32]] {
        guard model.task == .segmentation else {
            throw LabError.invalid("this is a \(model.task) model, not a segmentation model: it does not predict masks")
        }
        guard !inputs.isEmpty else { return [] }
        let data = try arrays(inputs)
        let flat = try lock.withLock { try network.predictMasks(data) }
        let plane = model.inputShape.height * model.inputShape.width
        return (0..<inputs.count).map { Array(flat[($0 * plane)..<(($0 + 1) * plane)]) }
    }

    /// The boxes of every raw (unnormalised) image of a detection model, best score first per
    /// input: `Network.predictBoxes` (CenterNet decoding with `head`'s score threshold and top-k)
    /// on the inputs normalised as in training. Boxes are in input pixels, `x2`/`y2` exclusive,
    /// `classID` 0-based (`model.classNames[classID]`), `image` the input's index.
    public func predictBoxes(_ inputs: [[Float]], head: CenterNet = CenterNet()) throws -> [[ObjectBox]] {
        guard model.task == .detection else {
            throw LabError.invalid("this is a \(model.task) model, not a detection model: it does not predict boxes")
        }
        guard !inputs.isEmpty else { return [] }
        let data = try arrays(inputs)
        let flat = try lock.withLock { try network.predictBoxes(data, head: head, classCount: model.classCount) }
        var out = [[ObjectBox]](repeating: [], count: inputs.count)
        for box in flat where box.image >= 0 && box.image < inputs.count { out[box.image].append(box) }
        return out
    }

    /// The name of object class `k` (`classNames[k]`, else `"k"`), as classification labels are named.
    public func className(_ k: Int) -> String {
        if let names = model.classNames, k >= 0, k < names.count { return names[k] }
        return String(k)
    }

    /// Class scores for texts of a text model, tokenized with the model's tokenizer.
    ///
    /// - Returns: the predictions per text and `tokenCounts`: the tokens fed to the model per text
    ///   (`Tokenizer.encode(_:).tokenCount`, truncated to the sequence length), i.e. `usage.input_tokens`.
    public func predict(texts: [String], topK: Int = 1, temperature: Double = 1) throws
        -> (predictions: [[Prediction]], tokenCounts: [Int]) {
        guard let tokenizer = model.tokenizer, case .tokens = model.inputKind else {
            throw LabError.invalid("this is a \(model.task) model: it takes \(model.inputKind.name) inputs, not text")
        }
        guard temperature > 0, temperature.isFinite else { throw LabError.invalid("temperature must be positive") }
        let (features, counts) = tokenizer.encodeFeatures(texts)
        return (try scores(features, count: texts.count, topK: topK, temperature: temperature), counts)
    }

    private func scores(_ features: [Float], count: Int, topK: Int, temperature: Double) throws -> [[Prediction]] {
        guard count > 0 else { return [] }
        let s = model.inputShape
        let logits: Tensor = try lock.withLock {
            try network.forward(Tensor(shape: [count, s.channels, s.height, s.width], values: features), training: false)
        }
        let k = model.classCount
        return (0..<count).map { i in
            let row = logits.values[(i * k)..<((i + 1) * k)].map { Double($0) / temperature }
            let m = row.max() ?? 0
            let e = row.map { Foundation.exp($0 - m) }
            let sum = e.reduce(0, +)
            let ranked = e.indices.sorted { (e[$0], -$0) > (e[$1], -$1) }.prefix(max(1, min(topK, k)))
            return ranked.map { c in
                Prediction(label: model.classNames?[c] ?? String(c), classIndex: c, score: e[c] / sum)
            }
        }
    }
}
