/// What a network is trained to do: the task seam between data, spaces, training and serving.
///
/// A task names its input kind, head, loss, metric and label type; everything above the engine
/// (search spaces, the training pipeline, records, the CLI and the API) asks the task instead of
/// assuming images. All current tasks are classification: a linear classifier on pooled
/// features, softmax cross-entropy, accuracy, one integer class index per sample.
public enum TaskKind: String, Hashable, Codable, Sendable, CaseIterable, CustomStringConvertible {
    case imageClassification = "image_classification"
    case textClassification = "text_classification"
    case tabularClassification = "tabular_classification"

    public var description: String { rawValue }

    /// The task that takes inputs of `kind`.
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
        default: return nil
        }
    }

    /// Whether inputs of `kind` are what this task takes.
    public func accepts(_ kind: InputKind) -> Bool { TaskKind(inputKind: kind) == self }

    /// The head on top of the searched body.
    public var head: String {
        switch self {
        case .imageClassification: return "global average pooling + linear classifier"
        case .textClassification: return "masked max or mean pooling over time + linear classifier"
        case .tabularClassification: return "linear classifier"
        }
    }

    /// The training loss.
    public var loss: String { "softmax cross-entropy" }
    /// The metrics recorded per epoch and on the test split.
    public var metrics: [String] { ["loss", "accuracy"] }
    /// What a label is.
    public var labelType: String { "class index (integer in 0..<classes; class names kept with the model)" }
    /// The prefix of this task's shipped spaces (`small`, `text-small`, `tabular-small`).
    public var spacePrefix: String {
        switch self {
        case .imageClassification: return ""
        case .textClassification: return "text-"
        case .tabularClassification: return "tabular-"
        }
    }

    /// The sizes of shipped spaces the API's `search_space` names.
    public static let spaceSizes = ["small", "medium", "large"]

    /// The shipped space that `size` (`small`, `medium`, `large`) means for this task:
    /// `small`/`medium`/`large` for images, `text-small`/`text-medium`/`text-large` for text,
    /// and `tabular-small` for every size of tabular data (the only tabular space).
    public func shippedSpace(size: String) -> String {
        switch self {
        case .imageClassification, .textClassification: return spacePrefix + size
        case .tabularClassification: return "tabular-small"
        }
    }

    /// The API's name for the input kind of this task (`images`, `text`, `features`).
    public var inputDescription: String {
        switch self {
        case .imageClassification: return "images"
        case .textClassification: return "text"
        case .tabularClassification: return "feature vectors"
        }
    }
}
