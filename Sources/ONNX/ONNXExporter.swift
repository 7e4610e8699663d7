import Engine
import Foundation
import NASCore
import SwiftProtobuf

/// Why a network could not be exported to ONNX.
public enum ONNXExportError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The graph uses an op that has no ONNX mapping (an op registered outside `OpRegistry.standard`).
    case unsupportedOp(kind: String, node: String)
    /// The requested opset is outside `ONNXExporter.supportedOpsets`.
    case unsupportedOpset(Int)
    /// A parameter or buffer the graph needs is not among the tensors given.
    case missingTensor(String)
    /// A tensor has another shape than the graph needs.
    case tensorShapeMismatch(name: String, expected: [Int], got: [Int])
    /// The graph or the model cannot be exported for another reason (named in the message).
    case invalid(String)

    public var description: String {
        switch self {
        case let .unsupportedOp(kind, node):
            return "cannot export op '\(kind)' (node '\(node)') to ONNX: NASLab has no ONNX mapping for it"
        case let .unsupportedOpset(opset):
            let r = ONNXExporter.supportedOpsets
            return "cannot export to ONNX opset \(opset): NASLab exports opsets \(r.lowerBound) to \(r.upperBound) (default \(ONNXExporter.defaultOpset))"
        case let .missingTensor(name):
            return "cannot export to ONNX: the weights have no tensor '\(name)'"
        case let .tensorShapeMismatch(name, expected, got):
            return "cannot export to ONNX: tensor '\(name)' has shape \(got), the network needs \(expected)"
        case let .invalid(message):
            return "cannot export to ONNX: \(message)"
        }
    }
}

/// What the exported model's input is.
public enum ONNXInputSpec: Sendable, Equatable {
    /// Float samples `N×C×H×W`; when `mean`/`std` are given (one value per channel) the graph
    /// standardises them first, `(x − mean) · (1/std)`, exactly as `ModelPredictor` does.
    case floats(mean: [Float]?, std: [Float]?)
    /// Token ids `N×K×L` (int64) for a network whose input is `K×1×L` token ids in `0..<idCount`;
    /// ids outside that range are read as the unknown token 1, as the engine does.
    case tokens(idCount: Int)
}

/// Everything the exporter needs about one network: its graph, its weights (by the engine's
/// tensor names), its input and the model's metadata.
public struct ONNXNetwork: Sendable {
    public var graph: NetworkGraph
    public var tensors: [String: (shape: [Int], values: [Float])]
    public var input: ONNXInputSpec
    /// `metadata_props` of the model, in order.
    public var metadata: [(key: String, value: String)]
    /// The graph's name (e.g. the space and architecture).
    public var name: String
    public var docString: String

    public init(graph: NetworkGraph, tensors: [(name: String, shape: [Int], values: [Float])], input: ONNXInputSpec,
                metadata: [(key: String, value: String)] = [], name: String = "naslab", docString: String = "") {
        self.graph = graph
        var byName = [String: (shape: [Int], values: [Float])]()
        for t in tensors { byName[t.name] = (t.shape, t.values) }
        self.tensors = byName
        self.input = input
        self.metadata = metadata
        self.name = name
        self.docString = docString
    }
}

/// Converts a `NetworkGraph` with its weights into an ONNX model (`ModelProto`).
///
/// - Input `input`: `N×C×H×W` float (images; tabular models as `N×F×1×1`), standardised inside
///   the graph; or `N×K×L` int64 token ids (text).
/// - Output `logits`: `N×classes` float, the network's output before softmax; a spatial output
///   (segmentation, detection) keeps its shape, `N×C×H×W`.
/// - Layout: ONNX's NCHW (the engine's internal CNHW layout never leaves the engine); weights keep
///   the engine's (PyTorch's) layouts and names.
///
/// Every op of `OpRegistry.standard` has a mapping (see docs/onnx.md); another op fails with
/// `ONNXExportError.unsupportedOp`.
public struct ONNXExporter: Sendable {
    /// The opsets NASLab writes: 13 (Split/Squeeze/ReduceSum take axes as inputs) to 21.
    public static let supportedOpsets = 13...21
    /// The default opset (ONNX 1.12, IR version 8: read by every onnxruntime since 1.12).
    public static let defaultOpset = 17
    /// The value of `producer_name`.
    public static let producerName = "naslab"

    public var opset: Int
    public var producerVersion: String

    public init(opset: Int = ONNXExporter.defaultOpset, producerVersion: String = "") {
        self.opset = opset
        self.producerVersion = producerVersion
    }

    /// The IR version that goes with an opset (the one of the ONNX release that introduced it).
    public static func irVersion(forOpset opset: Int) -> Int {
        switch opset {
        case ...12: return 7
        case 13...14: return 7
        case 15...18: return 8
        case 19...20: return 9
        default: return 10
        }
    }

