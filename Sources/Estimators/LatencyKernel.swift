import Engine
import NASCore

/// One kernel of an inference forward pass: what the engine runs as one unit, and what the latency
/// predictor measures, looks up and regresses.
///
/// Kernel detection follows the engine exactly: the chains of ``InferenceFusion`` (conv2d → batch
/// norm → activation, conv2d → batch norm, conv2d → activation) are one kernel each; every other
/// computing node is a kernel of its own; the network boundary (checking and loading the input,
/// converting the output) is one more.
///
/// Keys extend `LatencyKey`: a fused chain joins its ops' latency signatures with `+` before the
/// input shape, so a kernel of one node keeps the per-op key:
///
/// ```
/// conv2d(out:16,kernel:3,stride:1,padding:1,dilation:1,groups:1,bias:false)+batchNorm+activation(function:relu)@8x28x28
/// conv2d(out:10,kernel:1,stride:1,padding:0,dilation:1,groups:1,bias:true)@32x7x7      (not fused: read by an add)
/// add@24x7x7+24x7x7
/// network(output:10x1x1)@1x28x28
/// ```
///
/// ```swift
/// for kernel in try LatencyKernel.kernels(of: graph) { print(kernel.key, kernel.family, kernel.features) }
/// ```
public struct LatencyKernel: Sendable, CustomStringConvertible {
    /// The table key (see above).
    public var key: String
    /// The regressor family: op kinds joined with `+`, string attributes in brackets
    /// (`conv2d+batchNorm+activation[relu]`, `maxPool`, `network`).
    public var family: String
    /// The graph nodes of the kernel, in order (empty for the boundary).
    public var nodes: [Int]
    /// The ops of the kernel, in order (empty for the boundary).
    public var ops: [any GraphOp]
    /// Shapes of the kernel's inputs (for the boundary: the network's input).
    public var inputShapes: [FeatureShape]
    /// The kernel's output shape (for the boundary: the network's output).
    public var outputShape: FeatureShape
    /// Numeric description for the regressors, named by ``featureNames``.
    public var features: [Double]
    /// Names of `features` (same for every kernel of a family).
    public var featureNames: [String]

    public var isBoundary: Bool { ops.isEmpty }
    public var description: String { key }

    /// The kernels of an inference pass over `graph`, in execution order (a chain at its convolution),
    /// followed by the boundary kernel.
    /// - Throws: `NetworkGraphError` if the graph's shapes are inconsistent.
    public static func kernels(of graph: NetworkGraph) throws -> [LatencyKernel] {
        let shapes = try graph.inferShapes()
        let fusion = InferenceFusion(graph: graph)
        var kernels = [LatencyKernel]()
        for (index, node) in graph.nodes.enumerated() where !(node.op is Input) {
            let members: [Int]
            if let chain = fusion.chainOfNode[index] {
                guard fusion.chains[chain].convolution == index else { continue }   // counted at the convolution
                members = fusion.chains[chain].nodes
            } else {
                members = [index]
            }
            let ops = members.map { graph.nodes[$0].op }
            let inputs = node.inputs.map { shapes[$0] }
            kernels.append(kernel(ops: ops, inputShapes: inputs, outputShape: shapes[members.last!], nodes: members))
        }
        kernels.append(boundary(input: graph.inputShape, output: shapes[graph.output]))
        return kernels
    }

