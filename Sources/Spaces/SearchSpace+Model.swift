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

    /// Whether the kernel size influences this operation.
    public var usesKernel: Bool { self != .skip }
    /// Whether the expansion ratio influences this operation.
    public var usesExpansion: Bool { self == .mbconv }
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

struct HeadSpec: Hashable, Sendable {
    var layers: [LayerSpec]
    var dropout: Double
}
