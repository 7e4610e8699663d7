import Engine
import NASCore

/// The operation of one block of a chain (macro) stage.
public enum BlockOperation: String, Hashable, Codable, Sendable, CaseIterable {
    /// Convolution k×k → BN → activation.
    case conv
    /// Depthwise-separable convolution (MobileNetV1): depthwise k×k → BN → act → pointwise 1×1 → BN → act.
    case dsconv
    /// Inverted residual (MobileNetV2): [1×1 expand → BN → act] → depthwise k×k → BN → act → 1×1 → BN, + input when shapes match.
    case mbconv
    /// Basic residual block (ResNet): conv k×k → BN → act → conv k×k → BN, + shortcut, → act.
    case resblock
    /// Identity; a 1×1 convolution + BN projection when the stride or channel count changes.
    case skip
    /// Max pooling k×k (padding k/2); a 1×1 convolution + BN follows when the channel count changes.
    case maxpool
    /// Average pooling k×k (padding k/2); a 1×1 convolution + BN follows when the channel count changes.
    case avgpool
    /// Text: 1-D convolution over time k (padding k/2) → activation, + input when shapes match.
    case conv1d
    /// Text: dilated 1-D convolution (dilation 2, padding 2·(k/2)) → activation, + input when shapes match.
    case dilated
    /// Text: a pre-norm transformer encoder block — x + SelfAttention(LayerNorm(x)), then
    /// x + FFN(LayerNorm(x)) with FFN = conv1d 1 (expansion·width) → GELU → conv1d 1 (width); heads:
    /// 4 when the width is a multiple of 4, else 2 when even, else 1. A 1-D 1×1 projection first
    /// when the channel count or stride changes.
    case attention
    /// Text: Kim (2014)-style parallel 1-D convolutions with kernels 3, 5 and 7 (`width` maps
    /// each) → activation, concatenated (3·width channels).
    case multiConv1d = "multi_conv1d"
    /// Tabular: linear (width) → activation.
    case dense
    /// Tabular: linear (width, no bias) → batch norm → activation.
    case denseBN = "dense_bn"

    /// Whether the kernel size influences this operation.
    public var usesKernel: Bool {
        switch self {
        case .conv, .dsconv, .mbconv, .resblock, .maxpool, .avgpool, .conv1d, .dilated: return true
        case .skip, .attention, .multiConv1d, .dense, .denseBN: return false
        }
    }

    /// Whether the expansion ratio influences this operation.
    public var usesExpansion: Bool { self == .mbconv || self == .attention }

    /// The tasks whose inputs this operation works on.
    public var tasks: Set<TaskKind> {
        switch self {
        case .conv, .dsconv, .mbconv, .resblock, .maxpool, .avgpool: return [.imageClassification, .segmentation, .detection]
        case .conv1d, .dilated, .attention, .multiConv1d: return [.textClassification]
        case .dense, .denseBN: return [.tabularClassification]
        case .skip: return Set(TaskKind.allCases)
        }
    }
}

/// How the head reduces the body's output to one feature vector before the classifier.
public enum HeadPool: String, Hashable, Codable, Sendable, CaseIterable {
    /// Global average pooling over height and width (images).
    case avg
    /// Max over the valid (non-padding) time steps (text).
    case max
    /// Mean over the valid (non-padding) time steps (text).
    case mean
    /// Nothing (flat features); a non-flat body output is flattened.
    case none

    /// The pooling a task uses when the space does not say.
    public static func `default`(for task: TaskKind) -> HeadPool {
        switch task {
        case .imageClassification: return .avg
        case .textClassification: return .max
        case .tabularClassification, .segmentation, .detection: return .none
        }
    }

    /// The tasks this pooling works on.
    public var tasks: Set<TaskKind> {
        switch self {
        case .avg: return [.imageClassification]
        case .max, .mean: return [.textClassification]
        case .none: return Set(TaskKind.allCases)
        }
    }
}

/// The operation on one edge of a cell (NAS-Bench-201 names).
public enum CellOperation: String, Hashable, Codable, Sendable, CaseIterable {
    /// Zeros (the edge is absent).
    case none
    /// Identity.
    case skipConnect = "skip_connect"
    /// ReLU → conv 1×1 → BN.
    case convolution1x1 = "nor_conv_1x1"
    /// ReLU → conv 3×3 → BN.
    case convolution3x3 = "nor_conv_3x3"
    /// Average pooling 3×3, stride 1, padding 1, padded zeros not counted.
    case averagePool3x3 = "avg_pool_3x3"
    /// Max pooling 3×3, stride 1, padding 1.
    case maxPool3x3 = "max_pool_3x3"
    /// ReLU → depthwise conv 3×3 → pointwise conv 1×1 → BN.
    case separableConvolution3x3 = "sep_conv_3x3"
    /// ReLU → depthwise conv 3×3 with dilation 2 → pointwise conv 1×1 → BN.
    case dilatedConvolution3x3 = "dil_conv_3x3"
}

