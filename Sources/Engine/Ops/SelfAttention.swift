import CBLAS
import Dispatch
import NASCore

/// Multi-head scaled dot-product self-attention on a sequence D×1×L → D×1×L, with the
/// parameters of PyTorch's `nn.MultiheadAttention(D, heads, batch_first=True)`:
/// `<node>/in_proj_weight` `[3D, D]` (query, key, value rows), `<node>/in_proj_bias` `[3D]`,
/// `<node>/out_proj/weight` `[D, D]`, `<node>/out_proj/bias` `[D]`.
///
/// - Key padding mask: keys at positions ≥ the sample's valid length (recorded by the network's
///   `embedding`, see `ExecutionContext.validLength`) get zero attention weight, as with
///   PyTorch's `key_padding_mask`. Queries at padded positions still produce outputs (attending
///   to the valid keys); the masked poolings ignore them, so nothing depends on them and the
///   gradient reaching padded positions through attention is exactly zero. Without an
///   embedding every position is valid.
/// - No dropout inside; the input must have height 1; `D` must be divisible by `heads`.
/// - Initialisation as PyTorch (whatever the network's `WeightInitializer`): Xavier-uniform
///   in-projection weight (fan-in D, fan-out 3D), out-projection weight uniform(±1/√D) (the
///   `nn.Linear` default), zero biases.
///
/// Costs: parameters `4D² + 4D`; MACs `3·L·D²` (in-projection) + `2·L²·D` (scores and weighted
/// sum) + `L·D²` (out-projection); NAS-Bench-201 FLOPs = MACs (softmax and biases not counted).
public struct SelfAttention: GraphOp, Hashable {
    public static let kind = "selfAttention"
    public var heads: Int

    public init(heads: Int) { self.heads = heads }
    public init(attributes a: OpAttributeReader) throws { self.init(heads: try a.int("heads")) }

    public var attributes: OpAttributeList { [("heads", .int(heads))] }

    public func outputShape(inputs: [FeatureShape]) throws -> FeatureShape {
        let x = try Self.single(inputs)
        guard heads > 0 else { throw OpShapeError("selfAttention needs at least one head, got \(heads)") }
        guard x.height == 1 else { throw OpShapeError("selfAttention needs a sequence shaped Dx1xL, got \(x)") }
        guard x.channels % heads == 0 else {
            throw OpShapeError("selfAttention: \(heads) heads do not divide the embedding dimension \(x.channels)")
        }
        return x
    }

    public func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost {
        let d = inputs[0].channels, l = inputs[0].width
        let macs = 3 * l * d * d + 2 * l * l * d + l * d * d
        return OpCost(parameters: 4 * d * d + 4 * d, multiplyAccumulates: macs, nasBench201Flops: macs)
    }

    public func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? {
        let shape = context.inputShapes[0]
        let layer = SelfAttentionLayer(name: context.name, dimension: shape.channels, heads: heads, length: shape.width)
        let d = Double(shape.channels)
        let inBound = (6.0 / (d + 3 * d)).squareRoot()
        for i in layer.inWeight.storage.buffer.indices {
            layer.inWeight.storage.buffer[i] = Float((context.rng.nextUnitDouble() * 2 - 1) * inBound)
        }
        let outBound = 1 / d.squareRoot()
        for i in layer.outWeight.storage.buffer.indices {
            layer.outWeight.storage.buffer[i] = Float((context.rng.nextUnitDouble() * 2 - 1) * outBound)
        }
        layer.inBias.storage.zero()
        layer.outBias.storage.zero()
        return LayerHandle(layer)
    }
}

extension GraphOp where Self == SelfAttention {
    public static func selfAttention(heads: Int) -> SelfAttention { SelfAttention(heads: heads) }
}

// MARK: - Engine layer

