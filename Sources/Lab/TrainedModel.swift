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
/// Written by `naslab train --save` and by the API's training jobs; read by `ModelPredictor`.
public struct TrainedModel: Sendable {
    public var spaceName: String
    public var spaceYAML: String
    public var architecture: String
    public var inputShape: FeatureShape
    public var classCount: Int
    public var classNames: [String]?
    public var normalization: Normalization?
    public var tensors: [NamedTensorValue]

    public struct NamedTensorValue: Sendable {
        public var name: String
        public var shape: [Int]
        public var values: [Float]
    }

    public init(spaceName: String, spaceYAML: String, architecture: String, inputShape: FeatureShape, classCount: Int,
                classNames: [String]?, normalization: Normalization?, network: Network) {
        self.init(spaceName: spaceName, spaceYAML: spaceYAML, architecture: architecture, inputShape: inputShape,
                  classCount: classCount, classNames: classNames, normalization: normalization,
                  tensors: network.namedTensors().map { NamedTensorValue(name: $0.name, shape: $0.shape, values: $0.values) })
    }

    public func save(to path: String) throws {
        let file = try H5File.create(path: path, truncate: true)
        try file.setAttribute("format", "naslab-model")
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
    }

    /// A fresh engine network with these weights.
    public func makeNetwork() throws -> Network {
        let space = try SearchSpace.load(yaml: spaceYAML, fileName: spaceName)
        let graph = try space.network(for: try space.parse(architecture), inputShape: inputShape, classCount: classCount)
        var rng = SeededGenerator(seed: 0)
        let network = try Network(graph: graph, classCount: classCount, rng: &rng)
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

    /// Class scores for raw (unnormalised) inputs, each `inputShape.elementCount` values in C×H×W order.
    ///
    /// - Parameters:
    ///   - topK: how many classes per input, highest score first.
    ///   - temperature: softmax temperature (> 0; 1 is the plain softmax).
    public func predict(_ inputs: [[Float]], topK: Int = 1, temperature: Double = 1) throws -> [[Prediction]] {
        let n = model.inputShape.elementCount
        guard temperature > 0, temperature.isFinite else { throw LabError.invalid("temperature must be positive") }
        for (i, x) in inputs.enumerated() where x.count != n {
            throw LabError.invalid("input \(i) has \(x.count) values; the model expects \(n) (\(model.inputShape))")
        }
        var features = inputs.flatMap { $0 }
        model.normalization?.apply(to: &features, sampleShape: model.inputShape)
        let s = model.inputShape
        let logits: Tensor = try lock.withLock {
            try network.forward(Tensor(shape: [inputs.count, s.channels, s.height, s.width], values: features), training: false)
        }
        let k = model.classCount
        return (0..<inputs.count).map { i in
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
