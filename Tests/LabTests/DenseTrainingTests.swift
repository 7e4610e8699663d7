import Datasets
import Engine
import Foundation
import Lab
import NASCore
import Spaces
import TestSupport
import XCTest

/// Tiny generated scenes for the dense-task tests: `FashionScenes` painting three 8×8 synthetic
/// items (a filled square, a cross, a ring — no Fashion-MNIST needed) on 32×32 canvases, at most
/// two per scene; masks and boxes come from the generator as for fashion-scenes.
enum TinyScenes {
    static let size = 32

    /// 24 items: 8 per class (0 square, 1 cross, 2 ring) at different intensities.
    static var source: FashionScenes.Source {
        var images = [UInt8](), labels = [UInt8]()
        for variant in 0..<8 {
            let value = UInt8(120 + 16 * variant)
            for label in 0..<3 {
                for y in 0..<8 {
                    for x in 0..<8 {
                        let on: Bool
                        switch label {
                        case 0: on = (1...6).contains(y) && (1...6).contains(x)
                        case 1: on = (3...4).contains(y) || (3...4).contains(x)
                        default: on = y == 0 || y == 7 || x == 0 || x == 7
                        }
                        images.append(on ? value : 0)
                    }
                }
                labels.append(UInt8(label))
            }
        }
        return FashionScenes.Source(images: images, labels: labels, itemHeight: 8, itemWidth: 8)
    }

    static func scenes(count: Int = 128, testCount: Int = 32, seed: UInt64 = 5) throws -> FashionScenes.Scenes {
        let options = FashionScenes.Options(count: count, testCount: testCount, size: size, maxObjects: 2, seed: seed)
        return try FashionScenes.generate(options, train: source, test: source)
    }

    /// Writes the scenes to `directory/scenes.h5` and returns the path.
    static func write(to directory: URL, count: Int = 128, testCount: Int = 32) throws -> String {
        let path = directory.appendingPathComponent("scenes.h5").path
        try scenes(count: count, testCount: testCount).write(to: path)
        return path
    }

    /// A fixed U-Net-like segmentation network for 32×32 scenes (32 → 8 → 32).
    static let segmentationSpace = """
        name: tiny-segmentation
        task: segmentation
        activation: relu
        stem:
          - {op: conv, width: 8, kernel: 3}
        stages:
          - blocks: {width: 12, op: conv, stride: 2}
          - blocks: {width: 16, op: conv, stride: 2}
        decoder:
          upsample: bilinear
          levels:
            - {skip: true, width: 12}
            - {skip: true, width: 8}
        """

    /// A fixed CenterNet-like detector for 32×32 scenes: encoder stride 8 (2¹ decoder level × 4),
    /// one level back to stride 4 (8×8 outputs).
    static let detectionSpace = """
        name: tiny-detection
        task: detection
        activation: relu
        stem:
          - {op: conv, width: 8, kernel: 3}
        stages:
          - blocks: {width: 12, op: conv, stride: 2}
          - blocks: {width: 16, op: conv, stride: 2}
          - blocks: {width: 24, op: conv, stride: 2}
        decoder:
          upsample: nearest
          head_width: 16
          levels:
            - {skip: true, width: 16}
        """
}

/// Segmentation and detection through the one training pipeline (`ModelTraining.train`): the
/// loss falls, `TaskEvaluation` reports the task's metrics, data without the task's targets is
/// refused with a clear error.
final class DenseTrainingTests: XCTestCase {
    static var scenesPath: String?

    func scenes() throws -> String {
        if let path = Self.scenesPath, FileManager.default.fileExists(atPath: path) { return path }
        let path = try TinyScenes.write(to: try CLI.scratch("dense-training"))
        Self.scenesPath = path
        return path
    }

    func train(_ space: String, epochs: Int, losses: inout [Float]) throws -> TrainingOutcome {
        var job = TrainingJob(spaceName: nil, spaceYAML: space, architecture: nil, dataset: try scenes())
        var training = try SearchSpace.load(yaml: space).task.defaultTraining
        training.epochs = epochs
        training.batchSize = 16
        job.training = training
        job.threads = 2
        job.seed = 3
        var batchLosses = [Float]()
        let observer = ClosureObserver { event in
            if case let .batchEnd(_, _, loss, _) = event { batchLosses.append(loss) }
        }
        let outcome = try ModelTraining.train(job, datasets: DatasetCache(), observers: [observer])
        losses = batchLosses
        return outcome
    }

    func checkMetrics(_ outcome: TrainingOutcome, task: TaskKind) throws {
        let data = try DatasetCache().dataset(try scenes(), validationSplit: Dataset.defaultValidationSplit, seed: 0)
        for (split, recorded) in [(data.validation, outcome.validationMetrics), (data.test, outcome.testMetrics)] {
            let metrics = try TaskEvaluation.metrics(outcome.network, task: task, on: split)
            XCTAssertEqual(Set(metrics.keys), Set(task.metrics), "\(task)")
            for (name, value) in metrics { XCTAssertTrue((0...1).contains(value), "\(task) \(name) = \(value)") }
            // The pipeline reported the same evaluation.
            XCTAssertEqual(metrics, recorded, "\(task)")
        }
        XCTAssertEqual(Set(outcome.taskMetricsByName.keys), Set(task.metrics.flatMap { ["val_" + $0, "test_" + $0] }))
        XCTAssertEqual(outcome.validationScore, outcome.validationMetrics[task.primaryMetric])
    }

