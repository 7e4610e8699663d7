import Datasets
import Engine
import Estimators
import Foundation
import NASCore
import Spaces

/// `naslab train`: trains one architecture of a space (or a fixed network) on a dataset.
public struct TrainingRun {
    public struct Options: Sendable {
        /// A space file or shipped name; `nil` with `initFrom`: the model's space and architecture.
        public var space: String?
        public var architecture: String?
        public var dataset: String = "digits"
        public var validationSplit: Double = 0.1
        /// Explicit hyperparameters; when never set, the space's task's `TaskKind.defaultTraining`
        /// with `overrides` applied.
        public var training: ExperimentConfig.TrainingSettings {
            get { explicitTraining ?? ExperimentConfig.TrainingSettings() }
            set { explicitTraining = newValue }
        }
        public var explicitTraining: ExperimentConfig.TrainingSettings?
        /// Single hyperparameters given on the command line (applied to the task defaults).
        public var overrides = TrainingOverrides()
        public var seed: UInt64 = 0
        public var threads: Int = ProcessInfo.processInfo.activeProcessorCount
        public var saveWeights: String?
        /// Fine-tune: a model file whose weights initialise the network.
        public var initFrom: String?
        public var progress = true

        public init(space: String?) { self.space = space }
    }

    /// Hyperparameters given one by one (`nil`: keep the task's default).
    public struct TrainingOverrides: Sendable {
        public var epochs: Int?
        public var batchSize: Int?
        public var learningRate: Double?
        public var optimizer: String?
        public var weightDecay: Double?
        public var schedule: String?

        public init() {}

        public func applied(to base: ExperimentConfig.TrainingSettings) -> ExperimentConfig.TrainingSettings {
            var t = base
            if let epochs { t.epochs = epochs }
            if let batchSize { t.batchSize = batchSize }
            if let learningRate { t.learningRate = learningRate }
            if let optimizer { t.optimizer = optimizer }
            if let weightDecay { t.weightDecay = weightDecay }
            if let schedule { t.schedule = schedule }
            return t
        }
    }

