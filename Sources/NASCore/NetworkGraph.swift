/// The shape of one sample flowing through a network: channels × height × width.
/// Flat feature vectors are `(features, 1, 1)`.
public struct FeatureShape: Hashable, Codable, Sendable, CustomStringConvertible {
    public var channels: Int
    public var height: Int
    public var width: Int

    public init(channels: Int, height: Int, width: Int) {
        self.channels = channels
        self.height = height
        self.width = width
    }

    /// A flat feature vector of `features` values.
    public init(features: Int) { self.init(channels: features, height: 1, width: 1) }

    public var elementCount: Int { channels * height * width }
    public var description: String { "\(channels)x\(height)x\(width)" }

    /// Parses `CxHxW` (e.g. `1x28x28`) or a plain feature count (`64`).
    public init?(parsing text: String) {
        let parts = text.split(separator: "x").map { Int($0.trimmingCharactersInSpaces()) }
        if parts.count == 3, let c = parts[0], let h = parts[1], let w = parts[2], c > 0, h > 0, w > 0 {
            self.init(channels: c, height: h, width: w)
        } else if parts.count == 1, let f = parts[0], f > 0 {
            self.init(features: f)
        } else {
            return nil
        }
    }
}

extension Substring {
    func trimmingCharactersInSpaces() -> String {
        String(self.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}

/// Element-wise non-linearities.
public enum ActivationKind: String, Hashable, Codable, Sendable, CaseIterable {
    case relu
    case relu6
    case hardSwish = "hardswish"
    case sigmoid
}

/// Attributes of a 2-D convolution (PyTorch's `Conv2d` semantics, NCHW).
public struct Conv2dAttributes: Hashable, Codable, Sendable {
    public var outChannels: Int
    public var kernel: Int
    public var stride: Int
    public var padding: Int
    public var dilation: Int
    public var groups: Int
    public var bias: Bool

    public init(outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                dilation: Int = 1, groups: Int = 1, bias: Bool = false) {
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.bias = bias
    }
}

/// Attributes of max or average pooling (PyTorch's `MaxPool2d` / `AvgPool2d`).
public struct PoolAttributes: Hashable, Codable, Sendable {
    public var kernel: Int
    public var stride: Int
    public var padding: Int
    /// Average pooling only: whether padded zeros count in the divisor (PyTorch's `count_include_pad`).
    public var countIncludePadding: Bool

    public init(kernel: Int, stride: Int, padding: Int = 0, countIncludePadding: Bool = true) {
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.countIncludePadding = countIncludePadding
    }
}

/// One operation of the network IR. Each node's inputs are earlier nodes.
public enum LayerOp: Hashable, Codable, Sendable {
    /// The network input (exactly one, node 0).
    case input
    case conv2d(Conv2dAttributes)
    /// Batch normalisation over channels (eps 1e-5, momentum 0.1 as in PyTorch).
    case batchNorm(affine: Bool)
    case activation(ActivationKind)
    case maxPool(PoolAttributes)
    case avgPool(PoolAttributes)
    /// Mean over height and width: C×H×W → C×1×1.
    case globalAvgPool
    /// Fully connected layer on a flat (C×1×1) input.
    case linear(outFeatures: Int, bias: Bool)
    /// Element-wise sum of two or more inputs of equal shape.
    case add
    /// Concatenation of the inputs along channels.
    case concat
    /// Inverted dropout with drop probability `rate` (identity in evaluation mode).
    case dropout(rate: Double)
    /// C×H×W → (C·H·W)×1×1.
    case flatten
    /// Zeros shaped like the input, subsampled by `stride` (NAS-Bench-201's `none`).
    case zero(stride: Int)
    case identity
}

/// One node of a `NetworkGraph`: a named op applied to earlier nodes.
public struct LayerNode: Hashable, Codable, Sendable {
    /// A path-like name, unique in the graph (`stage1/block0/conv`); parameters are stored under it.
    public var name: String
    public var op: LayerOp
    /// Indices of earlier nodes.
    public var inputs: [Int]

    public init(name: String, op: LayerOp, inputs: [Int]) {
        self.name = name
        self.op = op
        self.inputs = inputs
    }
}

/// Errors found while building or checking a network graph.
public enum NetworkGraphError: Error, Hashable, CustomStringConvertible {
    case invalidShape(node: String, message: String)
    case invalidInputs(node: String, message: String)
    case duplicateName(String)

    public var description: String {
        switch self {
        case let .invalidShape(node, message): return "node '\(node)': \(message)"
        case let .invalidInputs(node, message): return "node '\(node)': \(message)"
        case let .duplicateName(name): return "duplicate node name '\(name)'"
        }
    }
}

/// A framework-neutral description of a network: a DAG of `LayerNode`s in topological order.
///
/// Search spaces decode architectures into this IR; the engine builds trainable networks from
/// it, and the estimators count parameters and FLOPs on it. Node 0 is the input; the last node
/// is the output (class logits).
///
/// ```swift
/// var g = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 8, width: 8))
/// var x = g.add("conv", .conv2d(Conv2dAttributes(outChannels: 16, kernel: 3, padding: 1)), g.input)
/// x = g.add("relu", .activation(.relu), x)
/// x = g.add("gap", .globalAvgPool, x)
/// x = g.add("fc", .linear(outFeatures: 10, bias: true), x)
/// let shapes = try g.inferShapes()
/// ```
public struct NetworkGraph: Hashable, Codable, Sendable {
    public private(set) var inputShape: FeatureShape
    public private(set) var nodes: [LayerNode]

    public init(inputShape: FeatureShape) {
        self.inputShape = inputShape
        self.nodes = [LayerNode(name: "input", op: .input, inputs: [])]
    }

    /// Index of the input node.
    public var input: Int { 0 }
    /// Index of the output node (the last one).
    public var output: Int { nodes.count - 1 }

    /// Appends a node and returns its index. Names must be unique (checked by `inferShapes`).
    @discardableResult
    public mutating func add(_ name: String, _ op: LayerOp, _ inputs: Int...) -> Int {
        add(name, op, inputs: inputs)
    }

    @discardableResult
    public mutating func add(_ name: String, _ op: LayerOp, inputs: [Int]) -> Int {
        precondition(inputs.allSatisfy { $0 >= 0 && $0 < nodes.count }, "inputs must be earlier nodes")
        nodes.append(LayerNode(name: name, op: op, inputs: inputs))
        return nodes.count - 1
    }

    /// The output shape of every node, or the first inconsistency found.
    public func inferShapes() throws -> [FeatureShape] {
        var shapes = [FeatureShape]()
        shapes.reserveCapacity(nodes.count)
        var names = Set<String>(minimumCapacity: nodes.count)
        for (index, node) in nodes.enumerated() {
            guard names.insert(node.name).inserted else { throw NetworkGraphError.duplicateName(node.name) }
            let ins = node.inputs.map { shapes[$0] }
            func fail(_ m: String) -> NetworkGraphError { .invalidShape(node: node.name, message: m) }
            func one() throws -> FeatureShape {
                guard ins.count == 1 else {
                    throw NetworkGraphError.invalidInputs(node: node.name, message: "expects 1 input, got \(ins.count)")
                }
                return ins[0]
            }
            func spatial(_ size: Int, kernel: Int, stride: Int, padding: Int, dilation: Int) throws -> Int {
                let out = (size + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1
                guard out >= 1, size + 2 * padding >= dilation * (kernel - 1) + 1 else {
                    throw fail("kernel \(kernel) (dilation \(dilation), padding \(padding)) does not fit input size \(size)")
                }
                return out
            }
            let shape: FeatureShape
            switch node.op {
            case .input:
                guard index == 0 else { throw NetworkGraphError.invalidInputs(node: node.name, message: "input must be node 0") }
                shape = inputShape
            case let .conv2d(a):
                let x = try one()
                guard a.outChannels > 0, a.kernel > 0, a.stride > 0, a.padding >= 0, a.dilation > 0, a.groups > 0 else {
                    throw fail("conv attributes must be positive")
                }
                guard x.channels % a.groups == 0, a.outChannels % a.groups == 0 else {
                    throw fail("groups \(a.groups) must divide in (\(x.channels)) and out (\(a.outChannels)) channels")
                }
                shape = FeatureShape(
                    channels: a.outChannels,
                    height: try spatial(x.height, kernel: a.kernel, stride: a.stride, padding: a.padding, dilation: a.dilation),
                    width: try spatial(x.width, kernel: a.kernel, stride: a.stride, padding: a.padding, dilation: a.dilation))
            case .batchNorm, .activation, .dropout, .identity:
                shape = try one()
            case let .maxPool(p), let .avgPool(p):
                let x = try one()
                guard p.kernel > 0, p.stride > 0, p.padding >= 0, p.padding * 2 <= p.kernel else {
                    throw fail("pool padding must be at most half the kernel")
                }
                shape = FeatureShape(
                    channels: x.channels,
                    height: try spatial(x.height, kernel: p.kernel, stride: p.stride, padding: p.padding, dilation: 1),
                    width: try spatial(x.width, kernel: p.kernel, stride: p.stride, padding: p.padding, dilation: 1))
            case .globalAvgPool:
                shape = FeatureShape(features: try one().channels)
            case let .linear(out, _):
                let x = try one()
                guard x.height == 1, x.width == 1 else { throw fail("linear needs a flat input, got \(x)") }
                guard out > 0 else { throw fail("linear needs at least one output") }
                shape = FeatureShape(features: out)
            case .add:
                guard ins.count >= 2 else {
                    throw NetworkGraphError.invalidInputs(node: node.name, message: "add needs at least 2 inputs")
                }
                guard ins.allSatisfy({ $0 == ins[0] }) else {
                    throw fail("add inputs differ in shape: \(ins.map(\.description).joined(separator: ", "))")
                }
                shape = ins[0]
            case .concat:
                guard ins.count >= 1 else {
                    throw NetworkGraphError.invalidInputs(node: node.name, message: "concat needs inputs")
                }
                guard ins.allSatisfy({ $0.height == ins[0].height && $0.width == ins[0].width }) else {
                    throw fail("concat inputs differ in spatial size")
                }
                shape = FeatureShape(channels: ins.reduce(0) { $0 + $1.channels }, height: ins[0].height, width: ins[0].width)
            case .flatten:
                shape = FeatureShape(features: try one().elementCount)
            case let .zero(stride):
                let x = try one()
                guard stride >= 1 else { throw fail("zero stride must be ≥ 1") }
                shape = FeatureShape(channels: x.channels, height: (x.height - 1) / stride + 1, width: (x.width - 1) / stride + 1)
            }
            shapes.append(shape)
        }
        return shapes
    }
}
