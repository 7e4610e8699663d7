import Dispatch
import NASCore

/// A token embedding (PyTorch's `nn.Embedding(V, D, padding_idx=0)`): token ids 1×1×L → D×1×L.
///
/// - Weight `[V, D]` (`<node>/weight`), initialised N(0, 1) from the network's generator like
///   PyTorch (whatever the network's `WeightInitializer`); row 0 (the padding token) is zeroed at
///   initialisation and never receives a gradient.
/// - Ids are stored as floats; they are rounded to the nearest integer, and ids outside `0..<V`
///   (or not finite) are read as the unknown token 1 — an out-of-vocabulary id never crashes.
/// - No input gradient (ids are not differentiable).
/// - Masks: the forward pass records each sample's valid length (index of the last non-zero id
///   + 1, at least 1) in the execution context, for the masked ops downstream
///   (`sequenceMaxPool`, `sequenceMeanPool`, `selfAttention`).
///
/// Costs: parameters `V·D`; MACs 0 and NAS-Bench-201 FLOPs 0 (a table lookup, no arithmetic).
public struct Embedding: GraphOp, Hashable {
    public static let kind = "embedding"
    public var vocabulary: Int
    public var dimension: Int

    public init(vocabulary: Int, dimension: Int) {
        self.vocabulary = vocabulary
        self.dimension = dimension
    }

    public init(attributes a: OpAttributeReader) throws {
        self.init(vocabulary: try a.int("vocabulary"), dimension: try a.int("dimension"))
    }

    public var attributes: OpAttributeList { [("vocabulary", .int(vocabulary)), ("dimension", .int(dimension))] }

    public func outputShape(inputs: [FeatureShape]) throws -> FeatureShape {
        let x = try Self.single(inputs)
        guard vocabulary >= 2 else {
            throw OpShapeError("embedding vocabulary must be at least 2 (padding and unknown tokens), got \(vocabulary)")
        }
        guard dimension > 0 else { throw OpShapeError("embedding dimension must be positive, got \(dimension)") }
        guard x.channels == 1, x.height == 1 else {
            throw OpShapeError("embedding needs token ids shaped 1x1xL, got \(x)")
        }
        return FeatureShape(channels: dimension, height: 1, width: x.width)
    }

    public func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost {
        OpCost(parameters: vocabulary * dimension)
    }

    public func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? {
        let layer = EmbeddingLayer(name: context.name, vocabulary: vocabulary, dimension: dimension,
                                   length: context.inputShapes[0].width)
        let w = layer.weight.storage.buffer
        for i in w.indices { w[i] = Float(context.rng.nextNormal()) }
        for d in 0..<dimension { w[d] = 0 }
        return LayerHandle(layer)
    }
}

extension GraphOp where Self == Embedding {
    public static func embedding(vocabulary: Int, dimension: Int) -> Embedding {
        Embedding(vocabulary: vocabulary, dimension: dimension)
    }
}

// MARK: - Engine layer

final class EmbeddingLayer: Layer {
    let vocabulary: Int
    let dimension: Int
    let length: Int
    let weight: Parameter
    /// The clamped ids of the last forward pass (`[N·L]`, sample-major).
    private var ids = [Int32]()

    init(name: String, vocabulary: Int, dimension: Int, length: Int) {
        self.vocabulary = vocabulary
        self.dimension = dimension
        self.length = length
        weight = Parameter(name: name + "/weight", shape: [vocabulary, dimension], trainable: true)
    }

    var parameters: [Parameter] { [weight] }

    /// The id at a position: rounded; outside `0..<V` (or NaN) → the unknown token.
    @inline(__always)
    private func tokenId(_ v: Float) -> Int32 {
        let r = v.rounded()
        guard r >= 0, r < Float(vocabulary) else { return Int32(InputKind.unknownToken) }
        return Int32(r)
    }

    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        let x = inputs[0].pointer, y = output.pointer
        let count = batch * length
        if ids.count != count { ids = [Int32](repeating: 0, count: count) }
        var lengths = [Int](repeating: 1, count: batch)
        for n in 0..<batch {
            var last = 0
            for l in 0..<length {
                let id = tokenId(x[n * length + l])
                ids[n * length + l] = id
                if id != Int32(InputKind.paddingToken) { last = l + 1 }
            }
            lengths[n] = max(1, last)
        }
        context.sequenceLengths = lengths
        context.sequenceLengthBase = length
        let w = weight.pointer, dimension = self.dimension
        ids.withUnsafeBufferPointer { idp in
            parallelChunks(dimension, work: dimension * count) { range in
                for d in range {
                    let row = y + d * count
                    for p in 0..<count { row[p] = w[Int(idp[p]) * dimension + d] }
                }
            }
        }
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        // Ids have no gradient; the input gradient (if requested) is zero.
        if let dx = inputGradients[0], !accumulate[0] { dx.zero() }
        let dW = weight.gradientPointer, dy = outputGradient.pointer
        weight.gradientStorage.zero()
        let count = batch * length, dimension = self.dimension
        // Each thread owns whole columns d of dW; positions are summed in order (deterministic).
        ids.withUnsafeBufferPointer { idp in
            parallelChunks(dimension, work: dimension * count) { range in
                for d in range {
                    let row = dy + d * count
                    for p in 0..<count {
                        let id = Int(idp[p])
                        if id != InputKind.paddingToken { dW[id * dimension + d] += row[p] }
                    }
                }
            }
        }
    }
}