    /// The metrics `--json` prints. Classification prints `val_accuracy`/`test_accuracy`; other
    /// tasks print their own metrics (`TaskKind.metrics`) as `val_<metric>`/`test_<metric>`
    /// (`test_miou`, `test_pixel_accuracy`, `test_map50`, `test_map`, …) at the top level.
    public struct Metrics: Encodable, Sendable {
        public var space: String
        public var architecture: String
        public var dataset: String
        public var task: String?
        public var status: String
        public var reason: String?
        public var params: Int
        public var macs: Int
        public var epochs: Int
        public var train_loss: Double
        /// Samples (classification) or pixels (segmentation) right in the last epoch; NaN for detection.
        public var train_accuracy: Double
        public var val_loss: Double
        public var val_accuracy: Double?
        public var test_accuracy: Double?
        /// The task's metrics on the validation and test splits, by printed name (`val_miou`, …).
        public var taskMetrics: [String: Double]
        public var wall_seconds: Double
        public var samples_per_second: Double
        public var seed: UInt64
        public var threads: Int
        public var weights: String?
        /// Fine-tuning: the model file and the validation score (the task's primary metric) before training.
        public var initialized_from: String?
        public var initial_val_accuracy: Double?
        public var training: ExperimentConfig.TrainingSettings?

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: AnyCodingKey.self)
            try c.encode(space, forKey: AnyCodingKey("space"))
            try c.encode(architecture, forKey: AnyCodingKey("architecture"))
            try c.encode(dataset, forKey: AnyCodingKey("dataset"))
            try c.encodeIfPresent(task, forKey: AnyCodingKey("task"))
            try c.encode(status, forKey: AnyCodingKey("status"))
            try c.encodeIfPresent(reason, forKey: AnyCodingKey("reason"))
            try c.encode(params, forKey: AnyCodingKey("params"))
            try c.encode(macs, forKey: AnyCodingKey("macs"))
            try c.encode(epochs, forKey: AnyCodingKey("epochs"))
            try c.encode(train_loss, forKey: AnyCodingKey("train_loss"))
            try c.encode(train_accuracy, forKey: AnyCodingKey("train_accuracy"))
            try c.encode(val_loss, forKey: AnyCodingKey("val_loss"))
            try c.encodeIfPresent(val_accuracy, forKey: AnyCodingKey("val_accuracy"))
            try c.encodeIfPresent(test_accuracy, forKey: AnyCodingKey("test_accuracy"))
            for (name, value) in taskMetrics { try c.encode(value, forKey: AnyCodingKey(name)) }
            try c.encode(wall_seconds, forKey: AnyCodingKey("wall_seconds"))
            try c.encode(samples_per_second, forKey: AnyCodingKey("samples_per_second"))
            try c.encode(seed, forKey: AnyCodingKey("seed"))
            try c.encode(threads, forKey: AnyCodingKey("threads"))
            try c.encodeIfPresent(weights, forKey: AnyCodingKey("weights"))
            try c.encodeIfPresent(initialized_from, forKey: AnyCodingKey("initialized_from"))
            try c.encodeIfPresent(initial_val_accuracy, forKey: AnyCodingKey("initial_val_accuracy"))
            try c.encodeIfPresent(training, forKey: AnyCodingKey("training"))
        }

        /// One line for people: the task's test and validation metrics, loss, time.
        public var summary: String {
            var scores = [String]()
            if let t = test_accuracy, let v = val_accuracy {
                scores = [String(format: "test accuracy %.4f", t), String(format: "validation accuracy %.4f", v)]
            } else {
                scores = taskMetrics.sorted { ($0.key.hasPrefix("test_") ? 0 : 1, $0.key) < ($1.key.hasPrefix("test_") ? 0 : 1, $1.key) }
                    .map { String(format: "%@ %.4f", $0.key, $0.value) }
            }
            return "\(status): " + (scores + [String(format: "train loss %.4f, %d epochs in %.1f s (%.0f samples/s)",
                                                    train_loss, epochs, wall_seconds, samples_per_second)]).joined(separator: ", ")
        }
    }

    public static func run(_ o: Options) throws -> Metrics {
        var job = TrainingJob(spaceName: o.space, architecture: o.architecture, dataset: o.dataset)
        job.validationSplit = o.validationSplit
        job.datasetSeed = o.seed
        job.seed = o.seed
        job.threads = o.threads
        if let path = o.initFrom {
            job.initialModel = try TrainedModel.load(from: path)
            job.initialModelName = path
        }
        if let explicit = o.explicitTraining {
            job.training = o.overrides.applied(to: explicit)
        } else {
            let task: TaskKind
            if let name = o.space {
                task = try SpaceReference.resolve(name).space.task
            } else if let model = job.initialModel {
                task = try SpaceReference.fromText(model.spaceYAML, name: model.spaceName).space.task
            } else {
                throw LabError.invalid("pass --space (or --init-from MODEL to fine-tune a model in its own space)")
            }
            job.training = o.overrides.applied(to: task.defaultTraining)
        }
        let outcome = try ModelTraining.train(job, datasets: DatasetCache(), observers: o.progress ? [ProgressBar()] : [])
        let result = outcome.result
        let reason = outcome.failureReason
        if let path = o.saveWeights, reason == nil { try outcome.model.save(to: path) }
        let last = result.epochs.last
        let classification = outcome.model.task.isClassification
        let trainingSeconds = result.epochs.reduce(0) { $0 + $1.seconds }
        return Metrics(
            space: outcome.model.spaceName, architecture: outcome.architecture, dataset: outcome.datasetMetadata.name,
            task: outcome.model.task.rawValue,
            status: reason == nil ? "completed" : "failed", reason: reason,
            params: outcome.cost.parameters, macs: outcome.cost.multiplyAccumulates, epochs: result.epochs.count,
            train_loss: last?.trainLoss ?? .nan, train_accuracy: last?.trainAccuracy ?? .nan,
            val_loss: last?.validationLoss ?? .nan,
            val_accuracy: classification ? last?.validationAccuracy ?? .nan : nil,
            test_accuracy: classification ? result.testAccuracy ?? .nan : nil,
            taskMetrics: classification ? [:] : outcome.taskMetricsByName, wall_seconds: result.wallSeconds,
            samples_per_second: trainingSeconds > 0 ? Double(outcome.trainCount * result.epochs.count) / trainingSeconds : .nan,
            seed: o.seed, threads: o.threads, weights: reason == nil ? o.saveWeights : nil,
            initialized_from: o.initFrom, initial_val_accuracy: outcome.initialValidationAccuracy,
            training: outcome.training)
    }
}

