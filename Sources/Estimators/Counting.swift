import Engine
import NASCore

/// Cheap, training-free costs of one layer of a `NetworkGraph`.
public struct LayerCost: Hashable, Codable, Sendable {
    /// The node's name (`stage1/block0/expand/conv`).
    public var name: String
    /// Trainable parameters (conv/linear weights and biases, BN affine scale and shift).
    public var parameters: Int
    /// Multiply-accumulates of convolutions and linear layers (bias adds not counted).
    public var multiplyAccumulates: Int
    /// FLOPs under NAS-Bench-201's convention (see `NetworkCost.nasBench201Flops`).
    public var nasBench201Flops: Int
    /// Output shape of the node.
    public var outputShape: FeatureShape
}

/// Cheap, training-free costs of a whole network: parameters, MACs/FLOPs, activation memory.
///
/// Conventions (also in `docs/search-spaces.md`):
/// - parameters: conv weights `out·(in/groups)·k²` (+ `out` with bias), linear `in·out + out`,
///   affine batch norm `2·C` (running statistics are buffers, not parameters);
/// - MACs: convolutions `out·H_out·W_out·(in/groups)·k²`, linear `in·out`; nothing else;
/// - FLOPs = 2 × MACs;
/// - NAS-Bench-201 FLOPs (the convention of the `flops` figures NASLib stores for NB201, derived
///   by an exact linear fit over 2,174 architectures): convolution MACs (+ 1 per output element
///   with bias), linear `in·out` (bias not counted), `k²` per output element of max/avg pooling,
///   2 per element of batch norm, 1 per element of an activation, 1 per input element of global
///   average pooling; additions, identities and zeros are free. This matches NB201's figures to
///   within 0.03 % (a residual of 1,088 FLOPs at 32×32 and 576 at 16×16 stays unexplained).
///
/// ```swift
/// let cost = try NetworkCost(graph)
/// print(cost.parameters, cost.multiplyAccumulates, cost.peakActivationBytes)
/// ```
public struct NetworkCost: Hashable, Codable, Sendable {
    public var layers: [LayerCost]
    public var parameters: Int
    public var multiplyAccumulates: Int
    /// 2 × `multiplyAccumulates`.
    public var flops: Int { 2 * multiplyAccumulates }
    public var nasBench201Flops: Int
    /// Peak bytes of float32 activations alive at once during a batch-1 forward pass (input included).
    public var peakActivationBytes: Int

    /// Computes the costs of `graph`.
    /// - Throws: `NetworkGraphError` when the graph's shapes are inconsistent.
    public init(_ graph: NetworkGraph) throws {
        let shapes = try graph.inferShapes()
        var layers = [LayerCost]()
        layers.reserveCapacity(graph.nodes.count)
        for (index, node) in graph.nodes.enumerated() {
            let output = shapes[index]
            let c = node.op.cost(inputs: node.inputs.map { shapes[$0] }, output: output)
            let (parameters, macs, nb201) = (c.parameters, c.multiplyAccumulates, c.nasBench201Flops)
            layers.append(LayerCost(name: node.name, parameters: parameters, multiplyAccumulates: macs,
                                    nasBench201Flops: nb201, outputShape: output))
        }
        self.layers = layers
        parameters = layers.reduce(0) { $0 + $1.parameters }
        multiplyAccumulates = layers.reduce(0) { $0 + $1.multiplyAccumulates }
        nasBench201Flops = layers.reduce(0) { $0 + $1.nasBench201Flops }
        peakActivationBytes = NetworkCost.peakActivationElements(graph, shapes) * MemoryLayout<Float>.size
    }

    /// Largest sum of live tensor sizes while running the nodes in order: a node's output lives
    /// from its computation until its last consumer has run; the graph output lives to the end.
    /// Nodes that only pass their input through (identity, dropout) are counted as new tensors.
    static func peakActivationElements(_ graph: NetworkGraph, _ shapes: [FeatureShape]) -> Int {
        var lastUse = Array(graph.nodes.indices)
        for (index, node) in graph.nodes.enumerated() {
            for input in node.inputs { lastUse[input] = max(lastUse[input], index) }
        }
        lastUse[graph.output] = graph.nodes.count
        var live = 0
        var peak = 0
        var freeAt = [Int: Int]()
        for index in graph.nodes.indices {
            live += shapes[index].elementCount
            peak = max(peak, live)
            freeAt[lastUse[index], default: 0] += shapes[index].elementCount
            live -= freeAt[index] ?? 0
        }
        return peak
    }
}

extension NetworkGraph {
    /// Parameters, MACs/FLOPs and activation memory of this graph (see `NetworkCost`).
    public func cost() throws -> NetworkCost { try NetworkCost(self) }
}
