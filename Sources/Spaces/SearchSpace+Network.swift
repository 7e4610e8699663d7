import Engine
import NASCore

extension SearchSpace {
    /// Decodes an architecture into a network for the given input shape and class count.
    ///
    /// Strides apply only while the spatial size is above 1 (a stride on a 1×1 map becomes 1),
    /// so every architecture decodes even for tiny inputs such as 1×8×8.
    ///
    /// - Parameters:
    ///   - architecture: one option per decision of this space.
    ///   - inputShape: channels × height × width of one sample.
    ///   - classCount: number of output logits.
    /// - Returns: a graph whose shapes have been checked with `inferShapes()`.
    /// - Throws: `SpaceError.badArchitecture` or `SpaceError.undecodable`.
    public func network(for architecture: Architecture, inputShape: FeatureShape, classCount: Int) throws -> NetworkGraph {
        try network(for: architecture, inputShape: inputShape, inputKind: nil, classCount: classCount)
    }

    /// Decodes an architecture for inputs of a given kind (token inputs need it for the vocabulary).
    ///
    /// - Parameter inputKind: what the inputs are; `nil` means images (or flat features for
    ///   `F×1×1`). A text space needs `.tokens`, and only a text space takes them.
    public func network(for architecture: Architecture, inputShape: FeatureShape, inputKind: InputKind?,
                        classCount: Int) throws -> NetworkGraph {
        try validate(architecture)
        var vocabulary = 0
        switch inputKind {
        case let .tokens(size)?:
            guard task == .textClassification else {
                throw SpaceError.undecodable(message: "space '\(name)' (\(task)) cannot take token inputs: use a text_classification space")
            }
            guard inputShape.height == 1 else {
                throw SpaceError.undecodable(message: "token inputs must have shape Kx1xL (K ids per position), got \(inputShape)")
            }
            vocabulary = size
        default:
            guard task != .textClassification else {
                throw SpaceError.undecodable(message: "space '\(name)' is a text_classification space: its inputs must be token sequences")
            }
        }
        guard classCount >= 1 else { throw SpaceError.undecodable(message: "class count must be at least 1, got \(classCount)") }
        guard inputShape.channels >= 1, inputShape.height >= 1, inputShape.width >= 1 else {
            throw SpaceError.undecodable(message: "input shape \(inputShape) must be positive")
        }
        var builder = GraphBuilder(graph: NetworkGraph(inputShape: inputShape), shape: inputShape)
        builder.vocabulary = vocabulary
        var x = builder.graph.input
        let a = architecture
        for layer in stem { x = builder.layer(layer, x, a) }
        // The encoder's feature maps (after the stem and after each stage): the decoder's skips.
        var features = stem.isEmpty ? [Int]() : [x]
        for stage in stages {
            switch stage {
            case let .blocks(s):
                let depth = s.depth.value(in: a)
                let width = s.width.value(in: a)
                let activation = s.activation.value(in: a)
                for j in 0..<depth {
                    let block = s.blocks[j]
                    x = builder.block(block.operation.value(in: a), name: "\(s.name)/block\(j)", x, width: width,
                                      kernel: block.kernel.value(in: a), stride: j == 0 ? s.stride.value(in: a) : 1,
                                      expansion: block.expansion.value(in: a), activation: activation)
                }
            case let .cells(s):
                let width = s.width.value(in: a)
                if builder.shape.channels != width {
                    x = builder.reluConvBN("\(s.name)/preprocess", x, width: width, kernel: 1, stride: 1)
                }
                for c in 0..<s.count.value(in: a) {
                    x = builder.cell(cell!, genotype: genotypes[s.genotype], name: "\(s.name)/cell\(c)", x, a)
                }
            case let .reduction(s):
                x = builder.resnetReduction(s.name, x, width: s.width.value(in: a))
            }
            features.append(x)
        }
        if let decoder {
            x = try decode(decoder, builder: &builder, x, features: features, inputShape: inputShape, classCount: classCount, a)
            return try builder.finished()
        }
        for layer in head.layers { x = builder.layer(layer, x, a) }
        switch head.pool.value(in: a) {
        case .avg: x = builder.add("head/pool", .globalAvgPool, x)
        case .max: x = builder.add("head/pool", .sequenceMaxPool, x)
        case .mean: x = builder.add("head/pool", .sequenceMeanPool, x)
        case .none:
            if builder.shape.height != 1 || builder.shape.width != 1 { x = builder.add("head/flatten", .flatten, x) }
        }
        let dropout = head.dropout.value(in: a)
        if dropout > 0 { x = builder.add("head/dropout", .dropout(rate: dropout), x) }
        x = builder.add("head/classifier", .linear(outFeatures: classCount, bias: true), x)
        return try builder.finished()
    }

