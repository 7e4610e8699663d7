import Dispatch
import NASCore

/// A token embedding (PyTorch's `nn.Embedding(V, D, padding_idx=0)`): token ids 1×1×L → D×1×L;
/// with K > 1 ids per position (K×1×L, slot-major: the tokenizer's subword bags) it is PyTorch's
/// `nn.EmbeddingBag(V, D, mode="mean", padding_idx=0)` applied at every position: the mean of the
/// rows of the position's non-padding ids (a position of only padding ids is 0).
///
/// - Weight `[V, D]` (`<node>/weight`), initialised from the network's generator (whatever the
///   network's `WeightInitializer`): N(0, 1) like PyTorch for K = 1; U(−1/D, 1/D) like fastText's
///   input matrix for bags (K > 1), so the rows of subword features never seen in training add
///   almost nothing to a bag. Row 0 (the padding token) is zeroed at initialisation and never
///   receives a gradient.
/// - Ids are stored as floats; they are rounded to the nearest integer, and ids outside `0..<V`
///   (or not finite) are read as the unknown token 1 — an out-of-vocabulary id never crashes.
/// - No input gradient (ids are not differentiable).
/// - Masks: the forward pass records each sample's valid length (index of the last non-zero id
///   of slot 0, the word ids, + 1, at least 1) in the execution context, for the masked ops
///   downstream (`sequenceMaxPool`, `sequenceMeanPool`, `selfAttention`).
///
/// Costs: parameters `V·D`; a lookup has no arithmetic (MACs and NAS-Bench-201 FLOPs 0 for
/// K = 1); a bag of K ids sums K rows per position: `K·L·D` MACs and FLOPs (the adds; the mean's
/// scale is not counted, like a bias).
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
        guard x.channels >= 1, x.height == 1 else {
            throw OpShapeError("embedding needs token ids shaped Kx1xL (K ids per position), got \(x)")
        }
        return FeatureShape(channels: dimension, height: 1, width: x.width)
    }

    public func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost {
        let bag = inputs[0].channels
        let adds = bag > 1 ? bag * inputs[0].width * dimension : 0
        return OpCost(parameters: vocabulary * dimension, multiplyAccumulates: adds, nasBench201Flops: adds)
    }

    public func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? {
        let layer = EmbeddingLayer(name: context.name, vocabulary: vocabulary, dimension: dimension,
                                   bag: context.inputShapes[0].channels, length: context.inputShapes[0].width)
        let w = layer.weight.storage.buffer
        if layer.bag == 1 {
            for i in w.indices { w[i] = Float(context.rng.nextNormal()) }
        } else {
            // fastText's input-matrix initialisation: rows of features never seen in training stay
            // near 0 instead of adding N(0, 1) noise to every bag they appear in at prediction time.
            let bound = 1 / Double(dimension)
            for i in w.indices { w[i] = Float((2 * context.rng.nextUnitDouble() - 1) * bound) }
        }
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
    /// Ids per position (K).
    let bag: Int
    let length: Int
    let weight: Parameter
    /// The clamped ids of the last forward pass, position-major: `[N·L][K]`.
    private var ids = [Int32]()
    /// 1 / (non-padding ids) of each position of the last forward pass (`[N·L]`; 0 for all padding).
    private var scale = [Float]()
    /// Backward scratch, reused across steps: the output gradient position-major and scaled (`[N·L][D]`).
    private var scaledGradient = [Float]()

    init(name: String, vocabulary: Int, dimension: Int, bag: Int, length: Int) {
        self.vocabulary = vocabulary
        self.dimension = dimension
        self.bag = bag
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
        let count = batch * length, bag = self.bag, length = self.length
        if ids.count != count * bag { ids = [Int32](repeating: 0, count: count * bag) }
        if scale.count != count { scale = [Float](repeating: 0, count: count) }
        var lengths = [Int](repeating: 1, count: batch)
        let pad = Int32(InputKind.paddingToken)
        // The input is CNHW: slot k of position p = n·L + l is x[k·N·L + p].
        for n in 0..<batch {
            var last = 0
            for l in 0..<length {
                let p = n * length + l
                var used: Float = 0
                for k in 0..<bag {
                    let id = tokenId(x[k * count + p])
                    ids[p * bag + k] = id
                    if id != pad { used += 1 }
                }
                scale[p] = used > 0 ? 1 / used : 0
                if ids[p * bag] != pad { last = l + 1 }
            }
            lengths[n] = max(1, last)
        }
        context.sequenceLengths = lengths
        context.sequenceLengthBase = length
        let w = weight.pointer, dimension = self.dimension
        ids.withUnsafeBufferPointer { idp in
            scale.withUnsafeBufferPointer { sp in
                parallelChunks(count, work: dimension * count * bag) { range in
                    var sum = [Float](repeating: 0, count: dimension)
                    for p in range {
                        let s = sp[p]
                        if s == 0 {
                            for d in 0..<dimension { y[d * count + p] = 0 }
                            continue
                        }
                        for d in 0..<dimension { sum[d] = 0 }
                        for k in 0..<bag {
                            let id = Int(idp[p * bag + k])
                            if id == InputKind.paddingToken { continue }
                            let row = w + id * dimension
                            for d in 0..<dimension { sum[d] += row[d] }
                        }
                        for d in 0..<dimension { y[d * count + p] = sum[d] * s }
                    }
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
        let count = batch * length, dimension = self.dimension, bag = self.bag
        // The output gradient position-major ([N·L][D]), scaled by each position's 1/(ids in its bag).
        if scaledGradient.count != count * dimension { scaledGradient = [Float](repeating: 0, count: count * dimension) }
        scale.withUnsafeBufferPointer { sp in
            scaledGradient.withUnsafeMutableBufferPointer { g in
                for d in 0..<dimension {
                    let row = dy + d * count
                    for p in 0..<count { g[p * dimension + d] = row[p] * sp[p] }
                }
            }
        }
        // Each thread owns a range of weight rows and adds positions in order (deterministic).
        let rows = vocabulary
        ids.withUnsafeBufferPointer { idp in
            scaledGradient.withUnsafeBufferPointer { gp in
                parallelChunks(rows, work: count * bag * dimension) { range in
                    for p in 0..<count {
                        let source = gp.baseAddress! + p * dimension
                        for k in 0..<bag {
                            let id = Int(idp[p * bag + k])
                            guard id != InputKind.paddingToken, range.contains(id) else { continue }
                            let target = dW + id * dimension
                            for d in 0..<dimension { target[d] += source[d] }
                        }
                    }
                }
            }
        }
    }
}