    /// The ONNX model of `network`.
    public func model(_ network: ONNXNetwork, registry: OpRegistry = .standard) throws -> Onnx_ModelProto {
        guard Self.supportedOpsets.contains(opset) else { throw ONNXExportError.unsupportedOpset(opset) }
        let shapes: [FeatureShape]
        do { shapes = try network.graph.inferShapes(registry: registry) } catch {
            throw ONNXExportError.invalid("the network graph is invalid: \(error)")
        }
        var emitter = GraphEmitter(opset: opset, network: network, shapes: shapes)
        try emitter.emitGraph()

        var graph = Onnx_GraphProto()
        graph.name = network.name
        if !network.docString.isEmpty { graph.docString = network.docString }
        graph.node = emitter.nodes
        graph.initializer = emitter.initializers
        graph.input = [emitter.inputInfo]
        graph.output = [emitter.outputInfo]

        var model = Onnx_ModelProto()
        model.irVersion = Int64(Self.irVersion(forOpset: opset))
        var opsetID = Onnx_OperatorSetIdProto()
        opsetID.domain = ""
        opsetID.version = Int64(opset)
        model.opsetImport = [opsetID]
        model.producerName = Self.producerName
        model.producerVersion = producerVersion
        model.modelVersion = 1
        if !network.docString.isEmpty { model.docString = network.docString }
        model.graph = graph
        model.metadataProps = network.metadata.map { ONNXProto.entry($0.key, $0.value) }
        return model
    }

    /// The serialised ONNX model of `network` (the bytes of a `.onnx` file).
    public func serialized(_ network: ONNXNetwork, registry: OpRegistry = .standard) throws -> Data {
        try model(network, registry: registry).serializedData()
    }
}

// MARK: - Graph emission

/// A value of the ONNX graph standing for a NASLab node's output: float `[N, C]` (rank 2, flat
/// features) or `[N, C, H, W]` (rank 4; sequences are `[N, C, 1, L]`), or the token-id input.
struct EmittedValue {
    var name: String
    var rank: Int
    var isTokens = false
}

struct GraphEmitter {
    let opset: Int
    let network: ONNXNetwork
    let shapes: [FeatureShape]
    private(set) var nodes = [Onnx_NodeProto]()
    private(set) var initializers = [Onnx_TensorProto]()
    private(set) var inputInfo = Onnx_ValueInfoProto()
    private(set) var outputInfo = Onnx_ValueInfoProto()
    private var used = Set<String>()
    private var values = [EmittedValue]()
    /// Cached conversions and constants (key → value name).
    private var cache = [String: String]()
    /// The clamped token ids `[N, K, L]` int64 (text models).
    private var clampedIDs: String?
    /// The valid length of each sample `[N]` float (networks with an embedding), from slot 0.
    private var lengths: String?

    static let inputName = "input"
    static let outputName = "logits"
    static let batchSymbol = "N"

    init(opset: Int, network: ONNXNetwork, shapes: [FeatureShape]) {
        self.opset = opset
        self.network = network
        self.shapes = shapes
        used = [Self.inputName, Self.outputName]
    }

    var graph: NetworkGraph { network.graph }

    // MARK: Driver

