import Dispatch
import NASCore

/// Layer normalisation over the channels at each position (eps 1e-5, biased variance):
/// for a sequence C×1×L this is PyTorch's `nn.LayerNorm(C)` applied to the `[N, L, C]` view;
/// for a flat F×1×1 input it is `nn.LayerNorm(F)`; a C×H×W input is normalised over C at each
/// (h, w). Same statistics in training and evaluation (no running buffers).
///
/// Parameters when `affine`: `<node>/weight` `[C]` (init 1) and `<node>/bias` `[C]` (init 0).
///
/// Costs: parameters `2·C` when affine; NAS-Bench-201 FLOPs 5 per element (mean, variance,
/// normalise, scale, shift).
public struct LayerNorm: GraphOp, Hashable {
    public static let kind = "layerNorm"
    public var affine: Bool

    public init(affine: Bool) { self.affine = affine }
    public init(attributes a: OpAttributeReader) throws { self.init(affine: try a.bool("affine")) }

    public var attributes: OpAttributeList { [("affine", .bool(affine))] }

    public func outputShape(inputs: [FeatureShape]) throws -> FeatureShape { try Self.single(inputs) }

    public func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost {
        OpCost(parameters: affine ? 2 * output.channels : 0, nasBench201Flops: 5 * output.elementCount)
    }

    public func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? {
        LayerHandle(LayerNormLayer(name: context.name, shape: context.outputShape, affine: affine))
    }
}

extension GraphOp where Self == LayerNorm {
    public static func layerNorm(affine: Bool) -> LayerNorm { LayerNorm(affine: affine) }
}

// MARK: - Engine layer

/// In CNHW a position's C values are `M = N·H·W` floats apart; work proceeds on blocks of
/// consecutive positions so that every pass over the channels reads contiguous rows.
final class LayerNormLayer: Layer {
    static let epsilon: Double = 1e-5
    /// Positions per block.
    static let block = 256
    let channels: Int
    let positions: Int
    let weight: Parameter?
    let bias: Parameter?
    /// Mean and 1/σ per position (`[N·H·W]`) of the last forward.
    private let mean = FloatBuffer(count: 0)
    private let inverseStd = FloatBuffer(count: 0)

    init(name: String, shape: FeatureShape, affine: Bool) {
        channels = shape.channels
        positions = shape.height * shape.width
        weight = affine ? Parameter(name: name + "/weight", shape: [shape.channels], trainable: true) : nil
        bias = affine ? Parameter(name: name + "/bias", shape: [shape.channels], trainable: true) : nil
        weight?.storage.buffer.update(repeating: 1)
    }

    var parameters: [Parameter] { [weight, bias].compactMap { $0 } }

    /// Runs `body(range)` over blocks of positions, in parallel when worthwhile (deterministic).
    private func forEachBlock(_ m: Int, _ body: (Range<Int>) -> Void) {
        let blocks = (m + Self.block - 1) / Self.block
        parallelChunks(blocks, work: m * channels * 4) { range in
            for b in range { body((b * Self.block)..<min(m, (b + 1) * Self.block)) }
        }
    }

    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        let m = batch * positions
        mean.resize(m)
        inverseStd.resize(m)
        let x = inputs[0].pointer, y = output.pointer
        let mu = mean.pointer, inv = inverseStd.pointer
        let gamma = weight?.pointer, beta = bias?.pointer
        let c = channels
        forEachBlock(m) { r in
            let j0 = r.lowerBound, count = r.count
            let mj = mu + j0, ij = inv + j0
            mj.update(repeating: 0, count: count)
            ij.update(repeating: 0, count: count)
            for ch in 0..<c {
                let row = x + ch * m + j0
                for j in 0..<count { mj[j] += row[j] }
            }
            let scale = 1 / Float(c)
            for j in 0..<count { mj[j] *= scale }
            for ch in 0..<c {
                let row = x + ch * m + j0
                for j in 0..<count { let d = row[j] - mj[j]; ij[j] += d * d }
            }
            for j in 0..<count { ij[j] = Float(1.0 / (Double(ij[j] * scale) + LayerNormLayer.epsilon).squareRoot()) }
            for ch in 0..<c {
                let row = x + ch * m + j0, out = y + ch * m + j0
                let g = gamma?[ch] ?? 1, b = beta?[ch] ?? 0
                for j in 0..<count { out[j] = (row[j] - mj[j]) * ij[j] * g + b }
            }
        }
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        let m = batch * positions
        let x = inputs[0].pointer, dy = outputGradient.pointer
        let mu = mean.pointer, inv = inverseStd.pointer
        let c = channels
        // Affine gradients: per channel, a reduction over all positions (each thread owns channels).
        if let weight, let bias {
            let dW = weight.gradientPointer, dB = bias.gradientPointer
            parallelChunks(c, work: c * m * 2) { range in
                for ch in range {
                    let row = x + ch * m, g = dy + ch * m
                    var sw = 0.0, sb = 0.0
                    var j = 0
                    while j < m {
                        let end = min(m, j + 4096)
                        var pw: Float = 0, pb: Float = 0
                        for i in j..<end { pw += g[i] * (row[i] - mu[i]) * inv[i]; pb += g[i] }
                        sw += Double(pw)
                        sb += Double(pb)
                        j = end
                    }
                    dW[ch] = Float(sw)
                    dB[ch] = Float(sb)
                }
            }
        }
        guard let dxBuffer = inputGradients[0] else { return }
        let dx = dxBuffer.pointer
        let acc = accumulate[0]
        let gamma = weight?.pointer
        // dx = σ⁻¹ (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) with ĝ = γ·dy, means over channels.
        forEachBlock(m) { r in
            let j0 = r.lowerBound, count = r.count
            var meanG = [Float](repeating: 0, count: count)
            var meanGX = [Float](repeating: 0, count: count)
            for ch in 0..<c {
                let row = x + ch * m + j0, g = dy + ch * m + j0
                let gm = gamma?[ch] ?? 1
                for j in 0..<count {
                    let gh = g[j] * gm
                    meanG[j] += gh
                    meanGX[j] += gh * (row[j] - mu[j0 + j]) * inv[j0 + j]
                }
            }
            let scale = 1 / Float(c)
            for j in 0..<count { meanG[j] *= scale; meanGX[j] *= scale }
            for ch in 0..<c {
                let row = x + ch * m + j0, g = dy + ch * m + j0, out = dx + ch * m + j0
                let gm = gamma?[ch] ?? 1
                for j in 0..<count {
                    let s = inv[j0 + j]
                    let xhat = (row[j] - mu[j0 + j]) * s
                    let v = s * (g[j] * gm - meanG[j] - xhat * meanGX[j])
                    if acc { out[j] += v } else { out[j] = v }
                }
            }
        }
    }
}
