import Engine
import NASCore
import Yams

/// Reads a search-space YAML document node by node, validating as it goes, and registers
/// one `Decision` per list of two or more values.
struct SpaceLoader {
    let file: String
    var decisions = [Decision]()
    var conditions = [ActivityCondition]()
    var genotypeOfDecision = [Int?]()
    var defaultActivation = ActivationKind.relu
    var task = TaskKind.imageClassification

    static let maximumKernel = 15
    static let maximumWidth = 1 << 16
    static let maximumDepth = 64
    static let maximumStride = 8

    init(file: String) { self.file = file }

    // MARK: Errors and node helpers

    func error(_ node: Node, _ message: String) -> SpaceError {
        let mark = node.mark
        return .invalid(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1, message: message)
    }

    func describe(_ node: Node) -> String {
        switch node {
        case let .scalar(s): return "'\(s.string)'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }

    /// The fields of a mapping node, checked against allowed and required keys.
    func fields(_ node: Node, _ context: String, allowed: [String], required: [String] = []) throws -> [String: Node] {
        guard case let .mapping(mapping) = node else {
            throw error(node, "\(context) must be a mapping, got \(describe(node))")
        }
        var result = [String: Node]()
        for (key, value) in mapping {
            guard case let .scalar(k) = key else { throw error(key, "keys of \(context) must be plain words") }
            guard allowed.contains(k.string) else {
                throw error(key, "unknown key '\(k.string)' in \(context) (expected one of: \(allowed.joined(separator: ", ")))")
            }
            guard result[k.string] == nil else { throw error(key, "duplicate key '\(k.string)' in \(context)") }
            result[k.string] = value
        }
        for key in required where result[key] == nil {
            throw error(node, "missing key '\(key)' in \(context)")
        }
        return result
    }

    func string(_ node: Node, _ what: String) throws -> String {
        guard case let .scalar(s) = node else { throw error(node, "\(what) must be a text value, got \(describe(node))") }
        return s.string
    }

    func integer(_ node: Node, _ what: String, minimum: Int, maximum: Int = Int.max) throws -> Int {
        guard case let .scalar(s) = node, let v = Int(s.string) else {
            throw error(node, "\(what) must be an integer, got \(describe(node))")
        }
        guard v >= minimum else { throw error(node, "\(what) must be at least \(minimum), got \(v)") }
        guard v <= maximum else { throw error(node, "\(what) must be at most \(maximum), got \(v)") }
        return v
    }

    func boolean(_ node: Node, _ what: String) throws -> Bool {
        guard case let .scalar(s) = node else { throw error(node, "\(what) must be true or false, got \(describe(node))") }
        switch s.string.lowercased() {
        case "true", "yes": return true
        case "false", "no": return false
        default: throw error(node, "\(what) must be true or false, got '\(s.string)'")
        }
    }

    func kernel(_ node: Node, _ what: String) throws -> Int {
        let k = try integer(node, what, minimum: 1, maximum: SpaceLoader.maximumKernel)
        guard k % 2 == 1 else { throw error(node, "\(what) must be odd (padding is kernel/2), got \(k)") }
        return k
    }

    func activation(_ node: Node, _ what: String) throws -> ActivationKind {
        let text = try string(node, what)
        guard let kind = ActivationKind(rawValue: text) else {
            throw error(node, "unknown activation '\(text)' for \(what) (expected one of: \(ActivationKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return kind
    }

    /// A value or a list of values; a list of two or more registers a decision named `name`.
    mutating func choice<Value: Hashable & Sendable>(
        _ node: Node?, name: String, what: String, default defaultValue: Value?, within: Node,
        condition: ActivityCondition = .always, label: (Value) -> String,
        parse: (Node) throws -> Value
    ) throws -> Choice<Value> {
        guard let node else {
            guard let defaultValue else { throw error(within, "missing key '\(what)'") }
            return .fixed(defaultValue)
        }
        guard case let .sequence(sequence) = node else { return .fixed(try parse(node)) }
        guard !sequence.isEmpty else { throw error(node, "empty choice list for '\(what)'") }
        var values = [Value]()
        for element in sequence {
            if case .sequence = element { throw error(element, "nested lists are not allowed in the choices of '\(what)'") }
            let v = try parse(element)
            guard !values.contains(v) else { throw error(element, "duplicate choice '\(label(v))' for '\(what)'") }
            values.append(v)
        }
        guard values.count > 1 else { return .fixed(values[0]) }
        decisions.append(Decision(name: name, options: values.map(label)))
        conditions.append(condition)
        genotypeOfDecision.append(nil)
        return Choice(values: values, decision: decisions.count - 1)
    }

    mutating func intChoice(_ fields: [String: Node], _ key: String, prefix: String, default d: Int?, within: Node,
                            condition: ActivityCondition = .always, minimum: Int, maximum: Int) throws -> Choice<Int> {
        let reader = self
        return try choice(fields[key], name: "\(prefix).\(key)", what: key, default: d, within: within, condition: condition,
                          label: { String($0) }, parse: { try reader.integer($0, key, minimum: minimum, maximum: maximum) })
    }

    mutating func kernelChoice(_ fields: [String: Node], prefix: String, within: Node,
                               condition: ActivityCondition = .always) throws -> Choice<Int> {
        let reader = self
        return try choice(fields["kernel"], name: "\(prefix).kernel", what: "kernel", default: 3, within: within,
                          condition: condition, label: { String($0) }, parse: { try reader.kernel($0, "kernel") })
    }

    // MARK: Document

    mutating func load(yaml: String) throws -> SearchSpace {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                throw SpaceError.invalid(file: file, line: 1, column: 1, message: "empty search-space file")
            }
            root = node
        } catch let e as YamlError {
            throw convert(e)
        }
        let top = try fields(root, "the search space",
                             allowed: ["name", "description", "task", "activation", "stem", "cell", "stages", "decoder", "head"],
                             required: ["name", "stages"])
        let name = try string(top["name"]!, "name")
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "_-.".contains($0) }) else {
            throw error(top["name"]!, "name must be a non-empty word of letters, digits, '_', '-' or '.', got '\(name)'")
        }
        let description = try top["description"].map { try string($0, "description") } ?? ""
        if let t = top["task"] {
            let text = try string(t, "task")
            guard let kind = TaskKind(name: text) else {
                throw error(t, "unknown task '\(text)' (expected one of: \(TaskKind.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            task = kind
        }
        if let a = top["activation"] { defaultActivation = try activation(a, "activation") }

        var stem = [LayerSpec]()
        if let stemNode = top["stem"] {
            stem = try layers(stemNode, prefix: "stem", context: "stem")
        }
        let embeddings = stem.indices.filter { stem[$0].kind == .embedding }
        if task == .textClassification {
            guard embeddings == [0] else {
                throw error(top["stem"] ?? root, "a text_classification space needs exactly one stem layer {op: embedding, width: …}, and first")
            }
        } else if !embeddings.isEmpty {
            throw error(top["stem"]!, "'embedding' layers are for text_classification spaces (this space's task is \(task))")
        }

        // The cell must be read before the stages that use it, but its decisions are
        // registered where the stages are (genotypes per stage or one shared genotype).
        var cell: CellSpec?
        var cellPerStage = false
        var cellNode: Node?
        if let c = top["cell"] {
            (cell, cellPerStage) = try cellSpec(c)
            cellNode = c
        }

        let stagesNode = top["stages"]!
        guard case let .sequence(stageNodes) = stagesNode else {
            throw error(stagesNode, "stages must be a list, got \(describe(stagesNode))")
        }
        guard !stageNodes.isEmpty else { throw error(stagesNode, "stages must not be empty") }
        var stages = [StageSpec]()
        var genotypes = [GenotypeSpec]()
        for (index, stageNode) in stageNodes.enumerated() {
            let stage = try self.stage(stageNode, index: index, cell: cell, cellPerStage: cellPerStage,
                                       genotypes: &genotypes)
            stages.append(stage)
            if stages.map(\.name).filter({ $0 == stage.name }).count > 1 {
                throw error(stageNode, "duplicate stage name '\(stage.name)'")
            }
        }
        if let cellNode, genotypes.isEmpty {
            throw error(cellNode, "a cell is defined but no stage uses cells")
        }

        var decoder: DecoderSpec?
        let dense = task == .segmentation || task == .detection
        if let d = top["decoder"] {
            guard dense else { throw error(d, "a decoder is for segmentation and detection spaces (this space's task is \(task))") }
            decoder = try decoderSpec(d)
        } else if dense {
            throw error(root, "a \(task) space needs a 'decoder' (levels of upsampling back to the \(task == .segmentation ? "input resolution" : "stride-4 resolution"))")
        }
        if dense, let h = top["head"] {
            throw error(h, "the head of a \(task) space is fixed by its task (\(task.head)): shape the decoder instead")
        }

        var head = HeadSpec(layers: [], pool: .fixed(HeadPool.default(for: task)), dropout: .fixed(0))
        if let headNode = top["head"] {
            let h = try fields(headNode, "head", allowed: ["layers", "pool", "dropout"])
            if let l = h["layers"] { head.layers = try layers(l, prefix: "head", context: "head layers") }
            let reader = self
            let task = self.task
            head.pool = try choice(h["pool"], name: "head.pool", what: "pool", default: HeadPool.default(for: task), within: headNode,
                                   label: { $0.rawValue }, parse: { node in
                let text = try reader.string(node, "pool")
                guard let pool = HeadPool(rawValue: text) else {
                    throw reader.error(node, "unknown head pool '\(text)' (expected one of: \(HeadPool.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                guard pool.tasks.contains(task) else {
                    throw reader.error(node, "head pool '\(text)' does not work for \(task) (use one of: \(HeadPool.allCases.filter { $0.tasks.contains(task) }.map(\.rawValue).joined(separator: ", ")))")
                }
                return pool
            })
            head.dropout = try choice(h["dropout"], name: "head.dropout", what: "dropout", default: 0, within: headNode,
                                      label: { String($0) }, parse: { node in
                guard case let .scalar(s) = node, let rate = Double(s.string) else {
                    throw reader.error(node, "dropout must be a number, got \(reader.describe(node))")
                }
                guard rate >= 0, rate < 1 else { throw reader.error(node, "dropout must be in [0, 1), got \(s.string)") }
                return rate
            })
        }
        return SearchSpace(name: name, description: description, task: task, decisions: decisions, conditions: conditions,
                           defaultActivation: defaultActivation, stem: stem, stages: stages, cell: cell,
                           genotypes: genotypes, head: head, decoder: decoder, genotypeOfDecision: genotypeOfDecision)
    }

    func convert(_ e: YamlError) -> SpaceError {
        switch e {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            let text = context.map { "\($0.text) " } ?? ""
            return .invalid(file: file, line: mark.line, column: mark.column, message: "YAML syntax error: \(text)\(problem)")
        default:
            return .invalid(file: file, line: 1, column: 1, message: "YAML error: \(e)")
        }
    }

    // MARK: Decoder

    /// `decoder: {upsample, head_width, levels: [{skip, width, depth}, …]}` (deepest level first).
    mutating func decoderSpec(_ node: Node) throws -> DecoderSpec {
        let f = try fields(node, "decoder", allowed: ["upsample", "head_width", "levels"], required: ["levels"])
        let reader = self
        let upsampling = try choice(f["upsample"], name: "decoder.upsample", what: "upsample", default: DecoderUpsampling.nearest, within: node,
                                    label: { (m: DecoderUpsampling) in m.rawValue }, parse: { n in
            let text = try reader.string(n, "upsample")
            guard let mode = DecoderUpsampling(rawValue: text) else {
                throw reader.error(n, "unknown upsampling '\(text)' (expected one of: \(DecoderUpsampling.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return mode
        })
        if task != .detection, let w = f["head_width"] {
            throw error(w, "head_width is for detection spaces (the CenterNet head's 3×3 convolution)")
        }
        let headWidth = try intChoice(f, "head_width", prefix: "decoder", default: 32, within: node, minimum: 1,
                                      maximum: SpaceLoader.maximumWidth)
        guard case let .sequence(items) = f["levels"]! else {
            throw error(f["levels"]!, "decoder levels must be a list, got \(describe(f["levels"]!))")
        }
        guard !items.isEmpty else { throw error(f["levels"]!, "decoder levels must not be empty") }
        var levels = [DecoderLevelSpec]()
        for (i, item) in items.enumerated() {
            let name = "decoder.level\(i + 1)"
            let l = try fields(item, "decoder level \(i + 1)", allowed: ["skip", "width", "depth"], required: ["width"])
            let skip = try choice(l["skip"], name: "\(name).skip", what: "skip", default: true, within: item,
                                  label: { String($0) }, parse: { n in
                guard case let .scalar(s) = n, let value = Bool(s.string.lowercased()) else {
                    throw reader.error(n, "skip must be true or false, got \(reader.describe(n))")
                }
                return value
            })
            let width = try intChoice(l, "width", prefix: name, default: nil, within: item, minimum: 1, maximum: SpaceLoader.maximumWidth)
            let depth = try intChoice(l, "depth", prefix: name, default: 1, within: item, minimum: 0, maximum: SpaceLoader.maximumDepth)
            levels.append(DecoderLevelSpec(name: name, skip: skip, width: width, depth: depth))
        }
        return DecoderSpec(upsampling: upsampling, levels: levels, headWidth: headWidth)
    }

    // MARK: Stem and head layers

    mutating func layers(_ node: Node, prefix: String, context: String) throws -> [LayerSpec] {
        guard case let .sequence(items) = node else { throw error(node, "\(context) must be a list of layers, got \(describe(node))") }
        var result = [LayerSpec]()
        for (i, item) in items.enumerated() {
            let layerPrefix = items.count == 1 ? prefix : "\(prefix).\(i)"
            let graphPrefix = items.count == 1 ? prefix : "\(prefix)/\(i)"
            result.append(try layer(item, prefix: layerPrefix, graphName: graphPrefix, context: "\(context) layer \(i)"))
        }
        return result
    }

    mutating func layer(_ node: Node, prefix: String, graphName: String, context: String) throws -> LayerSpec {
        guard case .mapping = node else { throw error(node, "\(context) must be a mapping, got \(describe(node))") }
        let all = try fields(node, context, allowed: ["op", "width", "kernel", "stride", "bn", "activation", "bias"], required: ["op"])
        let opNode = all["op"]!
        let op = try string(opNode, "op")
        let kind: LayerKind
        let keys: [String]
        switch op {
        case "embedding": kind = .embedding; keys = ["op", "width"]
        case "conv": kind = .conv; keys = ["op", "width", "kernel", "stride", "bn", "activation", "bias"]
        case "maxpool": kind = .maxPool; keys = ["op", "kernel", "stride"]
        case "avgpool": kind = .avgPool; keys = ["op", "kernel", "stride"]
        case "bn": kind = .batchNorm; keys = ["op"]
        default:
            guard let a = ActivationKind(rawValue: op) else {
                throw error(opNode, "unknown layer op '\(op)' (expected one of: embedding, conv, maxpool, avgpool, bn, \(ActivationKind.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            kind = .activation(a); keys = ["op"]
        }
        let f = try fields(node, "\(context) (\(op))", allowed: keys, required: kind == .conv || kind == .embedding ? ["op", "width"] : ["op"])
        var spec = LayerSpec(name: graphName, kind: kind, width: .fixed(0), kernel: .fixed(3), stride: .fixed(1),
                             batchNorm: true, activation: defaultActivation, bias: false)
        if kind == .conv || kind == .embedding {
            spec.width = try intChoice(f, "width", prefix: prefix, default: nil, within: node, minimum: 1, maximum: SpaceLoader.maximumWidth)
        }
        if kind == .conv || kind == .maxPool || kind == .avgPool {
            spec.kernel = try kernelChoice(f, prefix: prefix, within: node)
            spec.stride = try intChoice(f, "stride", prefix: prefix, default: 1, within: node, minimum: 1, maximum: SpaceLoader.maximumStride)
        }
        if let b = f["bn"] { spec.batchNorm = try boolean(b, "bn") }
        if let b = f["bias"] { spec.bias = try boolean(b, "bias") }
        if let a = f["activation"] {
            spec.activation = try string(a, "activation") == "none" ? nil : try activation(a, "activation")
        }
        return spec
    }

    // MARK: Stages

    mutating func stage(_ node: Node, index: Int, cell: CellSpec?, cellPerStage: Bool,
                        genotypes: inout [GenotypeSpec]) throws -> StageSpec {
        let context = "stage \(index + 1)"
        let outer = try fields(node, context, allowed: ["blocks", "cells", "reduction"])
        guard outer.count == 1, let (kind, body) = outer.first else {
            throw error(node, "\(context) must have exactly one of the keys blocks, cells, reduction")
        }
        switch kind {
        case "blocks":
            return .blocks(try blockStage(body, index: index))
        case "cells":
            let f = try fields(body, "\(context) cells", allowed: ["name", "count", "width"], required: ["width"])
            let name = try stageName(f, index: index)
            guard let cell else { throw error(node, "\(context) uses cells but the space defines no 'cell'") }
            let count = try intChoice(f, "count", prefix: name, default: 1, within: body, minimum: 1, maximum: SpaceLoader.maximumDepth)
            let width = try intChoice(f, "width", prefix: name, default: nil, within: body, minimum: 1, maximum: SpaceLoader.maximumWidth)
            if genotypes.isEmpty || cellPerStage {
                genotypes.append(registerGenotype(cell, name: cellPerStage ? "\(name).cell" : "cell", index: genotypes.count))
            }
            return .cells(CellStageSpec(name: name, count: count, width: width, genotype: genotypes.count - 1))
        default:
            let f = try fields(body, "\(context) reduction", allowed: ["name", "width"], required: ["width"])
            let name = try stageName(f, index: index)
            let width = try intChoice(f, "width", prefix: name, default: nil, within: body, minimum: 1, maximum: SpaceLoader.maximumWidth)
            return .reduction(ReductionStageSpec(name: name, width: width))
        }
    }

    func stageName(_ f: [String: Node], index: Int) throws -> String {
        guard let n = f["name"] else { return "stage\(index + 1)" }
        let name = try string(n, "name")
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
            throw error(n, "stage name must be letters, digits or '_', got '\(name)'")
        }
        return name
    }

    mutating func blockStage(_ node: Node, index: Int) throws -> BlockStageSpec {
        let context = "stage \(index + 1) blocks"
        let f = try fields(node, context, allowed: ["name", "depth", "width", "stride", "activation", "op", "kernel", "expansion"],
                           required: ["width", "op"])
        let name = try stageName(f, index: index)
        let depth = try intChoice(f, "depth", prefix: name, default: 1, within: node, minimum: 1, maximum: SpaceLoader.maximumDepth)
        let width = try intChoice(f, "width", prefix: name, default: nil, within: node, minimum: 1, maximum: SpaceLoader.maximumWidth)
        let stride = try intChoice(f, "stride", prefix: name, default: 1, within: node, minimum: 1, maximum: SpaceLoader.maximumStride)
        let reader = self
        let activation = try choice(f["activation"], name: "\(name).activation", what: "activation", default: defaultActivation,
                                    within: node, label: { $0.rawValue }, parse: { try reader.activation($0, "activation") })
        let maxDepth = depth.values.max()!
        // Validate the block settings once, so that errors are reported before any decision is made.
        let operations = try choice(f["op"], name: "", what: "op", default: nil, within: node, label: { $0.rawValue },
                                    parse: { try reader.blockOperation($0) })
        if operations.decision != nil { dropLastDecision() }
        if let k = f["kernel"], case let .sequence(items) = k, items.count > 1, !operations.values.contains(where: \.usesKernel) {
            throw error(k, "kernel choices have no effect: no op among \(operations.values.map(\.rawValue)) uses a kernel")
        }
        if let e = f["expansion"], case let .sequence(items) = e, items.count > 1, !operations.values.contains(where: \.usesExpansion) {
            throw error(e, "expansion choices have no effect: no op among \(operations.values.map(\.rawValue)) uses an expansion ratio")
        }
        var blocks = [BlockSpec]()
        for j in 0..<maxDepth {
            let prefix = "\(name).block\(j)"
            let present = ActivityCondition.blockPresent(depth: depth, block: j)
            let op = try choice(f["op"], name: "\(prefix).op", what: "op", default: nil, within: node, condition: present,
                                label: { $0.rawValue }, parse: { try reader.blockOperation($0) })
            let k = try kernelChoice(f, prefix: prefix, within: node,
                                     condition: .blockUsesKernel(depth: depth, block: j, operation: op))
            let e = try intChoice(f, "expansion", prefix: prefix, default: 1, within: node,
                                  condition: .blockUsesExpansion(depth: depth, block: j, operation: op), minimum: 1, maximum: 16)
            blocks.append(BlockSpec(operation: op, kernel: k, expansion: e))
        }
        return BlockStageSpec(name: name, depth: depth, width: width, stride: stride, activation: activation, blocks: blocks)
    }

    mutating func dropLastDecision() {
        decisions.removeLast()
        conditions.removeLast()
        genotypeOfDecision.removeLast()
    }

    func blockOperation(_ node: Node) throws -> BlockOperation {
        let text = try string(node, "op")
        guard let op = BlockOperation(rawValue: text) else {
            throw error(node, "unknown block op '\(text)' (expected one of: \(BlockOperation.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard op.tasks.contains(task) else {
            let fitting = BlockOperation.allCases.filter { $0.tasks.contains(task) }.map(\.rawValue)
            throw error(node, "block op '\(text)' does not work for \(task) (use one of: \(fitting.joined(separator: ", ")))")
        }
        return op
    }

    // MARK: Cells

    func cellSpec(_ node: Node) throws -> (CellSpec, Bool) {
        let f = try fields(node, "cell", allowed: ["nodes", "ops", "edges", "per_stage"], required: ["nodes", "ops"])
        let nodeCount = try integer(f["nodes"]!, "nodes", minimum: 2, maximum: 16)
        let opsNode = f["ops"]!
        guard case let .sequence(opItems) = opsNode else { throw error(opsNode, "ops must be a list, got \(describe(opsNode))") }
        guard !opItems.isEmpty else { throw error(opsNode, "empty choice list for 'ops'") }
        var operations = [CellOperation]()
        for item in opItems {
            let text = try string(item, "cell op")
            guard let op = CellOperation(rawValue: text) else {
                throw error(item, "unknown cell op '\(text)' (expected one of: \(CellOperation.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard !operations.contains(op) else { throw error(item, "duplicate choice '\(text)' for 'ops'") }
            operations.append(op)
        }
        var edges = [CellEdge]()
        var edgeNodes = [Node]()
        if let e = f["edges"], !(e.scalar?.string == "all") {
            guard case let .sequence(items) = e else {
                throw error(e, "edges must be 'all' or a list of [from, to] pairs, got \(describe(e))")
            }
            guard !items.isEmpty else { throw error(e, "edges must not be empty") }
            for item in items {
                guard case let .sequence(pair) = item, pair.count == 2 else {
                    throw error(item, "an edge must be a [from, to] pair, got \(describe(item))")
                }
                let from = try integer(pair[0], "edge source", minimum: 0, maximum: nodeCount - 1)
                let to = try integer(pair[1], "edge target", minimum: 0, maximum: nodeCount - 1)
                guard from != to else { throw error(item, "edge [\(from), \(to)] is a self-loop") }
                guard to != 0 else { throw error(item, "edge [\(from), \(to)] enters the input node 0") }
                guard from != nodeCount - 1 else {
                    throw error(item, "edge [\(from), \(to)] leaves the output node \(nodeCount - 1)")
                }
                let edge = CellEdge(from: from, to: to)
                guard !edges.contains(edge) else { throw error(item, "duplicate edge [\(from), \(to)]") }
                edges.append(edge)
                edgeNodes.append(item)
            }
        } else {
            for to in 1..<nodeCount { for from in 0..<to { edges.append(CellEdge(from: from, to: to)); edgeNodes.append(node) } }
        }
        for n in 1..<nodeCount where !edges.contains(where: { $0.to == n }) {
            throw error(f["edges"] ?? node, "cell node \(n) has no incoming edge")
        }
        // Kahn's algorithm; what remains lies on or behind a cycle.
        var order = [Int]()
        var remaining = Set(0..<nodeCount)
        while let next = remaining.sorted().first(where: { n in !edges.contains { $0.to == n && remaining.contains($0.from) } }) {
            order.append(next)
            remaining.remove(next)
        }
        if !remaining.isEmpty {
            let index = edges.indices.first { remaining.contains(edges[$0].from) && remaining.contains(edges[$0].to) }!
            let cycle = remaining.sorted().map(String.init).joined(separator: ", ")
            throw error(edgeNodes[index], "edge [\(edges[index].from), \(edges[index].to)] is on a cycle among cell nodes \(cycle)")
        }
        for n in 0..<(nodeCount - 1) where !reaches(n, nodeCount - 1, edges) {
            throw error(f["edges"] ?? node, "cell node \(n) does not lead to the output node \(nodeCount - 1)")
        }
        let perStage = try f["per_stage"].map { try boolean($0, "per_stage") } ?? false
        edges.sort { ($0.to, $0.from) < ($1.to, $1.from) }
        return (CellSpec(nodeCount: nodeCount, operations: operations, edges: edges, topologicalOrder: order), perStage)
    }

    func reaches(_ a: Int, _ b: Int, _ edges: [CellEdge]) -> Bool {
        var stack = [a]
        var seen = Set<Int>()
        while let n = stack.popLast() {
            if n == b { return true }
            guard seen.insert(n).inserted else { continue }
            stack.append(contentsOf: edges.filter { $0.from == n }.map(\.to))
        }
        return false
    }

    mutating func registerGenotype(_ cell: CellSpec, name: String, index: Int) -> GenotypeSpec {
        var choices = [Choice<CellOperation>]()
        for edge in cell.edges {
            if cell.operations.count == 1 {
                choices.append(.fixed(cell.operations[0]))
                continue
            }
            decisions.append(Decision(name: "\(name).edge(\(edge.to)<-\(edge.from))", options: cell.operations.map(\.rawValue)))
            conditions.append(.always)
            genotypeOfDecision.append(index)
            choices.append(Choice(values: cell.operations, decision: decisions.count - 1))
        }
        return GenotypeSpec(name: name, edges: choices)
    }
}