    mutating func emitGraph() throws {
        let inputShape = graph.inputShape
        switch network.input {
        case let .floats(mean, std):
            inputInfo = ONNXProto.valueInfo(Self.inputName, elementType: .float, dimensions: [
                .symbol(Self.batchSymbol), .size(inputShape.channels), .size(inputShape.height), .size(inputShape.width),
            ], doc: mean == nil ? "raw samples N×C×H×W" : "raw (unstandardised) samples N×C×H×W; the graph standardises them")
            var x = Self.inputName
            if let mean, let std {
                guard mean.count == inputShape.channels, std.count == inputShape.channels else {
                    throw ONNXExportError.invalid("the normalisation has \(mean.count) means and \(std.count) deviations for \(inputShape.channels) channels")
                }
                let shape = [1, inputShape.channels, 1, 1]
                let m = initializer("normalization/mean", shape: shape, values: mean)
                let s = initializer("normalization/inverse_std", shape: shape, values: std.map { 1 / $0 })
                x = op("Sub", [x, m], "input/centered")
                x = op("Mul", [x, s], "input/standardized")
            }
            values.append(EmittedValue(name: x, rank: 4))
        case let .tokens(idCount):
            guard idCount >= 2 else { throw ONNXExportError.invalid("a token input needs at least 2 ids, got \(idCount)") }
            guard inputShape.height == 1 else {
                throw ONNXExportError.invalid("token inputs must have shape Kx1xL, the network's is \(inputShape)")
            }
            inputInfo = ONNXProto.valueInfo(Self.inputName, elementType: .int64, dimensions: [
                .symbol(Self.batchSymbol), .size(inputShape.channels), .size(inputShape.width),
            ], doc: "token ids N×K×L (slot-major: [n, 0, l] is the word id at position l, [n, k, l] its k-th subword id; 0 = padding, 1 = unknown)")
            // Ids outside 0..<V (V: the embedding's rows) read as the unknown token 1, as in the engine.
            let tables = Set(graph.nodes.compactMap { ($0.op as? Embedding)?.vocabulary })
            guard tables.count <= 1 else {
                throw ONNXExportError.invalid("the network has embeddings of different vocabularies (\(tables.sorted()))")
            }
            let vocabulary = tables.first ?? idCount
            let ids = Self.inputName
            let low = op("Less", [ids, int64Scalar(0)], "input/below_range")
            let high = op("GreaterOrEqual", [ids, int64Scalar(Int64(vocabulary))], "input/above_range")
            let bad = op("Or", [low, high], "input/out_of_range")
            clampedIDs = op("Where", [bad, int64Scalar(Int64(InputKind.unknownToken)), ids], "input/ids")
            values.append(EmittedValue(name: Self.inputName, rank: 3, isTokens: true))
        }

        for index in 1..<graph.nodes.count {
            let node = graph.nodes[index]
            let before = nodes.count
            let value = try emit(node, index: index)
            values.append(value)
            if nodes.count > before, nodes[nodes.count - 1].output.first == value.name {
                nodes[nodes.count - 1].docString = "naslab \(node.name): \(node.op.description)"
            }
        }

        // The output: `logits`, N×classes — or, for a spatial output (segmentation's per-pixel
        // logits, detection's CenterNet maps), the N×C×H×W tensor itself.
        let out = graph.output
        let last = values[out]
        let shape = shapes[out]
        let spatial = last.rank == 4 && !last.isTokens && (shape.height > 1 || shape.width > 1)
        if !spatial, last.rank == 2, !last.isTokens, let i = nodes.indices.last, nodes[i].output == [last.name], last.name != Self.inputName {
            nodes[i].output = [Self.outputName]
            nodes[i].name = Self.outputName
        } else {
            // The name `logits` is reserved (so `op` would make it unique): set it on the Identity node itself.
            let source = !spatial && (last.rank == 4 || last.isTokens) ? try rank2(out) : last.name
            op("Identity", [source], Self.outputName + "/identity")
            nodes[nodes.count - 1].output = [Self.outputName]
            nodes[nodes.count - 1].name = Self.outputName
        }
        if spatial {
            outputInfo = ONNXProto.valueInfo(Self.outputName, elementType: .float,
                                             dimensions: [.symbol(Self.batchSymbol), .size(shape.channels), .size(shape.height), .size(shape.width)],
                                             doc: "the network's output maps (per-pixel or per-cell logits and regressions), N×C×H×W")
        } else {
            outputInfo = ONNXProto.valueInfo(Self.outputName, elementType: .float, dimensions: [.symbol(Self.batchSymbol), .size(shape.elementCount)],
                                             doc: "the network's output before softmax (logits), N×classes")
        }
    }

    // MARK: Ops

