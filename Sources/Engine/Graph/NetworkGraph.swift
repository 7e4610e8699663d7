import NASCore

/// One node of a `NetworkGraph`: a named op applied to earlier nodes.
public struct LayerNode: Sendable {
    /// A path-like name, unique in the graph (`stage1/block0/conv`); parameters are stored under it.
    public var name: String
    public var op: any GraphOp
    /// Indices of earlier nodes.
    public var inputs: [Int]

    public init(name: String, op: any GraphOp, inputs: [Int]) {
        self.name = name
        self.op = op
        self.inputs = inputs
    }
}

extension LayerNode: Hashable {
    public static func == (a: LayerNode, b: LayerNode) -> Bool {
        a.name == b.name && a.inputs == b.inputs && a.op.isSame(as: b.op)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(op.description)
        hasher.combine(inputs)
    }
}

/// Errors found while building or checking a network graph.
public enum NetworkGraphError: Error, Hashable, CustomStringConvertible {
    case invalidShape(node: String, message: String)
    case invalidInputs(node: String, message: String)
    case duplicateName(String)
    /// The node's op type is not in the registry used to check the graph.
    case unregisteredOp(node: String, kind: String)
    /// Attributes that cannot be read back into an op (graph JSON).
    case invalidAttributes(kind: String, message: String)

    public var description: String {
        switch self {
        case let .invalidShape(node, message): return "node '\(node)': \(message)"
        case let .invalidInputs(node, message): return "node '\(node)': \(message)"
        case let .duplicateName(name): return "duplicate node name '\(name)'"
        case let .unregisteredOp(node, kind):
            return "node '\(node)': operation '\(kind)' is not registered (add it to OpRegistry)"
        case let .invalidAttributes(kind, message): return "operation '\(kind)': \(message)"
        }
    }
}

/// A framework-neutral description of a network: a DAG of `LayerNode`s in topological order.
///
/// Search spaces decode architectures into this IR; the engine builds trainable networks from
/// it, and the estimators count parameters and FLOPs on it. Node 0 is the input; the last node
/// is the output (class logits). Every op is a `GraphOp` (see `OpRegistry.standard`).
///
/// ```swift
/// var g = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 8, width: 8))
/// var x = g.add("conv", .conv2d(Conv2dAttributes(outChannels: 16, kernel: 3, padding: 1)), g.input)
/// x = g.add("relu", .activation(.relu), x)
/// x = g.add("gap", .globalAvgPool, x)
/// x = g.add("fc", .linear(outFeatures: 10, bias: true), x)
/// let shapes = try g.inferShapes()
/// ```
public struct NetworkGraph: Hashable, Sendable {
    public private(set) var inputShape: FeatureShape
    public private(set) var nodes: [LayerNode]

    public init(inputShape: FeatureShape) {
        self.inputShape = inputShape
        self.nodes = [LayerNode(name: "input", op: Input(), inputs: [])]
    }

    /// Index of the input node.
    public var input: Int { 0 }
    /// Index of the output node (the last one).
    public var output: Int { nodes.count - 1 }

    /// Appends a node and returns its index. Names must be unique (checked by `inferShapes`).
    @discardableResult
    public mutating func add<Op: GraphOp>(_ name: String, _ op: Op, _ inputs: Int...) -> Int {
        add(name, op, inputs: inputs)
    }

    @discardableResult
    public mutating func add<Op: GraphOp>(_ name: String, _ op: Op, inputs: [Int]) -> Int {
        addNode(name, op, inputs: inputs)
    }

    /// Appends a node whose op type is only known at run time.
    @discardableResult
    public mutating func addNode(_ name: String, _ op: any GraphOp, inputs: [Int]) -> Int {
        precondition(inputs.allSatisfy { $0 >= 0 && $0 < nodes.count }, "inputs must be earlier nodes")
        nodes.append(LayerNode(name: name, op: op, inputs: inputs))
        return nodes.count - 1
    }