    /// The output stride of detection networks (CenterNet's R).
    public static let detectionStride = 4

    /// The decoder and the task's dense head: each level upsamples ×2, concatenates the latest
    /// encoder feature map of that resolution when its skip is on, and applies its conv blocks;
    /// segmentation ends at the input resolution with a 1×1 convolution to background + classes,
    /// detection at stride 4 with conv 3×3 (head width) → activation → 1×1 convolution to
    /// classes + 4 (``CenterNet``'s channels).
    func decode(_ decoder: DecoderSpec, builder: inout GraphBuilder, _ start: Int, features: [Int], inputShape: FeatureShape,
                classCount: Int, _ a: Architecture) throws -> Int {
        let stride = task == .detection ? SearchSpace.detectionStride : 1
        guard inputShape.height % stride == 0, inputShape.width % stride == 0 else {
            throw SpaceError.undecodable(message: "detection inputs must have a height and width divisible by \(stride), got \(inputShape)")
        }
        let target = (height: inputShape.height / stride, width: inputShape.width / stride)
        let activation = defaultActivation
        let mode = decoder.upsampling.value(in: a)
        var x = start
        for level in decoder.levels {
            let name = level.name.replacingOccurrences(of: ".", with: "/")
            let width = level.width.value(in: a)
            let here = builder.shapes[x]
            switch mode {
            case .nearest, .bilinear:
                x = builder.add("\(name)/upsample", Upsample(scale: 2, mode: mode == .nearest ? .nearest : .bilinear), x)
            case .transposed:
                x = builder.add("\(name)/up/convtranspose", ConvTranspose2d(outChannels: width, kernel: 2, stride: 2), x)
                x = builder.add("\(name)/up/bn", .batchNorm(affine: true), x)
                x = builder.add("\(name)/up/\(activation.rawValue)", .activation(activation), x)
            }
            if level.skip.value(in: a) {
                guard let skip = features.last(where: { builder.shapes[$0].height == here.height * 2 && builder.shapes[$0].width == here.width * 2 }) else {
                    throw SpaceError.undecodable(message: "\(level.name) has a skip connection but the encoder has no feature map of "
                        + "\(here.height * 2)x\(here.width * 2) for input \(inputShape)")
                }
                x = builder.add("\(name)/concat", .concat, x, skip)
            }
            for j in 0..<level.depth.value(in: a) {
                x = builder.convBNAct("\(name)/block\(j)", x, width: width, kernel: 3, stride: 1, activation: activation)
            }
        }
        let end = builder.shapes[x]
        guard end.height == target.height, end.width == target.width else {
            throw SpaceError.undecodable(message: "the decoder of space '\(name)' ends at \(end.height)x\(end.width) but \(task) of "
                + "\(inputShape.height)x\(inputShape.width) inputs needs \(target.height)x\(target.width) (stride \(stride)): "
                + "the encoder's stride must be 2^(decoder levels) × \(stride)")
        }
        switch task {
        case .segmentation:
            return builder.add("head/classifier", .conv2d(Conv2dAttributes(outChannels: classCount + 1, kernel: 1, bias: true)), x)
        case .imageClassification, .textClassification, .tabularClassification:
            throw SpaceError.undecodable(message: "space '\(name)' is a \(task) space: a decoder is for segmentation and detection")
        case .detection:
            x = builder.convBNAct("head/conv", x, width: decoder.headWidth.value(in: a), kernel: 3, stride: 1, activation: activation,
                                  batchNorm: false, bias: true)
            return builder.add("head/classifier", .conv2d(Conv2dAttributes(outChannels: classCount + CenterNet.regressionChannels,
                                                                           kernel: 1, bias: true)), x)
        }
    }
}

/// Appends layers to a graph while tracking the current shape (for the stride rule and channels).
struct GraphBuilder {
    var graph: NetworkGraph
    var shape: FeatureShape
    /// Shapes of all nodes so far.
    var shapes: [FeatureShape]
    /// The token vocabulary size (text inputs), for embedding layers.
    var vocabulary = 0