    mutating func emit(_ node: LayerNode, index: Int) throws -> EmittedValue {
        let name = node.name
        let inShapes = node.inputs.map { shapes[$0] }
        let outShape = shapes[index]
        switch node.op {
        case let conv as Conv2d:
            let x = try rank4(node.inputs[0])
            let w = try weight(name + "/weight", shape: [conv.outChannels, inShapes[0].channels / conv.groups, conv.kernel, conv.kernel])
            var inputs = [x, w]
            if conv.bias { inputs.append(try weight(name + "/bias", shape: [conv.outChannels])) }
            let p = conv.padding
            return EmittedValue(name: op("Conv", inputs, name, [
                ONNXProto.attribute("kernel_shape", ints: [conv.kernel, conv.kernel]),
                ONNXProto.attribute("strides", ints: [conv.stride, conv.stride]),
                ONNXProto.attribute("pads", ints: [p, p, p, p]),
                ONNXProto.attribute("dilations", ints: [conv.dilation, conv.dilation]),
                ONNXProto.attribute("group", int: conv.groups),
            ]), rank: 4)

        case let conv as Conv1d:
            // A 1-D convolution over N×C×1×L: a 2-D convolution with a 1×k kernel.
            let x = try rank4(node.inputs[0])
            let shape = [conv.outChannels, inShapes[0].channels / conv.groups, conv.kernel]
            let w = try weight(name + "/weight", shape: shape, as: [shape[0], shape[1], 1, shape[2]])
            var inputs = [x, w]
            if conv.bias { inputs.append(try weight(name + "/bias", shape: [conv.outChannels])) }
            return EmittedValue(name: op("Conv", inputs, name, [
                ONNXProto.attribute("kernel_shape", ints: [1, conv.kernel]),
                ONNXProto.attribute("strides", ints: [1, conv.stride]),
                ONNXProto.attribute("pads", ints: [0, conv.padding, 0, conv.padding]),
                ONNXProto.attribute("dilations", ints: [1, conv.dilation]),
                ONNXProto.attribute("group", int: conv.groups),
            ]), rank: 4)

        case let linear as Linear:
            let x = try rank2(node.inputs[0])
            var inputs = [x, try weight(name + "/weight", shape: [linear.outFeatures, inShapes[0].elementCount])]
            if linear.bias { inputs.append(try weight(name + "/bias", shape: [linear.outFeatures])) }
            return EmittedValue(name: op("Gemm", inputs, name, [ONNXProto.attribute("transB", int: 1)]), rank: 2)

        case let bn as BatchNorm:
            let input = values[node.inputs[0]]
            let c = outShape.channels
            let scale = bn.affine ? try weight(name + "/weight", shape: [c]) : constant(Array(repeating: 1, count: c), shape: [c], name + "/unit_scale")
            let shift = bn.affine ? try weight(name + "/bias", shape: [c]) : constant(Array(repeating: 0, count: c), shape: [c], name + "/zero_shift")
            let mean = try weight(name + "/running_mean", shape: [c])
            let variance = try weight(name + "/running_var", shape: [c])
            return EmittedValue(name: op("BatchNormalization", [try floats(node.inputs[0]), scale, shift, mean, variance], name,
                                         [ONNXProto.attribute("epsilon", float: 1e-5)]), rank: input.rank == 3 ? 4 : input.rank)

        case let activation as Activation:
            let rank = rankOf(node.inputs[0])
            let x = try floats(node.inputs[0])
            return EmittedValue(name: self.activation(activation.function, x, name), rank: rank)

        case let pool as MaxPool:
            let x = try rank4(node.inputs[0])
            return EmittedValue(name: op("MaxPool", [x], name, poolAttributes(pool.pool)), rank: 4)

        case let pool as AvgPool:
            let x = try rank4(node.inputs[0])
            return EmittedValue(name: op("AveragePool", [x], name, poolAttributes(pool.pool) + [
                ONNXProto.attribute("count_include_pad", int: pool.pool.countIncludePadding ? 1 : 0),
            ]), rank: 4)

        case is GlobalAvgPool:
            let x = try rank4(node.inputs[0])
            return EmittedValue(name: op("GlobalAveragePool", [x], name), rank: 4)

        case is Add:
            let (inputs, rank) = try aligned(node.inputs)
            if inputs.count == 2 { return EmittedValue(name: op("Add", inputs, name), rank: rank) }
            return EmittedValue(name: op("Sum", inputs, name), rank: rank)

        case is Concat:
            let (inputs, rank) = try aligned(node.inputs)
            return EmittedValue(name: op("Concat", inputs, name, [ONNXProto.attribute("axis", int: 1)]), rank: rank)

        case is Dropout, is Identity:
            // Identity in evaluation: the value itself.
            let rank = rankOf(node.inputs[0])
            return EmittedValue(name: try floats(node.inputs[0]), rank: rank)

        case is Flatten:
            return EmittedValue(name: try rank2(node.inputs[0], as: name), rank: 2)

        case let zero as Zero:
            // Zeros shaped like the (subsampled) input, with the input's batch size.
            let rank = rankOf(node.inputs[0])
            var x = try floats(node.inputs[0])
            let inShape = inShapes[0]
            if zero.stride > 1, rank == 4, inShape.height > 1 || inShape.width > 1 {
                x = op("Slice", [x, int64Vector([0, 0]), int64Vector([Int64.max, Int64.max]), int64Vector([2, 3]),
                                 int64Vector([Int64(zero.stride), Int64(zero.stride)])], name + "/subsampled")
            }
            let shape = op("Shape", [x], name + "/shape")
            return EmittedValue(name: op("ConstantOfShape", [shape], name, [
                ONNXProto.attribute("value", tensor: ONNXProto.floatTensor("", shape: [1], values: [0])),
            ]), rank: rank)

        case let embedding as Embedding:
            return EmittedValue(name: try self.embedding(embedding, node: node, inShape: inShapes[0]), rank: 4)

        case is SequenceMaxPool, is SequenceMeanPool:
            let x = try rank4(node.inputs[0])
            let length = inShapes[0].width
            let isMax = node.op is SequenceMaxPool
            guard let (mask, valid) = try sequenceMask(length: length) else {
                return EmittedValue(name: reduce(isMax ? "ReduceMax" : "ReduceMean", x, axes: [2, 3], keepDims: false, name), rank: 2)
            }
            let mask4 = op("Reshape", [mask, int64Vector([-1, 1, 1, Int64(length)])], name + "/mask")
            if isMax {
                let masked = op("Where", [mask4, x, floatScalar(-.infinity)], name + "/masked")
                return EmittedValue(name: reduce("ReduceMax", masked, axes: [2, 3], keepDims: false, name), rank: 2)
            }
            let masked = op("Where", [mask4, x, floatScalar(0)], name + "/masked")
            let sum = reduce("ReduceSum", masked, axes: [2, 3], keepDims: false, name + "/sum")
            return EmittedValue(name: op("Div", [sum, valid], name), rank: 2)

        case let norm as LayerNorm:
            // Normalisation over the channels (axis 1) at each position; eps 1e-5, biased variance.
            let rank = rankOf(node.inputs[0]) == 2 ? 2 : 4
            let x = rank == 2 ? try rank2(node.inputs[0]) : try rank4(node.inputs[0])
            let mean = reduce("ReduceMean", x, axes: [1], keepDims: true, name + "/mean")
            let centered = op("Sub", [x, mean], name + "/centered")
            let squared = op("Mul", [centered, centered], name + "/squared")
            let variance = reduce("ReduceMean", squared, axes: [1], keepDims: true, name + "/variance")
            let std = op("Sqrt", [op("Add", [variance, floatScalar(1e-5)], name + "/variance_eps")], name + "/std")
            guard norm.affine else { return EmittedValue(name: op("Div", [centered, std], name), rank: rank) }
            let normalized = op("Div", [centered, std], name + "/normalized")
            let c = outShape.channels
            let broadcast = rank == 2 ? [c] : [c, 1, 1]
            let gamma = try weight(name + "/weight", shape: [c], as: broadcast)
            let beta = try weight(name + "/bias", shape: [c], as: broadcast)
            return EmittedValue(name: op("Add", [op("Mul", [normalized, gamma], name + "/scaled"), beta], name), rank: rank)

        case let attention as SelfAttention:
            return EmittedValue(name: try self.attention(attention, node: node, inShape: inShapes[0]), rank: 4)

        case let up as Upsample:
            // Resize by [1, 1, s, s]: nearest = PyTorch's floor(i / s) (asymmetric, floor); bilinear =
            // PyTorch's align_corners=False (half_pixel; onnxruntime clamps to the border as PyTorch does).
            let x = try rank4(node.inputs[0])
            let s = Float(up.scale)
            let scales = constant([1, 1, s, s], shape: [4], name + "/scales")
            let attributes: [Onnx_AttributeProto]
            switch up.mode {
            case .nearest:
                attributes = [ONNXProto.attribute("mode", string: "nearest"),
                              ONNXProto.attribute("coordinate_transformation_mode", string: "asymmetric"),
                              ONNXProto.attribute("nearest_mode", string: "floor")]
            case .bilinear:
                attributes = [ONNXProto.attribute("mode", string: "linear"),
                              ONNXProto.attribute("coordinate_transformation_mode", string: "half_pixel")]
            }
            return EmittedValue(name: op("Resize", [x, "", scales], name, attributes), rank: 4)

        case let conv as ConvTranspose2d:
            let x = try rank4(node.inputs[0])
            let w = try weight(name + "/weight", shape: [inShapes[0].channels, conv.outChannels, conv.kernel, conv.kernel])
            var inputs = [x, w]
            if conv.bias { inputs.append(try weight(name + "/bias", shape: [conv.outChannels])) }
            let p = conv.padding
            return EmittedValue(name: op("ConvTranspose", inputs, name, [
                ONNXProto.attribute("kernel_shape", ints: [conv.kernel, conv.kernel]),
                ONNXProto.attribute("strides", ints: [conv.stride, conv.stride]),
                ONNXProto.attribute("pads", ints: [p, p, p, p]),
                ONNXProto.attribute("output_padding", ints: [conv.outputPadding, conv.outputPadding]),
                ONNXProto.attribute("dilations", ints: [1, 1]),
                ONNXProto.attribute("group", int: 1),
            ]), rank: 4)

        case is Input:
            throw ONNXExportError.invalid("node '\(name)': the input must be node 0")

        default:
            throw ONNXExportError.unsupportedOp(kind: node.op.kind, node: name)
        }
    }

