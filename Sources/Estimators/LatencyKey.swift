import Engine
import NASCore

/// Lookup-table keys of the latency predictor: one string per (operation, attributes, input shapes).
///
/// Format: `<op>(<attribute>:<value>,…)@<input shape>[+<input shape>…]`, shapes as `CxHxW`
/// (per sample; the batch size and thread count are properties of the whole table). Examples:
///
/// ```
/// conv2d(out:16,kernel:3,stride:1,padding:1,dilation:1,groups:1,bias:false)@8x28x28
/// activation(function:relu6)@96x14x14
/// add@24x7x7+24x7x7
/// network(output:10x1x1)@1x28x28        // the boundary: input loading and output conversion
/// ```
///
/// The spelling is each op's `latencySignature` (`GraphOp.latencyAttributes`): attributes that do
/// not change the evaluation-mode cost are left out, e.g. a dropout's rate (a copy at inference)
/// and the `affine` flag of batch norm (folded into one scale and shift).
public enum LatencyKey {
    /// The key of `op` applied to inputs of the given shapes, or `nil` for the input node.
    public static func key(for op: any GraphOp, inputShapes: [FeatureShape]) -> String? {
        if op is Input { return nil }
        return op.latencySignature + "@" + inputShapes.map(\.description).joined(separator: "+")
    }

    /// The key of a network's fixed overhead: checking and loading the input, converting the output.
    public static func boundary(input: FeatureShape, output: FeatureShape) -> String {
        "network(output:\(output))@\(input)"
    }

    /// The key of every node of `graph` (`nil` for the input node), in node order.
    /// - Throws: `NetworkGraphError` if the graph's shapes are inconsistent.
    public static func keys(for graph: NetworkGraph) throws -> [String?] {
        let shapes = try graph.inferShapes()
        return graph.nodes.map { node in key(for: node.op, inputShapes: node.inputs.map { shapes[$0] }) }
    }

    /// The boundary key of `graph`.
    public static func boundary(for graph: NetworkGraph) throws -> String {
        let shapes = try graph.inferShapes()
        return boundary(input: graph.inputShape, output: shapes[graph.output])
    }
}