    init(graph: NetworkGraph, shape: FeatureShape) {
        self.graph = graph
        self.shape = shape
        self.shapes = [shape]
    }

    /// The graph, after its first shape error (if any) is reported and its shapes are checked.
    func finished() throws -> NetworkGraph {
        do {
            if let error { throw error }
            _ = try graph.inferShapes()
        } catch {
            throw SpaceError.undecodable(message: "\(error)")
        }
        return graph
    }

    /// The stride actually used: 1 once the feature map is 1×1 in height.
    func effectiveStride(_ stride: Int, at node: Int) -> Int {
        shapes[node].height > 1 || shapes[node].width > 1 ? stride : 1
    }

    /// The first shape error met while building (reported by `network(for:…)`; later shapes are
    /// placeholders so that building can finish).
    var error: Error?

    mutating func add<Op: GraphOp>(_ name: String, _ op: Op, _ inputs: Int...) -> Int {
        add(name, op, inputs: inputs)
    }

    mutating func add<Op: GraphOp>(_ name: String, _ op: Op, inputs: [Int]) -> Int {
        let index = graph.add(name, op, inputs: inputs)
        let result: FeatureShape
        do {
            result = try NetworkGraph.outputShape(of: graph.nodes[index], inputs: inputs.map { shapes[$0] })
        } catch {
            if self.error == nil { self.error = error }
            result = shapes[inputs[0]]
        }
        shapes.append(result)
        shape = result
        return index
    }

    mutating func conv(_ name: String, _ x: Int, width: Int, kernel: Int, stride: Int, groups: Int = 1,
                       dilation: Int = 1, bias: Bool = false) -> Int {
        add(name, .conv2d(Conv2dAttributes(outChannels: width, kernel: kernel, stride: effectiveStride(stride, at: x),
                                           padding: dilation * (kernel / 2), dilation: dilation, groups: groups, bias: bias)), x)
    }

    /// conv → BN → activation (activation optional).
    mutating func convBNAct(_ prefix: String, _ x: Int, width: Int, kernel: Int, stride: Int, groups: Int = 1,
                            activation: ActivationKind?, batchNorm: Bool = true, bias: Bool = false) -> Int {
        var y = conv("\(prefix)/conv", x, width: width, kernel: kernel, stride: stride, groups: groups, bias: bias)
        if batchNorm { y = add("\(prefix)/bn", .batchNorm(affine: true), y) }
        if let activation { y = add("\(prefix)/\(activation.rawValue)", .activation(activation), y) }
        return y
    }

    /// ReLU → conv → BN (NAS-Bench-201's ReLUConvBN).
    mutating func reluConvBN(_ prefix: String, _ x: Int, width: Int, kernel: Int, stride: Int) -> Int {
        var y = add("\(prefix)/relu", .activation(.relu), x)
        y = conv("\(prefix)/conv", y, width: width, kernel: kernel, stride: stride)
        return add("\(prefix)/bn", .batchNorm(affine: true), y)
    }

    mutating func layer(_ spec: LayerSpec, _ x: Int, _ a: Architecture) -> Int {
        switch spec.kind {
        case .embedding:
            return add("\(spec.name)/embedding", .embedding(vocabulary: vocabulary, dimension: spec.width.value(in: a)), x)
        case .conv:
            return convBNAct(spec.name, x, width: spec.width.value(in: a), kernel: spec.kernel.value(in: a),
                             stride: spec.stride.value(in: a), activation: spec.activation, batchNorm: spec.batchNorm, bias: spec.bias)
        case .maxPool, .avgPool:
            let k = spec.kernel.value(in: a)
            let p = PoolAttributes(kernel: k, stride: effectiveStride(spec.stride.value(in: a), at: x), padding: k / 2)
            return spec.kind == .maxPool ? add("\(spec.name)/maxpool", .maxPool(p), x) : add("\(spec.name)/avgpool", .avgPool(p), x)
        case .batchNorm:
            return add("\(spec.name)/bn", .batchNorm(affine: true), x)
        case let .activation(kind):
            return add("\(spec.name)/\(kind.rawValue)", .activation(kind), x)
        }
    }