    func poolAttributes(_ p: PoolAttributes) -> [Onnx_AttributeProto] {
        [ONNXProto.attribute("kernel_shape", ints: [p.kernel, p.kernel]),
         ONNXProto.attribute("strides", ints: [p.stride, p.stride]),
         ONNXProto.attribute("pads", ints: [p.padding, p.padding, p.padding, p.padding])]
    }

    mutating func activation(_ function: ActivationKind, _ x: String, _ name: String) -> String {
        switch function {
        case .relu:
            return op("Relu", [x], name)
        case .relu6:
            return op("Clip", [x, floatScalar(0), floatScalar(6)], name)
        case .sigmoid:
            return op("Sigmoid", [x], name)
        case .hardSwish:
            if opset >= 14 { return op("HardSwish", [x], name) }
            let gate = op("HardSigmoid", [x], name + "/gate", [ONNXProto.attribute("alpha", float: 1 / 6), ONNXProto.attribute("beta", float: 0.5)])
            return op("Mul", [x, gate], name)
        case .gelu:
            // The exact GELU, 0.5·x·(1 + erf(x/√2)).
            if opset >= 20 { return op("Gelu", [x], name) }
            let scaled = op("Mul", [x, floatScalar(0.70710678118654752)], name + "/scaled")
            let cdf = op("Add", [op("Erf", [scaled], name + "/erf"), floatScalar(1)], name + "/erf_plus_one")
            let half = op("Mul", [x, floatScalar(0.5)], name + "/half")
            return op("Mul", [half, cdf], name)
        }
    }

