import Datasets
import Engine
import Estimators
import Foundation
import NASCore
import Spaces

/// `naslab train`: trains one architecture of a space (or a fixed network) on a dataset.
public struct TrainingRun {
    public struct Options: Sendable {
        public var space: String
        public var architecture: String?
        public var dataset: String = "digits"
        public var validationSplit: Double = 0.1
        public var training = ExperimentConfig.TrainingSettings()
        public var seed: UInt64 = 0
        public var threads: Int = ProcessInfo.processInfo.activeProcessorCount
        public var saveWeights: String?
        public var progress = true

        public init(space: String) { self.space = space }
    }

    /// The metrics `--json` prints.
    public struct Metrics: Codable, Sendable {
        public var space: String
        public var architecture: String
        public var dataset: String
        public var status: String
        public var reason: String?
        public var params: Int
        public var macs: Int
        public var epochs: Int
        public var train_loss: Double
        public var train_accuracy: Double
        public var val_loss: Double
        public var val_accuracy: Double
        public var test_accuracy: Double
        public var wall_seconds: Double
        public var samples_per_second: Double
        public var seed: UInt64
        public var threads: Int
        public var weights: String?
    }

    public static func run(_ o: Options) throws -> Metrics {
        let space = try SpaceReference.resolve(o.space).space
        let architecture: Architecture
        if let text = o.architecture {
            architecture = try space.parse(text)
        } else if space.isFixed {
            architecture = try space.parse(SearchSpace.fixedArchitectureText)
        } else {
            var rng = SeededGenerator(seed: o.seed)
            let example = space.text(of: space.sample(using: &rng))
            throw LabError.invalid("space '\(space.name)' has \(space.decisions.count) decisions: pass --arch TEXT, e.g. --arch '\(example)'")
        }
        EngineConfiguration.setThreadCount(o.threads)
        let data = try Dataset.load(name: o.dataset, validationSplit: o.validationSplit, seed: o.seed)
        let graph = try space.network(for: architecture, inputShape: data.metadata.sampleShape, classCount: data.metadata.classCount)
        let cost = try graph.cost()
        var rng = SeededGenerator(seed: o.seed)
        let network = try Network(graph: graph, classCount: data.metadata.classCount, rng: &rng)
        let trainer = Trainer(configuration: o.training.engineConfiguration(seed: o.seed, threads: o.threads),
                              observers: o.progress ? [ProgressBar()] : [])
        let result = try trainer.fit(network, train: data.train, validation: data.validation, test: data.test, rng: &rng)
        var reason: String?
        if case let .failed(r) = result.status { reason = r }
        if let path = o.saveWeights, reason == nil {
            let reference = try SpaceReference.resolve(o.space)
            try TrainedModel(spaceName: o.space, spaceYAML: reference.yaml, architecture: space.text(of: architecture),
                             inputShape: data.metadata.sampleShape, classCount: data.metadata.classCount,
                             classNames: data.metadata.classNames, normalization: data.normalization, network: network)
                .save(to: path)
        }
        let last = result.epochs.last
        let trainingSeconds = result.epochs.reduce(0) { $0 + $1.seconds }
        return Metrics(
            space: o.space, architecture: space.text(of: architecture), dataset: data.metadata.name,
            status: reason == nil ? "completed" : "failed", reason: reason,
            params: cost.parameters, macs: cost.multiplyAccumulates, epochs: result.epochs.count,
            train_loss: last?.trainLoss ?? .nan, train_accuracy: last?.trainAccuracy ?? .nan,
            val_loss: last?.validationLoss ?? .nan, val_accuracy: last?.validationAccuracy ?? .nan,
            test_accuracy: result.testAccuracy ?? .nan, wall_seconds: result.wallSeconds,
            samples_per_second: trainingSeconds > 0 ? Double(data.train.count * result.epochs.count) / trainingSeconds : .nan,
            seed: o.seed, threads: o.threads, weights: reason == nil ? o.saveWeights : nil)
    }
}

/// `naslab estimate`: params, MACs/FLOPs and measured latency of architectures, without training.
public struct CostEstimate: Codable, Sendable {
    public var architecture: String
    public var params: Int
    public var macs: Int
    public var flops: Int
    public var peak_activation_bytes: Int
    public var latency_ms_measured: Double?
    public var latency_ms_predicted: Double?

    public static func estimate(space name: String, architectures texts: [String]?, random count: Int?, seed: UInt64,
                                inputShape: FeatureShape, classCount: Int, measure: Bool,
                                threads: Int) throws -> [CostEstimate] {
        let space = try SpaceReference.resolve(name).space
        var archs = [Architecture]()
        if let texts { archs = try texts.map { try space.parse($0) } }
        if let count {
            var rng = SeededGenerator(seed: seed)
            for _ in 0..<count { archs.append(space.sample(using: &rng)) }
        }
        if archs.isEmpty {
            guard space.isFixed else { throw LabError.invalid("space '\(space.name)' has decisions: pass --arch TEXT or --random N") }
            archs = [try space.parse(SearchSpace.fixedArchitectureText)]
        }
        return try archs.map { a in
            let graph = try space.network(for: a, inputShape: inputShape, classCount: classCount)
            let cost = try graph.cost()
            let latency = measure ? try LatencyMeasurement.measure(graph, batchSize: 1, threads: threads).medianMilliseconds : nil
            return CostEstimate(architecture: space.text(of: a), params: cost.parameters, macs: cost.multiplyAccumulates,
                                flops: cost.flops, peak_activation_bytes: cost.peakActivationBytes,
                                latency_ms_measured: latency, latency_ms_predicted: nil)
        }
    }
}

/// One line per shipped space for `naslab spaces`.
public struct SpaceListing: Codable, Sendable {
    public var name: String
    public var path: String
    public var size: String
    public var decisions: Int
    public var description: String

    public static let shippedNames = ["small", "medium", "large", "nasbench201", "reference/cnn", "reference/resnet18",
                                      "reference/mobilenet_v2"]

    public static func shipped() throws -> [SpaceListing] {
        try shippedNames.map { name in
            let ref = try SpaceReference.resolve(name)
            return SpaceListing(name: name, path: ref.path ?? "", size: ref.space.size.description,
                                decisions: ref.space.decisions.count,
                                description: ref.space.description.split(separator: "\n").first.map(String.init) ?? "")
        }
    }
}

/// Parses `CxHxW` for tools that do not import NASCore.
public enum FeatureShapeParser {
    public static func parse(_ text: String) -> FeatureShape? { FeatureShape(parsing: text) }
}