    func testSegmentationTrainsAndReportsItsMetrics() throws {
        var losses = [Float]()
        let outcome = try train(TinyScenes.segmentationSpace, epochs: 4, losses: &losses)
        XCTAssertEqual(outcome.result.status, .completed)
        XCTAssertEqual(outcome.model.task, .segmentation)
        XCTAssertEqual(outcome.network.outputShape, FeatureShape(channels: 11, height: 32, width: 32))
        let curve = outcome.result.trainLosses
        XCTAssertEqual(curve.count, 4)
        for (before, after) in zip(curve, curve.dropFirst()) { XCTAssertLessThan(after, before, "every epoch lowers the loss: \(curve)") }
        XCTAssertLessThan(curve.last!, 0.9 * curve.first!, "\(curve)")
        XCTAssertTrue(losses.allSatisfy(\.isFinite))
        XCTAssertLessThan(losses.suffix(3).reduce(0, +), losses.prefix(3).reduce(0, +), "\(losses)")
        // Training accuracy is over pixels, a fraction.
        XCTAssertTrue((0...1).contains(outcome.result.epochs.last!.trainAccuracy))
        try checkMetrics(outcome, task: .segmentation)
        // Most pixels are background: after a few epochs the pixel accuracy is at least the background share.
        XCTAssertGreaterThan(outcome.validationMetrics["pixel_accuracy"]!, 0.5)
    }

    func testDetectionTrainsAndReportsItsMetrics() throws {
        var losses = [Float]()
        let outcome = try train(TinyScenes.detectionSpace, epochs: 4, losses: &losses)
        XCTAssertEqual(outcome.result.status, .completed)
        XCTAssertEqual(outcome.model.task, .detection)
        XCTAssertEqual(outcome.network.outputShape, FeatureShape(channels: 14, height: 8, width: 8))
        let curve = outcome.result.trainLosses
        for (before, after) in zip(curve, curve.dropFirst()) { XCTAssertLessThan(after, before, "every epoch lowers the loss: \(curve)") }
        XCTAssertLessThan(curve.last!, 0.8 * curve.first!, "\(curve)")
        XCTAssertTrue(losses.allSatisfy(\.isFinite))
        // The detector's training accuracy is not defined.
        XCTAssertTrue(outcome.result.epochs.last!.trainAccuracy.isNaN)
        try checkMetrics(outcome, task: .detection)
    }

    func testDenseSpacesOnDataWithoutTargetsAreRefused() throws {
        for (space, target) in [(TinyScenes.segmentationSpace, "masks"), (TinyScenes.detectionSpace, "boxes")] {
            let job = TrainingJob(spaceName: nil, spaceYAML: space, architecture: nil, dataset: "digits")
            XCTAssertThrowsError(try ModelTraining.train(job, datasets: DatasetCache())) { error in
                XCTAssertTrue(error is LabError, "\(type(of: error)): \(error)")
                let text = "\(error)"
                XCTAssertTrue(text.contains("dataset 'digits' has no \(target)"), text)
                XCTAssertTrue(text.contains("/\(target)"), text)
            }
        }
    }

    func testTrainerRefusesSegmentationWithoutMasks() throws {
        var g = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 8, width: 8))
        g.add("head", .conv2d(Conv2dAttributes(outChannels: 11, kernel: 1, bias: true)), g.input)
        var rng = SeededGenerator(seed: 1)
        let network = try Network(graph: g, rng: &rng)
        let plain = LabeledArrays(features: [Float](repeating: 0.5, count: 4 * 64), labels: [0, 1, 2, 3],
                                  sampleShape: FeatureShape(channels: 1, height: 8, width: 8), classCount: 10)
        let trainer = Trainer(configuration: TrainingConfiguration(epochs: 1, batchSize: 2), objective: .segmentation)
        XCTAssertThrowsError(try trainer.fit(network, train: plain)) { XCTAssertTrue("\($0)".contains("masks"), "\($0)") }
        // Masks that are there make it train.
        var masked = plain
        masked.masks = [Int32](repeating: 0, count: 4 * 64)
        XCTAssertEqual(try trainer.fit(network, train: masked).status, .completed)
        // And a detector trainer refuses data without boxes (the network's 11 channels are 7 classes + 4).
        let detector = Trainer(configuration: TrainingConfiguration(epochs: 1, batchSize: 2), objective: .detection(CenterNet()))
        var seven = plain
        seven.classCount = 7
        XCTAssertThrowsError(try detector.fit(network, train: seven)) { XCTAssertTrue("\($0)".contains("boxes"), "\($0)") }
    }
}