    /// An embedding (bag) of the token ids: `[N, K, L]` → `[N, D, 1, L]`; padding ids add nothing,
    /// a position's value is the mean over its non-padding ids (0 when there are none).
    mutating func embedding(_ e: Embedding, node: LayerNode, inShape: FeatureShape) throws -> String {
        let name = node.name
        guard values[node.inputs[0]].isTokens, let ids = clampedIDs else {
            throw ONNXExportError.invalid("node '\(name)': an embedding must read the network's token input")
        }
        let table = try weight(name + "/weight", shape: [e.vocabulary, e.dimension])
        let rows = op("Gather", [table, ids], name + "/rows", [ONNXProto.attribute("axis", int: 0)])          // N×K×L×D
        let present = op("Cast", [op("Greater", [ids, int64Scalar(0)], name + "/is_token")], name + "/present",
                         [ONNXProto.attribute("to", int: Onnx_TensorProto.DataType.float.rawValue)])     // N×K×L
        let weights = op("Unsqueeze", [present, int64Vector([3])], name + "/present_column")                 // N×K×L×1
        let masked = op("Mul", [rows, weights], name + "/masked_rows")
        let pooled: String
        if inShape.channels == 1 {
            pooled = masked                                                                                   // N×1×L×D
        } else {
            let sum = reduce("ReduceSum", masked, axes: [1], keepDims: true, name + "/sum")                 // N×1×L×D
            let count = reduce("ReduceSum", weights, axes: [1], keepDims: true, name + "/count")            // N×1×L×1
            pooled = op("Div", [sum, op("Max", [count, floatScalar(1)], name + "/divisor")], name + "/mean")
        }
        return op("Transpose", [pooled], name, [ONNXProto.attribute("perm", ints: [0, 3, 1, 2])])           // N×D×1×L
    }

    /// Multi-head self-attention (PyTorch's `nn.MultiheadAttention`, key padding mask from the
    /// embedding) on `[N, D, 1, L]`.
    mutating func attention(_ a: SelfAttention, node: LayerNode, inShape: FeatureShape) throws -> String {
        let name = node.name
        let d = inShape.channels, l = inShape.width, h = a.heads, hd = d / h
        let x = try rank4(node.inputs[0])
        let sequence = op("Reshape", [x, int64Vector([0, Int64(d), Int64(l)])], name + "/sequence")                   // N×D×L
        let positions = op("Transpose", [sequence], name + "/positions", [ONNXProto.attribute("perm", ints: [0, 2, 1])]) // N×L×D
        let rows = op("Reshape", [positions, int64Vector([-1, Int64(d)])], name + "/rows")                             // NL×D
        let inWeight = try weight(name + "/in_proj_weight", shape: [3 * d, d])
        let inBias = try weight(name + "/in_proj_bias", shape: [3 * d])
        let qkv = op("Gemm", [rows, inWeight, inBias], name + "/qkv", [ONNXProto.attribute("transB", int: 1)])         // NL×3D
        let parts = opMulti("Split", [qkv, int64Vector([Int64(d), Int64(d), Int64(d)])],
                            [name + "/q", name + "/k", name + "/v"], [ONNXProto.attribute("axis", int: 1)])
        let headShape = int64Vector([-1, Int64(l), Int64(h), Int64(hd)])
        func heads(_ v: String, _ perm: [Int], _ label: String) -> String {
            let split = op("Reshape", [v, headShape], name + "/" + label + "_split")
            return op("Transpose", [split], name + "/" + label + "_heads", [ONNXProto.attribute("perm", ints: perm)])
        }
        let q = heads(parts[0], [0, 2, 1, 3], "q")                                                                    // N×H×L×hd
        let k = heads(parts[1], [0, 2, 3, 1], "k")                                                                    // N×H×hd×L
        let v = heads(parts[2], [0, 2, 1, 3], "v")                                                                    // N×H×L×hd
        var scores = op("Mul", [op("MatMul", [q, k], name + "/dot"), floatScalar(1 / Float(hd).squareRoot())], name + "/scores")
        if let (mask, _) = try sequenceMask(length: l) {
            let keys = op("Reshape", [mask, int64Vector([-1, 1, 1, Int64(l)])], name + "/key_mask")
            scores = op("Where", [keys, scores, floatScalar(-.infinity)], name + "/masked_scores")
        }
        let weights = op("Softmax", [scores], name + "/weights", [ONNXProto.attribute("axis", int: -1)])
        let attended = op("MatMul", [weights, v], name + "/attended")                                                 // N×H×L×hd
        let merged = op("Transpose", [attended], name + "/merged", [ONNXProto.attribute("perm", ints: [0, 2, 1, 3])])  // N×L×H×hd
        let mergedRows = op("Reshape", [merged, int64Vector([-1, Int64(d)])], name + "/merged_rows")                  // NL×D
        let outWeight = try weight(name + "/out_proj/weight", shape: [d, d])
        let outBias = try weight(name + "/out_proj/bias", shape: [d])
        let projected = op("Gemm", [mergedRows, outWeight, outBias], name + "/projected", [ONNXProto.attribute("transB", int: 1)])
        let back = op("Reshape", [projected, int64Vector([-1, Int64(l), Int64(d)])], name + "/projected_positions")  // N×L×D
        let channels = op("Transpose", [back], name + "/channels", [ONNXProto.attribute("perm", ints: [0, 2, 1])])    // N×D×L
        return op("Reshape", [channels, int64Vector([0, Int64(d), 1, Int64(l)])], name)                               // N×D×1×L
    }