    /// The output shape of one node given its input shapes, with errors naming the node.
    public static func outputShape(of node: LayerNode, inputs: [FeatureShape], registry: OpRegistry = .standard) throws -> FeatureShape {
        guard registry.contains(node.op) else { throw NetworkGraphError.unregisteredOp(node: node.name, kind: node.op.kind) }
        do {
            return try node.op.outputShape(inputs: inputs)
        } catch let e as OpShapeError {
            throw e.isArity ? NetworkGraphError.invalidInputs(node: node.name, message: e.message)
                            : NetworkGraphError.invalidShape(node: node.name, message: e.message)
        }
    }

    /// The output shape of every node, or the first inconsistency found.
    /// - Parameter registry: the ops allowed (default: every op NASLab ships).
    public func inferShapes(registry: OpRegistry = .standard) throws -> [FeatureShape] {
        var shapes = [FeatureShape]()
        shapes.reserveCapacity(nodes.count)
        var names = Set<String>(minimumCapacity: nodes.count)
        for (index, node) in nodes.enumerated() {
            guard names.insert(node.name).inserted else { throw NetworkGraphError.duplicateName(node.name) }
            if node.op is Input {
                guard index == 0 else { throw NetworkGraphError.invalidInputs(node: node.name, message: "input must be node 0") }
                shapes.append(inputShape)
                continue
            }
            guard index > 0 else { throw NetworkGraphError.invalidInputs(node: node.name, message: "node 0 must be the input") }
            shapes.append(try Self.outputShape(of: node, inputs: node.inputs.map { shapes[$0] }, registry: registry))
        }
        return shapes
    }
}

// MARK: - JSON

extension OpAttribute: Codable {
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else { self = .string(try c.decode(String.self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case let .int(v): try c.encode(v)
        case let .double(v): try c.encode(v)
        case let .bool(v): try c.encode(v)
        case let .string(v): try c.encode(v)
        }
    }
}

/// The JSON form of a graph: `{"input_shape": [C,H,W], "nodes": [{"name", "op", "attributes", "inputs"}]}`.
/// Ops are read back through `OpRegistry.standard`; an unknown op kind is an error.
extension NetworkGraph: Codable {
    private enum Keys: String, CodingKey { case inputShape = "input_shape", nodes }
    private enum NodeKeys: String, CodingKey { case name, op, attributes, inputs }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        let dims = try c.decode([Int].self, forKey: .inputShape)
        guard dims.count == 3 else {
            throw DecodingError.dataCorruptedError(forKey: .inputShape, in: c, debugDescription: "input_shape needs [C, H, W]")
        }
        self.init(inputShape: FeatureShape(channels: dims[0], height: dims[1], width: dims[2]))
        var list = try c.nestedUnkeyedContainer(forKey: .nodes)
        var first = true
        while !list.isAtEnd {
            let n = try list.nestedContainer(keyedBy: NodeKeys.self)
            let kind = try n.decode(String.self, forKey: .op)
            guard let type = OpRegistry.standard.type(ofKind: kind) else {
                throw NetworkGraphError.invalidAttributes(kind: kind, message: "unknown operation")
            }
            let values = try n.decodeIfPresent([String: OpAttribute].self, forKey: .attributes) ?? [:]
            let op = try type.init(attributes: OpAttributeReader(kind: kind, values: values))
            let name = try n.decode(String.self, forKey: .name)
            let inputs = try n.decode([Int].self, forKey: .inputs)
            if first {
                first = false
                guard op is Input else { throw NetworkGraphError.invalidInputs(node: name, message: "node 0 must be the input") }
                continue
            }
            guard inputs.allSatisfy({ $0 >= 0 && $0 < nodes.count }) else {
                throw NetworkGraphError.invalidInputs(node: name, message: "inputs must be earlier nodes")
            }
            nodes.append(LayerNode(name: name, op: op, inputs: inputs))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode([inputShape.channels, inputShape.height, inputShape.width], forKey: .inputShape)
        var list = c.nestedUnkeyedContainer(forKey: .nodes)
        for node in nodes {
            var n = list.nestedContainer(keyedBy: NodeKeys.self)
            try n.encode(node.name, forKey: .name)
            try n.encode(node.op.kind, forKey: .op)
            let attributes = node.op.attributes
            if !attributes.isEmpty {
                try n.encode(Dictionary(uniqueKeysWithValues: attributes.map { ($0.name, $0.value) }), forKey: .attributes)
            }
            try n.encode(node.inputs, forKey: .inputs)
        }
    }
}
