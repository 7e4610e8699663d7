import NASCore

/// Which nodes the engine runs as one kernel in inference (`training: false`): a 2-D convolution
/// followed by the batch norm that alone reads it, and by the activation that alone reads that
/// batch norm (conv → BN → act, conv → BN, or conv → act). The convolution's GEMM writes straight
/// into the chain's last buffer and applies bias, the batch norm's per-channel affine map (from
/// its running statistics) and the activation to each tile while it is in cache; the batch norm
/// and activation nodes then do nothing of their own.
///
/// This is the one definition of what the engine fuses: `Network` executes it, and the latency
/// predictor (`Estimators`) measures and predicts these chains as single kernels.
///
/// ```swift
/// let fusion = InferenceFusion(graph: graph)
/// for chain in fusion.chains { print(graph.nodes[chain.convolution].name, chain.nodes) }
/// ```
public struct InferenceFusion: Hashable, Sendable {
    /// One fused chain, by node index.
    public struct Chain: Hashable, Sendable {
        public var convolution: Int
        public var batchNorm: Int?
        public var activation: Int?

        /// The chain's nodes in graph order.
        public var nodes: [Int] { [convolution] + [batchNorm, activation].compactMap { $0 } }
        /// The node whose buffer receives the chain's result.
        public var last: Int { activation ?? batchNorm ?? convolution }
    }

    /// The chains, in the order of their convolutions.
    public let chains: [Chain]
    /// For every node, the chain it belongs to (index into `chains`), or nil.
    public let chainOfNode: [Int?]

    public init(graph: NetworkGraph) {
        var consumers = [[Int]](repeating: [], count: graph.nodes.count)
        for (index, node) in graph.nodes.enumerated() {
            for input in node.inputs { consumers[input].append(index) }
        }
        /// The single node that reads `index`, when exactly one node does.
        func soleConsumer(_ index: Int) -> Int? {
            guard index != graph.output, consumers[index].count == 1 else { return nil }
            let next = consumers[index][0]
            return graph.nodes[next].inputs == [index] ? next : nil
        }
        var chains = [Chain]()
        var chainOfNode = [Int?](repeating: nil, count: graph.nodes.count)
        for (index, node) in graph.nodes.enumerated() where node.op is Conv2d {
            var chain = Chain(convolution: index)
            var tail = index
            if let next = soleConsumer(tail), graph.nodes[next].op is BatchNorm {
                chain.batchNorm = next
                tail = next
            }
            if let next = soleConsumer(tail), graph.nodes[next].op is Activation {
                chain.activation = next
            }
            guard chain.nodes.count > 1 else { continue }
            for member in chain.nodes { chainOfNode[member] = chains.count }
            chains.append(chain)
        }
        self.chains = chains
        self.chainOfNode = chainOfNode
    }
}