    /// A 1×1 conv + BN projection when stride or channels change, otherwise `x` itself.
    mutating func shortcut(_ name: String, _ x: Int, width: Int, stride: Int) -> Int {
        let s = effectiveStride(stride, at: x)
        guard s != 1 || shapes[x].channels != width else { return x }
        let y = conv("\(name)/conv", x, width: width, kernel: 1, stride: s)
        return add("\(name)/bn", .batchNorm(affine: true), y)
    }

    mutating func block(_ op: BlockOperation, name: String, _ x: Int, width: Int, kernel: Int, stride: Int,
                        expansion: Int, activation: ActivationKind) -> Int {
        let inChannels = shapes[x].channels
        let s = effectiveStride(stride, at: x)
        switch op {
        case .conv:
            return convBNAct(name, x, width: width, kernel: kernel, stride: s, activation: activation)
        case .dsconv:
            let y = convBNAct("\(name)/depthwise", x, width: inChannels, kernel: kernel, stride: s, groups: inChannels, activation: activation)
            return convBNAct("\(name)/pointwise", y, width: width, kernel: 1, stride: 1, activation: activation)
        case .mbconv:
            let hidden = inChannels * expansion
            var y = x
            if expansion != 1 { y = convBNAct("\(name)/expand", y, width: hidden, kernel: 1, stride: 1, activation: activation) }
            y = convBNAct("\(name)/depthwise", y, width: hidden, kernel: kernel, stride: s, groups: hidden, activation: activation)
            y = convBNAct("\(name)/project", y, width: width, kernel: 1, stride: 1, activation: nil)
            guard s == 1, inChannels == width else { return y }
            return add("\(name)/add", .add, x, y)
        case .resblock:
            var y = convBNAct("\(name)/conv1", x, width: width, kernel: kernel, stride: s, activation: activation)
            y = convBNAct("\(name)/conv2", y, width: width, kernel: kernel, stride: 1, activation: nil)
            let r = shortcut("\(name)/downsample", x, width: width, stride: s)
            let sum = add("\(name)/add", .add, r, y)
            return add("\(name)/\(activation.rawValue)", .activation(activation), sum)
        case .skip:
            return shortcut("\(name)/projection", x, width: width, stride: s)
        case .conv1d, .dilated:
            let dilation = op == .dilated ? 2 : 1
            var y = add("\(name)/conv", .conv1d(outChannels: width, kernel: kernel, stride: s, padding: dilation * (kernel / 2),
                                                dilation: dilation, bias: true), x)
            y = add("\(name)/\(activation.rawValue)", .activation(activation), y)
            guard s == 1, inChannels == width else { return y }
            return add("\(name)/add", .add, x, y)
        case .multiConv1d:
            let branches = [3, 5, 7].map { k -> Int in
                let y = add("\(name)/k\(k)/conv", .conv1d(outChannels: width, kernel: k, stride: s, padding: k / 2, bias: true), x)
                return add("\(name)/k\(k)/\(activation.rawValue)", .activation(activation), y)
            }
            return add("\(name)/concat", .concat, inputs: branches)
        case .attention:
            var y = x
            if s != 1 || inChannels != width {
                y = add("\(name)/projection", .conv1d(outChannels: width, kernel: 1, stride: s, bias: true), y)
            }
            let heads = width % 4 == 0 ? 4 : (width % 2 == 0 ? 2 : 1)
            var h = add("\(name)/attention/norm", .layerNorm(affine: true), y)
            h = add("\(name)/attention/self", .selfAttention(heads: heads), h)
            y = add("\(name)/attention/add", .add, y, h)
            h = add("\(name)/ffn/norm", .layerNorm(affine: true), y)
            h = add("\(name)/ffn/expand", .conv1d(outChannels: width * expansion, kernel: 1, bias: true), h)
            h = add("\(name)/ffn/gelu", .activation(.gelu), h)
            h = add("\(name)/ffn/project", .conv1d(outChannels: width, kernel: 1, bias: true), h)
            return add("\(name)/ffn/add", .add, y, h)
        case .dense:
            let y = add("\(name)/linear", .linear(outFeatures: width, bias: true), x)
            return add("\(name)/\(activation.rawValue)", .activation(activation), y)
        case .denseBN:
            var y = add("\(name)/linear", .linear(outFeatures: width, bias: false), x)
            y = add("\(name)/bn", .batchNorm(affine: true), y)
            return add("\(name)/\(activation.rawValue)", .activation(activation), y)
        case .maxpool, .avgpool:
            let p = PoolAttributes(kernel: kernel, stride: s, padding: kernel / 2)
            let y = op == .maxpool ? add("\(name)/maxpool", .maxPool(p), x) : add("\(name)/avgpool", .avgPool(p), x)
            guard inChannels != width else { return y }
            let z = conv("\(name)/projection/conv", y, width: width, kernel: 1, stride: 1)
            return add("\(name)/projection/bn", .batchNorm(affine: true), z)
        }
    }

