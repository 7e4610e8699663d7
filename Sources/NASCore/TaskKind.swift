/// What a network is trained to do: the task seam between data, spaces, training and serving.
///
/// A task names its input kind, head, loss, metric and label type; everything above the engine
/// (search spaces, the training pipeline, records, the CLI and the API) asks the task instead of
/// assuming images. The classification tasks share a linear classifier on pooled features,
/// softmax cross-entropy, accuracy and one integer class index per sample; `segmentation` labels
/// every pixel (a decoder back to the input resolution, per-pixel cross-entropy, mIoU) and
/// `detection` finds boxes (a CenterNet head, focal loss + L1, mAP).
public enum TaskKind: String, Hashable, Codable, Sendable, CaseIterable, CustomStringConvertible {
    case imageClassification = "image_classification"
    case textClassification = "text_classification"
    case tabularClassification = "tabular_classification"
    /// Semantic segmentation of images: one class per pixel (`LabeledArrays.masks`).
    case segmentation
    /// Object detection in images: boxes with classes (`LabeledArrays.boxes`).
    case detection

    public var description: String { rawValue }

    /// The classification task that takes inputs of `kind` (images: image classification).
    public init(inputKind kind: InputKind) {
        switch kind {
        case .image: self = .imageClassification
        case .tokens: self = .textClassification
        case .features: self = .tabularClassification
        }
    }

    /// Parses a task name: the raw values, plus `image`, `text`, `tabular`.
    public init?(name: String) {
        switch name.lowercased() {
        case "image_classification", "image": self = .imageClassification
        case "text_classification", "text": self = .textClassification
        case "tabular_classification", "tabular": self = .tabularClassification
        case "segmentation", "semantic_segmentation": self = .segmentation
        case "detection", "object_detection": self = .detection
        default: return nil
        }
    }

    /// Whether inputs of `kind` are what this task takes.
    public func accepts(_ kind: InputKind) -> Bool {
        switch self {
        case .segmentation, .detection: return kind == .image
        case .imageClassification, .textClassification, .tabularClassification: return TaskKind(inputKind: kind) == self
        }
    }

    /// Whether the task labels each sample with one class index (the classification tasks).
    public var isClassification: Bool {
        switch self {
        case .imageClassification, .textClassification, .tabularClassification: return true
        case .segmentation, .detection: return false
        }
    }

    /// The head on top of the searched body.
    public var head: String {
        switch self {
        case .imageClassification: return "global average pooling + linear classifier"
        case .textClassification: return "masked max or mean pooling over time + linear classifier"
        case .tabularClassification: return "linear classifier"
        case .segmentation: return "decoder to the input resolution + 1×1 convolution to background + classes"
        case .detection: return "CenterNet head at stride 4: per-class centre heatmap, box size and centre offset"
        }
    }

    /// The training loss.
    public var loss: String {
        switch self {
        case .segmentation: return "per-pixel softmax cross-entropy (ignore index -100)"
        case .detection: return "CenterNet focal loss on the heatmap + L1 on size (weight 0.1) and offset"
        case .imageClassification, .textClassification, .tabularClassification: return "softmax cross-entropy"
        }
    }

    /// The metric searches rank by, on the validation split, and its record column suffix
    /// (`val_accuracy`, `val_miou`, `val_map50`).
    public var primaryMetric: String {
        switch self {
        case .imageClassification, .textClassification, .tabularClassification: return "accuracy"
        case .segmentation: return "miou"
        case .detection: return "map50"
        }
    }

    /// Every metric computed on the validation and test splits, primary first
    /// (`train --json` prints them with `val_`/`test_` prefixes).
    public var metrics: [String] {
        switch self {
        case .imageClassification, .textClassification, .tabularClassification: return ["accuracy"]
        case .segmentation: return ["miou", "miou_no_background", "pixel_accuracy"]
        case .detection: return ["map50", "map"]
        }
    }

    /// How people read a metric name of `metrics`: `accuracy`, `mIoU`, `mIoU (no background)`,
    /// `pixel accuracy`, `mAP@0.5`, `mAP@[.5:.95]`.
    public static func metricLabel(_ name: String) -> String {
        switch name {
        case "miou": return "mIoU"
        case "miou_no_background": return "mIoU (no background)"
        case "pixel_accuracy": return "pixel accuracy"
        case "map50": return "mAP@0.5"
        case "map": return "mAP@[.5:.95]"
        default: return name
        }
    }

    /// What a label is.
    public var labelType: String {
        switch self {
        case .segmentation: return "mask: one class id per pixel (0 background, 1 + class)"
        case .detection: return "boxes: (x1, y1, x2, y2) in pixels, x2/y2 exclusive, with a class each"
        case .imageClassification, .textClassification, .tabularClassification: return "class index (integer in 0..<classes; class names kept with the model)"
        }
    }
    /// The prefix of this task's shipped spaces (`small`, `text-small`, `tabular-small`).
    public var spacePrefix: String {
        switch self {
        case .imageClassification: return ""
        case .textClassification: return "text-"
        case .tabularClassification: return "tabular-"
        case .segmentation: return "segmentation-"
        case .detection: return "detection-"
        }
    }

    /// The sizes of shipped spaces the API's `search_space` names.
    public static let spaceSizes = ["small", "medium", "large"]

    /// The shipped space that `size` (`small`, `medium`, `large`) means for this task:
    /// `small`/`medium`/`large` for images, `text-small`/`text-medium`/`text-large` for text,
    /// and `tabular-small` for every size of tabular data (the only tabular space).
    public func shippedSpace(size: String) -> String {
        switch self {
        case .imageClassification, .textClassification, .segmentation, .detection: return spacePrefix + size
        case .tabularClassification: return "tabular-small"
        }
    }

    /// The API's name for the input kind of this task (`images`, `text`, `features`).
    public var inputDescription: String {
        switch self {
        case .imageClassification, .segmentation, .detection: return "images"
        case .textClassification: return "text"
        case .tabularClassification: return "feature vectors"
        }
    }
}
