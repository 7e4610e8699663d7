import NASCore

/// One value of an operation's attributes (ints, floats, flags and names).
public enum OpAttribute: Hashable, Sendable, CustomStringConvertible {
    case int(Int)
    case double(Double)
    case bool(Bool)
    case string(String)

    public var description: String {
        switch self {
        case let .int(v): return String(v)
        case let .double(v): return String(v)
        case let .bool(v): return String(v)
        case let .string(v): return v
        }
    }
}

/// An operation's attributes in its own order, as `(name, value)` pairs.
public typealias OpAttributeList = [(name: String, value: OpAttribute)]

/// Reads the attributes of an operation back (graph JSON, tests): typed look-ups that throw
/// `NetworkGraphError.invalidAttributes` naming the operation and the attribute.
public struct OpAttributeReader: Sendable {
    public let kind: String
    public let values: [String: OpAttribute]

    public init(kind: String, values: [String: OpAttribute]) {
        self.kind = kind
        self.values = values
    }

    func value(_ name: String) throws -> OpAttribute {
        guard let v = values[name] else { throw NetworkGraphError.invalidAttributes(kind: kind, message: "missing attribute '\(name)'") }
        return v
    }

    public func int(_ name: String) throws -> Int {
        switch try value(name) {
        case let .int(v): return v
        case let .double(v) where v.rounded() == v && abs(v) < 1e15: return Int(v)
        default: throw NetworkGraphError.invalidAttributes(kind: kind, message: "attribute '\(name)' must be an integer")
        }
    }

    public func double(_ name: String) throws -> Double {
        switch try value(name) {
        case let .double(v): return v
        case let .int(v): return Double(v)
        default: throw NetworkGraphError.invalidAttributes(kind: kind, message: "attribute '\(name)' must be a number")
        }
    }

    public func bool(_ name: String) throws -> Bool {
        guard case let .bool(v) = try value(name) else {
            throw NetworkGraphError.invalidAttributes(kind: kind, message: "attribute '\(name)' must be true or false")
        }
        return v
    }

    public func string(_ name: String) throws -> String {
        guard case let .string(v) = try value(name) else {
            throw NetworkGraphError.invalidAttributes(kind: kind, message: "attribute '\(name)' must be a string")
        }
        return v
    }
}

/// Cheap, training-free costs of one operation.
public struct OpCost: Hashable, Sendable {
    /// Trainable parameters.
    public var parameters: Int
    /// Multiply-accumulates of the operation's matrix products (convolutions, linear layers,
    /// attention, ...); element-wise work is not counted.
    public var multiplyAccumulates: Int
    /// FLOPs under NAS-Bench-201's convention (see `NetworkCost`).
    public var nasBench201Flops: Int

    public init(parameters: Int = 0, multiplyAccumulates: Int = 0, nasBench201Flops: Int = 0) {
        self.parameters = parameters
        self.multiplyAccumulates = multiplyAccumulates
        self.nasBench201Flops = nasBench201Flops
    }

    /// No parameters, no MACs, no FLOPs (data movement only: identity, add, concat …).
    public static let free = OpCost()
}

/// What an operation needs to build its engine layer.
public struct LayerContext {
    /// The node's name; parameters are called `name + "/weight"` etc.
    public let name: String
    public let inputShapes: [FeatureShape]
    public let outputShape: FeatureShape
    /// Scheme for conv/linear-like weights.
    public let initializer: WeightInitializer
    /// Source of initial weights (consumed in node order, so networks are reproducible).
    public var rng: SeededGenerator
}

/// An engine layer made by `GraphOp.makeLayer` (opaque outside the engine).
public struct LayerHandle {
    let layer: Layer
    init(_ layer: Layer) { self.layer = layer }
}

/// Everything NASLab knows about one kind of operation, in one place: its name, attributes,
/// shape inference, costs, latency-table key and engine layer. Each op family lives in its own
/// file under `Sources/Engine/Ops/` and is listed once in `OpRegistry.standard`.
///
/// Nothing has a silent fallback: an op must state its shape rule, its cost and its layer, and a
/// graph whose op type is not registered fails shape inference (`NetworkGraphError.unregisteredOp`).
///
/// ```swift
/// struct Scale: GraphOp {                       // a new op: this file + one registry line
///     static let kind = "scale"
///     var factor: Double
///     init(factor: Double) { self.factor = factor }
///     init(attributes a: OpAttributeReader) throws { factor = try a.double("factor") }
///     var attributes: OpAttributeList { [("factor", .double(factor))] }
///     func outputShape(inputs: [FeatureShape]) throws -> FeatureShape { try Self.single(inputs) }
///     func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost { .free }
///     func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? { … }
/// }
/// ```
public protocol GraphOp: Sendable, CustomStringConvertible {
    /// The registered name (`conv2d`): graph JSON, latency keys and messages use it.
    static var kind: String { get }
    /// Rebuilds the op from its attributes (graph JSON).
    init(attributes: OpAttributeReader) throws
    /// Every attribute, in a fixed order (identity, JSON, descriptions).
    var attributes: OpAttributeList { get }
    /// The attributes that change the evaluation-mode cost (latency-table keys). Default: all.
    var latencyAttributes: OpAttributeList { get }
    /// The output shape for these input shapes; throws `OpShapeError` when they do not fit.
    func outputShape(inputs: [FeatureShape]) throws -> FeatureShape
    /// Parameters, MACs and NAS-Bench-201 FLOPs for these shapes.
    func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost
    /// The engine layer (`nil` only for the network input).
    func makeLayer(_ context: inout LayerContext) throws -> LayerHandle?
}