    /// NAS-Bench-201's ResNet basic block with stride 2: ReLUConvBN 3×3 s2, ReLUConvBN 3×3,
    /// shortcut avg-pool 2×2 s2 + conv 1×1 (no BN). On a 1×1 map the stride is 1 and the
    /// shortcut is a ReLUConvBN 1×1 (or the identity when channels match), as NAS-Bench-201 does
    /// for stride 1. On an odd size the shortcut's pooling pads by 1 (not counting the padding)
    /// so that both branches agree.
    mutating func resnetReduction(_ name: String, _ x: Int, width: Int) -> Int {
        let s = effectiveStride(2, at: x)
        let inChannels = shapes[x].channels
        var y = reluConvBN("\(name)/conv_a", x, width: width, kernel: 3, stride: s)
        y = reluConvBN("\(name)/conv_b", y, width: width, kernel: 3, stride: 1)
        let r: Int
        if s == 2 {
            let padding = shapes[x].height % 2
            let p = add("\(name)/downsample/avgpool",
                        .avgPool(PoolAttributes(kernel: 2, stride: 2, padding: padding, countIncludePadding: false)), x)
            r = conv("\(name)/downsample/conv", p, width: width, kernel: 1, stride: 1)
        } else if inChannels != width {
            r = reluConvBN("\(name)/downsample", x, width: width, kernel: 1, stride: 1)
        } else {
            r = x
        }
        return add("\(name)/add", .add, r, y)
    }

    /// A DAG cell: node j is the sum of op(node i) over its incoming edges (i → j); the output is the last node.
    mutating func cell(_ cell: CellSpec, genotype: GenotypeSpec, name: String, _ x: Int, _ a: Architecture) -> Int {
        var value = [Int](repeating: -1, count: cell.nodeCount)
        value[0] = x
        let width = shapes[x].channels
        for node in cell.topologicalOrder where node != 0 {
            var terms = [Int]()
            for (e, edge) in cell.edges.enumerated() where edge.to == node {
                let input = value[edge.from]
                let prefix = "\(name)/edge(\(edge.to)<-\(edge.from))"
                switch genotype.edges[e].value(in: a) {
                case .none: continue
                case .skipConnect: terms.append(input)
                case .convolution1x1: terms.append(reluConvBN(prefix, input, width: width, kernel: 1, stride: 1))
                case .convolution3x3: terms.append(reluConvBN(prefix, input, width: width, kernel: 3, stride: 1))
                case .averagePool3x3:
                    terms.append(add("\(prefix)/avgpool", .avgPool(PoolAttributes(kernel: 3, stride: 1, padding: 1, countIncludePadding: false)), input))
                case .maxPool3x3:
                    terms.append(add("\(prefix)/maxpool", .maxPool(PoolAttributes(kernel: 3, stride: 1, padding: 1)), input))
                case .separableConvolution3x3, .dilatedConvolution3x3:
                    let dilation = genotype.edges[e].value(in: a) == .dilatedConvolution3x3 ? 2 : 1
                    var y = add("\(prefix)/relu", .activation(.relu), input)
                    y = conv("\(prefix)/depthwise", y, width: width, kernel: 3, stride: 1, groups: width, dilation: dilation)
                    y = conv("\(prefix)/pointwise", y, width: width, kernel: 1, stride: 1)
                    terms.append(add("\(prefix)/bn", .batchNorm(affine: true), y))
                }
            }
            switch terms.count {
            case 0: value[node] = add("\(name)/node\(node)/zero", .zero(stride: 1), x)
            case 1: value[node] = terms[0]
            default:
                value[node] = add("\(name)/node\(node)", .add, inputs: terms)
            }
        }
        shape = shapes[value[cell.nodeCount - 1]]
        return value[cell.nodeCount - 1]
    }
}