    /// The kernel running `ops` in sequence (the first reads `inputShapes`, each next one the previous).
    public static func kernel(ops: [any GraphOp], inputShapes: [FeatureShape], outputShape: FeatureShape,
                              nodes: [Int] = []) -> LatencyKernel {
        precondition(!ops.isEmpty)
        let key = ops.map(\.latencySignature).joined(separator: "+") + "@"
            + inputShapes.map(\.description).joined(separator: "+")
        var family = [String]()
        var names = ["macs", "parameters", "input_elements", "output_elements", "input_count",
                     "input_channels", "input_height", "input_width", "output_channels", "output_height", "output_width"]
        var macs = 0, parameters = 0
        var shape = inputShapes
        var attributeValues = [Double]()
        for (position, op) in ops.enumerated() {
            let output = (try? op.outputShape(inputs: shape)) ?? outputShape
            let cost = op.cost(inputs: shape, output: output)
            macs += cost.multiplyAccumulates
            parameters += cost.parameters
            shape = [output]
            var labels = [String]()
            for (name, value) in op.latencyAttributes {
                switch value {
                case let .int(v): names.append("\(position).\(name)"); attributeValues.append(Double(v))
                case let .double(v): names.append("\(position).\(name)"); attributeValues.append(v)
                case let .bool(v): names.append("\(position).\(name)"); attributeValues.append(v ? 1 : 0)
                case let .string(v): labels.append(v)
                }
            }
            family.append(labels.isEmpty ? op.kind : op.kind + "[" + labels.joined(separator: ",") + "]")
        }
        let first = inputShapes.first ?? outputShape
        let features = [Double(macs), Double(parameters), Double(inputShapes.reduce(0) { $0 + $1.elementCount }),
                        Double(outputShape.elementCount), Double(inputShapes.count),
                        Double(first.channels), Double(first.height), Double(first.width),
                        Double(outputShape.channels), Double(outputShape.height), Double(outputShape.width)] + attributeValues
        return LatencyKernel(key: key, family: family.joined(separator: "+"), nodes: nodes, ops: ops, inputShapes: inputShapes,
                             outputShape: outputShape, features: features, featureNames: names)
    }

    /// The boundary kernel of a network with these input and output shapes.
    public static func boundary(input: FeatureShape, output: FeatureShape) -> LatencyKernel {
        LatencyKernel(key: LatencyKey.boundary(input: input, output: output), family: "network", nodes: [], ops: [],
                      inputShapes: [input], outputShape: output,
                      features: [Double(input.elementCount), Double(output.elementCount), Double(input.channels),
                                 Double(input.height * input.width), Double(output.channels), Double(output.height * output.width)],
                      featureNames: ["input_elements", "output_elements", "input_channels", "input_pixels",
                                     "output_channels", "output_pixels"])
    }
}

extension LatencyKernel {
    /// Neighbouring configurations for adaptive sampling: the same ops with 0.5× and 1.5× the input
    /// channels (and the output channels of convolutions and linear layers), and with half and
    /// twice the spatial size; configurations the ops reject are left out. Only kernels that start
    /// with a 2-D convolution, a linear layer or a pooling op have neighbours.
    public func neighbours() -> [LatencyKernel] {
        guard let first = ops.first, [Conv2d.kind, Linear.kind, MaxPool.kind, AvgPool.kind].contains(first.kind) else { return [] }
        let input = inputShapes[0]
        var variants = [(FeatureShape, [String: OpAttribute])]()
        let attributes = Dictionary(first.attributes.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        func int(_ name: String) -> Int? { if case let .int(v)? = attributes[name] { return v }; return nil }
        for factor in [0.5, 1.5] {
            let channels = max(1, Int((Double(input.channels) * factor).rounded()))
            var a = attributes
            if let groups = int("groups"), groups > 1 {
                guard groups == input.channels, let out = int("out") else { continue }   // depthwise only
                a["groups"] = .int(channels)
                a["out"] = .int(out / groups * channels)
            } else if let out = int("out") {
                a["out"] = .int(max(1, Int((Double(out) * factor).rounded())))
            }
            variants.append((FeatureShape(channels: channels, height: input.height, width: input.width), a))
        }
        if input.height > 1 || input.width > 1 {
            for factor in [0.5, 2.0] {
                let h = max(1, Int(Double(input.height) * factor)), w = max(1, Int(Double(input.width) * factor))
                if first.kind == Linear.kind { continue }
                variants.append((FeatureShape(channels: input.channels, height: h, width: w), attributes))
            }
        }
        var result = [LatencyKernel]()
        for (shape, a) in variants {
            guard shape.elementCount <= 4_000_000,
                  let op = try? type(of: first).init(attributes: OpAttributeReader(kind: first.kind, values: a)) else { continue }
            var chain: [any GraphOp] = [op]
            chain.append(contentsOf: ops.dropFirst())
            var current = [shape]
            var ok = true
            for o in chain {
                guard let out = try? o.outputShape(inputs: current) else { ok = false; break }
                current = [out]
            }
            guard ok, inputShapes.count == 1 else { continue }
            result.append(LatencyKernel.kernel(ops: chain, inputShapes: [shape], outputShape: current[0]))
        }
        return result
    }
}