/// Why an op's shape rule rejected its inputs.
public struct OpShapeError: Error, Hashable, Sendable {
    public var message: String
    /// The wrong number of inputs (reported as `invalidInputs`), not a wrong shape.
    public var isArity: Bool
    public init(_ message: String, arity: Bool = false) {
        self.message = message
        self.isArity = arity
    }
}

extension GraphOp {
    public var latencyAttributes: OpAttributeList { attributes }

    /// `kind(name:value,…)`, or just `kind` without attributes.
    public var description: String { Self.signature(Self.kind, attributes) }

    static func signature(_ kind: String, _ attributes: OpAttributeList) -> String {
        attributes.isEmpty ? kind : kind + "(" + attributes.map { "\($0.name):\($0.value)" }.joined(separator: ",") + ")"
    }

    /// The latency-table spelling of this op (without input shapes).
    public var latencySignature: String { Self.signature(Self.kind, latencyAttributes) }

    /// The kind of this op value (`Self.kind`).
    public var kind: String { Self.kind }

    /// The one input of a unary op.
    public static func single(_ inputs: [FeatureShape]) throws -> FeatureShape {
        guard inputs.count == 1 else { throw OpShapeError("expects 1 input, got \(inputs.count)", arity: true) }
        return inputs[0]
    }

    /// Output size of a sliding window along one axis, or a shape error when it does not fit.
    public static func windowOutput(_ size: Int, kernel: Int, stride: Int, padding: Int, dilation: Int) throws -> Int {
        let span = dilation * (kernel - 1) + 1
        guard size + 2 * padding >= span else {
            throw OpShapeError("kernel \(kernel) (dilation \(dilation), padding \(padding)) does not fit input size \(size)")
        }
        return (size + 2 * padding - span) / stride + 1
    }

    /// Whether `other` is the same op with the same attributes.
    public func isSame(as other: any GraphOp) -> Bool {
        type(of: other) == Self.self && description == other.description
    }
}

/// An op without attributes (`add`, `identity`, `globalAvgPool`, …): its JSON form and identity
/// are its kind alone.
public protocol AttributeFreeOp: GraphOp {
    init()
}

extension AttributeFreeOp {
    public init(attributes a: OpAttributeReader) throws { self.init() }
    public var attributes: OpAttributeList { [] }
}

/// The operations a graph may use: each op type once, looked up by kind.
///
/// `OpRegistry.standard` lists every op NASLab ships; a test or an extension can register more
/// with `registering(_:)`.
public struct OpRegistry: Sendable {
    public let types: [any GraphOp.Type]
    private let byKind: [String: any GraphOp.Type]

    public init(_ types: [any GraphOp.Type]) {
        var byKind = [String: any GraphOp.Type]()
        for t in types {
            precondition(byKind[t.kind] == nil, "operation kind '\(t.kind)' registered twice")
            byKind[t.kind] = t
        }
        self.types = types
        self.byKind = byKind
    }

    /// The registry with `type` added.
    public func registering(_ type: any GraphOp.Type) -> OpRegistry { OpRegistry(types + [type]) }

    /// The op type registered under `kind`, if any.
    public func type(ofKind kind: String) -> (any GraphOp.Type)? { byKind[kind] }

    /// Whether this exact op type is registered.
    public func contains(_ op: any GraphOp) -> Bool {
        guard let t = byKind[op.kind] else { return false }
        return t == Swift.type(of: op)
    }

    /// Every op NASLab ships — one line per op family.
    public static let standard = OpRegistry([
        Input.self,
        Conv2d.self,
        Linear.self,
        BatchNorm.self,
        Activation.self,
        MaxPool.self, AvgPool.self, GlobalAvgPool.self,
        Add.self, Concat.self,
        Dropout.self, Flatten.self, Zero.self, Identity.self,
        Embedding.self,
        Conv1d.self,
        SequenceMaxPool.self, SequenceMeanPool.self,
        LayerNorm.self,
        SelfAttention.self,
        Upsample.self, ConvTranspose2d.self,
    ])
}