    // MARK: Sequence masks

    /// The valid-position mask `[N, length]` (bool) and the valid length `[N, 1]` (float) of every
    /// sample, for a sequence of `length` positions; `nil` when the network has no embedding (every
    /// position is valid). Matches `ExecutionContext.validLength`: a sample's valid length is the
    /// index of the last non-padding word id + 1 (at least 1), rescaled to a shortened sequence as
    /// `min(length, max(1, ⌈valid · length / L₀⌉))`.
    mutating func sequenceMask(length: Int) throws -> (mask: String, valid: String)? {
        guard graph.nodes.contains(where: { $0.op is Embedding }), let ids = clampedIDs else { return nil }
        let key = "mask:\(length)"
        if let mask = cache[key], let valid = cache[key + ":valid"] { return (mask, valid) }
        let base = graph.inputShape.width
        if lengths == nil {
            let words = op("Gather", [ids, int64Scalar(0)], "sequence/word_ids", [ONNXProto.attribute("axis", int: 1)])  // N×L₀
            let present = op("Cast", [op("Greater", [words, int64Scalar(0)], "sequence/is_word")], "sequence/word_present",
                             [ONNXProto.attribute("to", int: Onnx_TensorProto.DataType.float.rawValue)])
            let positions = constant((1...base).map { Float($0) }, shape: [base], "sequence/positions_from_1")
            let last = reduce("ReduceMax", op("Mul", [present, positions], "sequence/word_positions"), axes: [1], keepDims: true,
                              "sequence/last_word")                                                                     // N×1
            lengths = op("Max", [last, floatScalar(1)], "sequence/length")
        }
        var valid = lengths!
        if length != base {
            let scaled = op("Ceil", [op("Div", [op("Mul", [valid, floatScalar(Float(length))], "sequence/length_x\(length)"),
                                                 floatScalar(Float(base))], "sequence/length_scaled_\(length)")], "sequence/length_ceil_\(length)")
            valid = op("Min", [op("Max", [scaled, floatScalar(1)], "sequence/length_at_least_1_\(length)"), floatScalar(Float(length))],
                       "sequence/length_\(length)")
        }
        let positions = constant((0..<length).map { Float($0) }, shape: [1, length], "sequence/positions_\(length)")
        let mask = op("Less", [positions, valid], "sequence/mask_\(length)")                                           // N×length
        cache[key] = mask
        cache[key + ":valid"] = valid
        return (mask, valid)
    }

    // MARK: Values and conversions

    func rankOf(_ index: Int) -> Int { values[index].isTokens ? 4 : values[index].rank }

    /// The float value of node `index` (token ids as floats, N×K×1×L).
    mutating func floats(_ index: Int) throws -> String {
        values[index].isTokens ? try tokenFloats() : values[index].name
    }

    /// The raw token ids as floats, `[N, K, 1, L]` (what the engine sees).
    mutating func tokenFloats() throws -> String {
        if let cached = cache["tokens:float"] { return cached }
        let s = graph.inputShape
        let f = op("Cast", [Self.inputName], "input/float", [ONNXProto.attribute("to", int: Onnx_TensorProto.DataType.float.rawValue)])
        let r = op("Reshape", [f, int64Vector([0, Int64(s.channels), 1, Int64(s.width)])], "input/float_4d")
        cache["tokens:float"] = r
        return r
    }