/// A value of the space that is either fixed or chosen by one decision.
struct Choice<Value: Hashable & Sendable>: Hashable, Sendable {
    var values: [Value]
    /// Index of the decision choosing among `values`; `nil` when there is only one value.
    var decision: Int?

    static func fixed(_ value: Value) -> Choice { Choice(values: [value], decision: nil) }

    func value(in architecture: Architecture) -> Value {
        guard let d = decision else { return values[0] }
        return values[architecture.choices[d]]
    }

    func index(in architecture: Architecture) -> Int {
        decision.map { architecture.choices[$0] } ?? 0
    }

    var count: Int { values.count }
}

/// When a decision influences the network.
enum ActivityCondition: Hashable, Sendable {
    case always
    /// Block `block` of a stage exists (its index is below the chosen depth).
    case blockPresent(depth: Choice<Int>, block: Int)
    /// The block exists and its operation uses the kernel size.
    case blockUsesKernel(depth: Choice<Int>, block: Int, operation: Choice<BlockOperation>)
    /// The block exists and its operation uses the expansion ratio.
    case blockUsesExpansion(depth: Choice<Int>, block: Int, operation: Choice<BlockOperation>)
}

/// The kind of a stem or head layer.
enum LayerKind: Hashable, Sendable {
    /// Token embedding (text): `width` is the embedding dimension; the vocabulary comes from the input.
    case embedding
    case conv
    case maxPool
    case avgPool
    case batchNorm
    case activation(ActivationKind)
}

/// A stem or head layer.
struct LayerSpec: Hashable, Sendable {
    var name: String
    var kind: LayerKind
    var width: Choice<Int>
    var kernel: Choice<Int>
    var stride: Choice<Int>
    var batchNorm: Bool
    var activation: ActivationKind?
    var bias: Bool
}

/// One block slot of a chain stage (exists when its index is below the chosen depth).
struct BlockSpec: Hashable, Sendable {
    var operation: Choice<BlockOperation>
    var kernel: Choice<Int>
    var expansion: Choice<Int>
}

struct BlockStageSpec: Hashable, Sendable {
    var name: String
    var depth: Choice<Int>
    var width: Choice<Int>
    var stride: Choice<Int>
    var activation: Choice<ActivationKind>
    var blocks: [BlockSpec]
}

struct CellStageSpec: Hashable, Sendable {
    var name: String
    var count: Choice<Int>
    var width: Choice<Int>
    /// Index into `SearchSpace.genotypes`.
    var genotype: Int
}

struct ReductionStageSpec: Hashable, Sendable {
    var name: String
    var width: Choice<Int>
}

enum StageSpec: Hashable, Sendable {
    case blocks(BlockStageSpec)
    case cells(CellStageSpec)
    case reduction(ReductionStageSpec)

    var name: String {
        switch self {
        case let .blocks(s): return s.name
        case let .cells(s): return s.name
        case let .reduction(s): return s.name
        }
    }
}

/// An edge of a cell: node `to` receives op(node `from`).
struct CellEdge: Hashable, Sendable {
    var from: Int
    var to: Int
}

/// The cell topology shared by all genotypes of a space.
struct CellSpec: Hashable, Sendable {
    var nodeCount: Int
    var operations: [CellOperation]
    /// Edges sorted by (to, from): the order of the NAS-Bench-201 string.
    var edges: [CellEdge]
    /// Nodes in an order where every edge goes forward (node 0 first).
    var topologicalOrder: [Int]
}

/// One cell genotype: an operation choice per edge.
struct GenotypeSpec: Hashable, Sendable {
    /// Text-form name (`cell`, or `stage3.cell` when each cell stage has its own cell).
    var name: String
    var edges: [Choice<CellOperation>]
}

/// How a decoder level doubles the resolution of its input.
public enum DecoderUpsampling: String, Hashable, Codable, Sendable, CaseIterable {
    /// Nearest-neighbour upsampling ×2 (PyTorch `interpolate(mode='nearest')`).
    case nearest
    /// Bilinear upsampling ×2 (`align_corners=False`).
    case bilinear
    /// Transposed convolution 2×2, stride 2, to the level's width → BN → activation.
    case transposed
}

/// One decoder level: ×2 upsampling, optionally concatenated with the encoder's feature map of
/// the same resolution (a U-Net skip connection), then `depth` conv 3×3 → BN → activation blocks.
struct DecoderLevelSpec: Hashable, Sendable {
    var name: String
    var skip: Choice<Bool>
    var width: Choice<Int>
    var depth: Choice<Int>
}

/// The decoder of a segmentation or detection space (see docs/search-spaces.md "Decoders").
struct DecoderSpec: Hashable, Sendable {
    var upsampling: Choice<DecoderUpsampling>
    /// Deepest first.
    var levels: [DecoderLevelSpec]
    /// Detection: the width of the head's 3×3 convolution.
    var headWidth: Choice<Int>
}

struct HeadSpec: Hashable, Sendable {
    var layers: [LayerSpec]
    var pool: Choice<HeadPool>
    var dropout: Choice<Double>
}
