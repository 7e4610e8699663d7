import Datasets
import Engine
import NASCore

/// The task metrics of a trained network on one split — what searches rank by and what
/// `train --json`, records and the API report (names: `TaskKind.metrics`).
///
/// - classification: `accuracy` (the engine's evaluation);
/// - segmentation: `miou` (mean IoU over the classes present in the split's masks, background
///   included), `miou_no_background` and `pixel_accuracy` (``SegmentationMetrics``);
/// - detection: `map50` and `map` (COCO mAP@0.5 and mAP@[0.5:0.95], 101-point interpolation,
///   as pycocotools computes them; ``DetectionMetrics``) of the ``CenterNet`` decoded boxes.
public enum TaskEvaluation {
    public static func metrics(_ network: Network, task: TaskKind, on split: LabeledArrays) throws -> [String: Double] {
        guard split.count > 0 else { return [:] }
        switch task {
        case .imageClassification, .textClassification, .tabularClassification:
            return ["accuracy": try evaluate(network, on: split).accuracy]
        case .segmentation:
            guard let truth = split.masks else { throw LabError.invalid("segmentation needs masks; the split has none") }
            let m = SegmentationMetrics(predicted: try network.predictMasks(split), truth: truth, objectClasses: split.classCount)
            return ["miou": m.meanIoU, "miou_no_background": m.meanIoUExcludingBackground, "pixel_accuracy": m.pixelAccuracy]
        case .detection:
            guard let truth = split.boxes else { throw LabError.invalid("detection needs boxes; the split has none") }
            let m = DetectionMetrics(truth: truth, predictions: try network.predictBoxes(split, classCount: split.classCount),
                                     classCount: split.classCount)
            return ["map50": m.map50, "map": m.map]
        }
    }
}
