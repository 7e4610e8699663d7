import NASCore

/// Errors of the engine: bad graphs, mismatched shapes or data, unknown tensor names.
public enum EngineError: Error, Equatable, CustomStringConvertible {
    /// The graph failed `NetworkGraph.inferShapes()`.
    case invalidGraph(NetworkGraphError)
    /// The output node does not produce `expected` class logits.
    case classCountMismatch(expected: Int, outputShape: FeatureShape)
    /// An input or gradient tensor does not fit the network.
    case shapeMismatch(String)
    /// A label outside `0..<classCount` (index of the sample, label, class count).
    case labelOutOfRange(index: Int, label: Int32, classCount: Int)
    /// `load(namedTensors:)`: a name the network does not have, a missing name, or a wrong shape.
    case unknownTensor(String)
    case missingTensor(String)
    case tensorShapeMismatch(name: String, expected: [Int], got: [Int])
    /// Invalid training configuration or data set.
    case invalidConfiguration(String)
    /// A `TrainerState` (checkpoint) that does not fit the network, the data or the configuration.
    case invalidResumeState(String)

    public var description: String {
        switch self {
        case let .invalidGraph(e): return "invalid network graph: \(e)"
        case let .classCountMismatch(expected, shape):
            return "network output \(shape) does not match \(expected) classes (expected \(expected)x1x1)"
        case let .shapeMismatch(m): return "shape mismatch: \(m)"
        case let .labelOutOfRange(index, label, classCount):
            return "label \(label) of sample \(index) is outside 0..<\(classCount)"
        case let .unknownTensor(name): return "unknown tensor '\(name)'"
        case let .missingTensor(name): return "missing tensor '\(name)'"
        case let .tensorShapeMismatch(name, expected, got): return "tensor '\(name)' has shape \(got), expected \(expected)"
        case let .invalidConfiguration(m): return "invalid configuration: \(m)"
        case let .invalidResumeState(m): return "cannot resume training: \(m)"
        }
    }
}