/// Self-attention on CNHW buffers `[D][N][L]`, i.e. a `D × N·L` matrix whose columns are the
/// positions: the projections are single GEMMs over the whole batch; scores, softmax and the
/// weighted sums run per (sample, head), split over threads by pairs (deterministic).
final class SelfAttentionLayer: Layer {
    let dimension: Int
    let heads: Int
    let headDimension: Int
    let length: Int
    let inWeight: Parameter
    let inBias: Parameter
    let outWeight: Parameter
    let outBias: Parameter
    /// Saved by forward: Q, K, V `[3D × N·L]`, attention weights `[N·H × L × L]`, head outputs `[D × N·L]`.
    private let qkv = FloatBuffer(count: 0)
    private let probabilities = FloatBuffer(count: 0)
    private let attended = FloatBuffer(count: 0)
    /// Backward scratch.
    private let qkvGradient = FloatBuffer(count: 0)
    private let attendedGradient = FloatBuffer(count: 0)
    private var valid = [Int]()

    init(name: String, dimension: Int, heads: Int, length: Int) {
        self.dimension = dimension
        self.heads = heads
        headDimension = dimension / heads
        self.length = length
        inWeight = Parameter(name: name + "/in_proj_weight", shape: [3 * dimension, dimension], trainable: true)
        inBias = Parameter(name: name + "/in_proj_bias", shape: [3 * dimension], trainable: true)
        outWeight = Parameter(name: name + "/out_proj/weight", shape: [dimension, dimension], trainable: true)
        outBias = Parameter(name: name + "/out_proj/bias", shape: [dimension], trainable: true)
    }

    var parameters: [Parameter] { [inWeight, inBias, outWeight, outBias] }