/// `naslab estimate`: params, MACs/FLOPs and measured latency of architectures, without training.
public struct CostEstimate: Codable, Sendable {
    public var architecture: String
    public var params: Int
    public var macs: Int
    public var flops: Int
    /// FLOPs under NAS-Bench-201's convention (the figures NASLib stores for NB201); cell spaces only.
    public var nasbench201_flops: Int?
    public var peak_activation_bytes: Int
    public var latency_ms_measured: Double?
    public var latency_ms_predicted: Double?
    /// The machine's reference-network time now over the latency table's (1.1: 10 % slower than
    /// when the table was measured); `latency_ms_predicted` includes it (docs/latency.md).
    public var latency_slowdown: Double?

    /// The input shape `estimate` uses when none is given: 1×28×28 images (1×64×64 scenes for
    /// segmentation and detection, the default `fashion-scenes`), token sequences as the
    /// default `TextOptions` encode them (24 ids per position × 1 × 128 positions), 16 features.
    public static func defaultInputShape(for task: TaskKind) -> FeatureShape {
        switch task {
        case .imageClassification: return FeatureShape(channels: 1, height: 28, width: 28)
        case .segmentation, .detection: return FeatureShape(channels: 1, height: FashionScenes.defaultSize, width: FashionScenes.defaultSize)
        case .textClassification: return TextOptions().sampleShape
        case .tabularClassification: return FeatureShape(features: 16)
        }
    }

    /// The input kind `estimate` (and `naslab draw`) decode a task's networks for; text uses
    /// `vocabulary` ids (default: the default `TextOptions`' cap, words + subword buckets).
    public static func defaultInputKind(for task: TaskKind, vocabulary: Int? = nil) -> InputKind {
        switch task {
        case .imageClassification, .segmentation, .detection: return .image
        case .textClassification: return .tokens(vocabularySize: vocabulary ?? TextOptions().maximumIdCount)
        case .tabularClassification: return .features
        }
    }

    /// - Parameters:
    ///   - inputShape: `nil`: `defaultInputShape(for:)` of the space's task.
    ///   - vocabulary: the token ids of text spaces (default: the default `TextOptions`' cap, words + subword buckets).
    public static func estimate(space name: String, architectures texts: [String]?, random count: Int?, seed: UInt64,
                                inputShape requestedShape: FeatureShape?, classCount: Int, measure: Bool,
                                threads: Int, vocabulary: Int? = nil) throws -> [CostEstimate] {
        let space = try SpaceReference.resolve(name).space
        let inputShape = requestedShape ?? defaultInputShape(for: space.task)
        let inputKind = defaultInputKind(for: space.task, vocabulary: vocabulary)
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
            let graph = try space.network(for: a, inputShape: inputShape, inputKind: inputKind, classCount: classCount)
            let cost = try graph.cost()
            let latency = measure ? try LatencyMeasurement.measure(graph, batchSize: 1, threads: threads).medianMilliseconds : nil
            return CostEstimate(architecture: space.text(of: a), params: cost.parameters, macs: cost.multiplyAccumulates,
                                flops: cost.flops, nasbench201_flops: space.isCellSpace ? cost.nasBench201Flops : nil,
                                peak_activation_bytes: cost.peakActivationBytes,
                                latency_ms_measured: latency, latency_ms_predicted: nil)
        }
    }
}

/// One line per shipped space for `naslab spaces` (`--json`: an array of these).
public struct SpaceListing: Codable, Sendable {
    public var name: String
    /// `image_classification`, `text_classification`, `tabular_classification`, `segmentation` or `detection`.
    public var task: String
    public var path: String
    public var size: String
    public var decisions: Int
    public var description: String

    public static let shippedNames = ["small", "medium", "large", "nasbench201", "reference/cnn", "reference/resnet18",
                                      "reference/mobilenet_v2", "text-small", "text-medium", "text-large",
                                      "reference/text-cnn", "tabular-small",
                                      "segmentation-small", "segmentation-medium", "segmentation-large", "reference/unet",
                                      "detection-small", "detection-medium", "detection-large", "reference/centernet"]

    /// Every shipped space (a name whose file is absent from this installation is left out).
    public static func shipped() throws -> [SpaceListing] {
        try shippedNames.compactMap { name in
            guard (try? SearchSpace.shippedPath(named: name)) != nil else { return nil }
            let ref = try SpaceReference.resolve(name)
            return SpaceListing(name: name, task: ref.space.task.rawValue, path: ref.path ?? "", size: ref.space.size.description,
                                decisions: ref.space.decisions.count,
                                description: ref.space.description.split(separator: "\n").first.map(String.init) ?? "")
        }
    }
}

/// Parses `CxHxW` for tools that do not import NASCore.
public enum FeatureShapeParser {
    public static func parse(_ text: String) -> FeatureShape? { FeatureShape(parsing: text) }
}