    /// Node `index`'s value as `[N, C, H, W]`.
    mutating func rank4(_ index: Int) throws -> String {
        let v = values[index]
        if v.isTokens { return try tokenFloats() }
        if v.rank == 4 { return v.name }
        let key = "rank4:" + v.name
        if let cached = cache[key] { return cached }
        let s = shapes[index]
        let r = op("Reshape", [v.name, int64Vector([0, Int64(s.channels), Int64(s.height), Int64(s.width)])], v.name + "/4d")
        cache[key] = r
        return r
    }

    /// Node `index`'s value as `[N, C·H·W]` (per-sample (c, h, w) order, PyTorch's flatten).
    mutating func rank2(_ index: Int, as name: String? = nil) throws -> String {
        let v = values[index]
        if v.rank == 2, !v.isTokens { return v.name }
        let source = try rank4(index)
        let key = "rank2:" + source
        if name == nil, let cached = cache[key] { return cached }
        let r = op("Flatten", [source], name ?? (source + "/flat"), [ONNXProto.attribute("axis", int: 1)])
        if name == nil { cache[key] = r }
        return r
    }

    /// The inputs of an element-wise or concatenating op in one rank (the first input's).
    mutating func aligned(_ indices: [Int]) throws -> (names: [String], rank: Int) {
        let rank = rankOf(indices[0])
        return (try indices.map { rank == 2 ? try rank2($0) : try rank4($0) }, rank)
    }

    // MARK: Tensors and constants

    /// The weight `name`, checked against `shape`, stored as an initializer of shape `as` (same values).
    mutating func weight(_ name: String, shape: [Int], as stored: [Int]? = nil) throws -> String {
        guard let t = network.tensors[name] else { throw ONNXExportError.missingTensor(name) }
        guard t.shape == shape, t.values.count == shape.reduce(1, *) else {
            throw ONNXExportError.tensorShapeMismatch(name: name, expected: shape, got: t.shape)
        }
        let key = "weight:" + name + ":" + (stored ?? shape).map(String.init).joined(separator: "x")
        if let cached = cache[key] { return cached }
        let n = initializer(name, shape: stored ?? shape, values: t.values)
        cache[key] = n
        return n
    }

    mutating func initializer(_ name: String, shape: [Int], values: [Float]) -> String {
        let n = unique(name)
        initializers.append(ONNXProto.floatTensor(n, shape: shape, values: values))
        return n
    }

    mutating func constant(_ values: [Float], shape: [Int], _ name: String) -> String {
        initializer(name, shape: shape, values: values)
    }

    mutating func floatScalar(_ v: Float) -> String {
        let key = "f:\(v.bitPattern)"
        if let cached = cache[key] { return cached }
        let n = unique("const/float/\(v)")
        initializers.append(ONNXProto.floatTensor(n, shape: [], values: [v]))
        cache[key] = n
        return n
    }

    mutating func int64Scalar(_ v: Int64) -> String {
        let key = "i:\(v)"
        if let cached = cache[key] { return cached }
        let n = unique("const/int64/\(v)")
        initializers.append(ONNXProto.int64Tensor(n, shape: [], values: [v]))
        cache[key] = n
        return n
    }

    mutating func int64Vector(_ v: [Int64]) -> String {
        let text = v.map(String.init).joined(separator: ",")
        let key = "iv:" + text
        if let cached = cache[key] { return cached }
        let n = unique("const/int64/[\(text)]")
        initializers.append(ONNXProto.int64Tensor(n, shape: [v.count], values: v))
        cache[key] = n
        return n
    }

    // MARK: Nodes

    mutating func unique(_ base: String) -> String {
        if used.insert(base).inserted { return base }
        var i = 1
        while !used.insert("\(base)_\(i)").inserted { i += 1 }
        return "\(base)_\(i)"
    }

    /// Appends a node with one output named like `output` (made unique) and returns that name.
    @discardableResult
    mutating func op(_ type: String, _ inputs: [String], _ output: String, _ attributes: [Onnx_AttributeProto] = []) -> String {
        opMulti(type, inputs, [output], attributes)[0]
    }

    mutating func opMulti(_ type: String, _ inputs: [String], _ outputs: [String], _ attributes: [Onnx_AttributeProto] = []) -> [String] {
        let names = outputs.map { unique($0) }
        var n = Onnx_NodeProto()
        n.opType = type
        n.input = inputs
        n.output = names
        n.name = names[0]
        n.attribute = attributes
        nodes.append(n)
        return names
    }

    /// A reduction over `axes`: axes as an input from opset 18 (ReduceSum: 13), an attribute before.
    mutating func reduce(_ type: String, _ x: String, axes: [Int], keepDims: Bool, _ name: String) -> String {
        let keep = ONNXProto.attribute("keepdims", int: keepDims ? 1 : 0)
        if opset >= 18 || type == "ReduceSum" {
            return op(type, [x, int64Vector(axes.map(Int64.init))], name, [keep])
        }
        return op(type, [x], name, [ONNXProto.attribute("axes", ints: axes), keep])
    }
}