    private var scale: Float { 1 / Float(headDimension).squareRoot() }

    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        let D = dimension, L = length, H = heads, hd = headDimension
        let nl = batch * L
        let x = inputs[0].pointer, y = output.pointer
        qkv.resize(3 * D * nl)
        probabilities.resize(batch * H * L * L)
        attended.resize(D * nl)
        valid = (0..<batch).map { context.validLength(sample: $0, length: L) }
        let q = qkv.pointer, p = probabilities.pointer, o = attended.pointer
        // Q, K, V = W_in · X + b_in.
        gemm(transposeA: false, transposeB: false, m: 3 * D, n: nl, k: D, a: inWeight.pointer, lda: D,
             b: x, ldb: nl, beta: 0, c: q, ldc: nl)
        addRowBias(q, inBias.pointer, rows: 3 * D, columns: nl)
        let scale = self.scale
        valid.withUnsafeBufferPointer { lengths in
            parallelChunks(batch * H, work: batch * H * L * L * hd * 2) { range in
                for pair in range {
                    let n = pair / H, h = pair % H, v = lengths[n]
                    let qp = q + h * hd * nl + n * L
                    let kp = q + (D + h * hd) * nl + n * L
                    let vp = q + (2 * D + h * hd) * nl + n * L
                    let pp = p + pair * L * L
                    // S[i][j] = scale · Σ_c Q[c][i] K[c][j] over the valid keys j < v.
                    gemm(transposeA: true, transposeB: false, m: L, n: v, k: hd, alpha: scale, a: qp, lda: nl,
                         b: kp, ldb: nl, beta: 0, c: pp, ldc: L)
                    for i in 0..<L {
                        let row = pp + i * L
                        var m = row[0]
                        for j in 1..<max(1, v) where row[j] > m { m = row[j] }
                        var total: Float = 0
                        for j in 0..<v { let e = expf(row[j] - m); row[j] = e; total += e }
                        let inv = 1 / total
                        for j in 0..<v { row[j] *= inv }
                        if v < L { (row + v).update(repeating: 0, count: L - v) }
                    }
                    // O[c][i] = Σ_j V[c][j] P[i][j].
                    gemm(transposeA: false, transposeB: true, m: hd, n: L, k: v, a: vp, lda: nl,
                         b: pp, ldb: L, beta: 0, c: o + h * hd * nl + n * L, ldc: nl)
                }
            }
        }
        // Y = W_out · O + b_out.
        gemm(transposeA: false, transposeB: false, m: D, n: nl, k: D, a: outWeight.pointer, lda: D,
             b: o, ldb: nl, beta: 0, c: y, ldc: nl)
        addRowBias(y, outBias.pointer, rows: D, columns: nl)
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        let D = dimension, L = length, H = heads, hd = headDimension
        let nl = batch * L
        let x = inputs[0].pointer, dy = outputGradient.pointer
        let q = qkv.pointer, p = probabilities.pointer, o = attended.pointer
        attendedGradient.resize(D * nl)
        qkvGradient.resize(3 * D * nl)
        let dO = attendedGradient.pointer, dq = qkvGradient.pointer
        // Out-projection.
        gemm(transposeA: false, transposeB: true, m: D, n: D, k: nl, a: dy, lda: nl, b: o, ldb: nl,
             beta: 0, c: outWeight.gradientPointer, ldc: D)
        for r in 0..<D { outBias.gradientPointer[r] = Float(sumDouble(dy + r * nl, nl)) }
        gemm(transposeA: true, transposeB: false, m: D, n: nl, k: D, a: outWeight.pointer, lda: D,
             b: dy, ldb: nl, beta: 0, c: dO, ldc: nl)
        let scale = self.scale
        valid.withUnsafeBufferPointer { lengths in
            parallelChunks(batch * H, work: batch * H * L * L * hd * 4) { range in
                var scratch = [Float](repeating: 0, count: L * L)
                scratch.withUnsafeMutableBufferPointer { sb in
                    let ds = sb.baseAddress!
                    for pair in range {
                        let n = pair / H, h = pair % H, v = lengths[n]
                        let column = n * L
                        let qp = q + h * hd * nl + column
                        let kp = q + (D + h * hd) * nl + column
                        let vp = q + (2 * D + h * hd) * nl + column
                        let dqp = dq + h * hd * nl + column
                        let dkp = dq + (D + h * hd) * nl + column
                        let dvp = dq + (2 * D + h * hd) * nl + column
                        let dop = dO + h * hd * nl + column
                        let pp = p + pair * L * L
                        // dV[c][j] = Σ_i dO[c][i] P[i][j] (0 for masked keys: P is 0 there).
                        gemm(transposeA: false, transposeB: false, m: hd, n: L, k: L, a: dop, lda: nl,
                             b: pp, ldb: L, beta: 0, c: dvp, ldc: nl)
                        // dP[i][j] = Σ_c dO[c][i] V[c][j], then dS = P ⊙ (dP − Σ_j P dP) (0 for masked keys).
                        gemm(transposeA: true, transposeB: false, m: L, n: v, k: hd, a: dop, lda: nl,
                             b: vp, ldb: nl, beta: 0, c: ds, ldc: L)
                        for i in 0..<L {
                            let row = ds + i * L, prow = pp + i * L
                            var dot: Float = 0
                            for j in 0..<v { dot += prow[j] * row[j] }
                            for j in 0..<v { row[j] = prow[j] * (row[j] - dot) }
                            if v < L { (row + v).update(repeating: 0, count: L - v) }
                        }
                        // dQ[c][i] = scale · Σ_j K[c][j] dS[i][j]; dK[c][j] = scale · Σ_i Q[c][i] dS[i][j].
                        gemm(transposeA: false, transposeB: true, m: hd, n: L, k: v, alpha: scale, a: kp, lda: nl,
                             b: ds, ldb: L, beta: 0, c: dqp, ldc: nl)
                        gemm(transposeA: false, transposeB: false, m: hd, n: L, k: L, alpha: scale, a: qp, lda: nl,
                             b: ds, ldb: L, beta: 0, c: dkp, ldc: nl)
                    }
                }
            }
        }
        // In-projection.
        gemm(transposeA: false, transposeB: true, m: 3 * D, n: D, k: nl, a: dq, lda: nl, b: x, ldb: nl,
             beta: 0, c: inWeight.gradientPointer, ldc: D)
        for r in 0..<(3 * D) { inBias.gradientPointer[r] = Float(sumDouble(dq + r * nl, nl)) }
        if let dx = inputGradients[0] {
            gemm(transposeA: true, transposeB: false, m: D, n: nl, k: 3 * D, a: inWeight.pointer, lda: D,
                 b: dq, ldb: nl, beta: accumulate[0] ? 1 : 0, c: dx.pointer, ldc: nl)
        }
    }
}

/// `matrix[r][c] += bias[r]` for a row-major `rows × columns` matrix.
@inline(__always)
func addRowBias(_ matrix: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, rows: Int, columns: Int) {
    for r in 0..<rows {
        let b = bias[r], row = matrix + r * columns
        for i in 0..<columns { row[i] += b }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
