import CBLAS
import Dispatch
import NASCore

/// Batch normalisation over channels (eps 1e-5, momentum 0.1 as in PyTorch).
///
/// Costs: parameters `2·C` when affine (running statistics are buffers); NB201 FLOPs 2 per element.
/// Latency key: without `affine` (folded into one scale and shift at inference).
public struct BatchNorm: GraphOp, Hashable {
    public static let kind = "batchNorm"
    public var affine: Bool

    public init(affine: Bool) { self.affine = affine }
    public init(attributes a: OpAttributeReader) throws { self.init(affine: try a.bool("affine")) }

    public var attributes: OpAttributeList { [("affine", .bool(affine))] }
    public var latencyAttributes: OpAttributeList { [] }

    public func outputShape(inputs: [FeatureShape]) throws -> FeatureShape { try Self.single(inputs) }

    public func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost {
        OpCost(parameters: affine ? 2 * output.channels : 0, nasBench201Flops: 2 * output.elementCount)
    }

    public func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? {
        LayerHandle(BatchNormLayer(name: context.name, shape: context.outputShape, affine: affine))
    }
}

extension GraphOp where Self == BatchNorm {
    public static func batchNorm(affine: Bool) -> BatchNorm { BatchNorm(affine: affine) }
}

// MARK: - Engine layer

// MARK: - Batch normalisation

/// Batch norm with PyTorch semantics: eps 1e-5, momentum 0.1, biased variance for normalising,
/// unbiased variance in the running estimate.
final class BatchNormLayer: Layer {
    static let epsilon: Double = 1e-5
    static let momentum: Float = 0.1
    let shape: FeatureShape
    let weight: Parameter?
    let bias: Parameter?
    let runningMean: Parameter
    let runningVariance: Parameter
    private var savedMean: [Float]
    private var savedInverseStd: [Float]
    private var lastTraining = true

    init(name: String, shape: FeatureShape, affine: Bool) {
        self.shape = shape
        let c = shape.channels
        weight = affine ? Parameter(name: name + "/weight", shape: [c], trainable: true) : nil
        bias = affine ? Parameter(name: name + "/bias", shape: [c], trainable: true) : nil
        runningMean = Parameter(name: name + "/running_mean", shape: [c], trainable: false)
        runningVariance = Parameter(name: name + "/running_var", shape: [c], trainable: false)
        weight?.storage.buffer.update(repeating: 1)
        runningVariance.storage.buffer.update(repeating: 1)
        savedMean = [Float](repeating: 0, count: c)
        savedInverseStd = [Float](repeating: 1, count: c)
    }

    var parameters: [Parameter] { [weight, bias].compactMap { $0 } }
    var buffers: [Parameter] { [runningMean, runningVariance] }

    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        let m = batch * shape.height * shape.width
        let x = inputs[0].pointer
        let y = output.pointer
        lastTraining = training
        let channels = shape.channels
        savedMean.withUnsafeMutableBufferPointer { meanOut in
            savedInverseStd.withUnsafeMutableBufferPointer { invOut in
                parallelChunks(channels, work: channels * m) { range in
                    for c in range {
                        let xc = x + c * m
                        let yc = y + c * m
                        let mean: Float
                        let inv: Float
                        if training {
                            let mu = sumDouble(xc, m) / Double(m)
                            let muF = Float(mu)
                            let total = sumSquaredDeviations(xc, m, shift: muF)
                            let variance = total / Double(m)
                            mean = muF
                            inv = Float(1.0 / (variance + BatchNormLayer.epsilon).squareRoot())
                            let mom = BatchNormLayer.momentum
                            runningMean.pointer[c] = (1 - mom) * runningMean.pointer[c] + mom * muF
                            let unbiased = m > 1 ? variance * Double(m) / Double(m - 1) : variance
                            runningVariance.pointer[c] = (1 - mom) * runningVariance.pointer[c] + mom * Float(unbiased)
                        } else {
                            mean = runningMean.pointer[c]
                            inv = evaluationInverseStd(c)
                        }
                        meanOut[c] = mean
                        invOut[c] = inv
                        let (scale, shift) = affine(channel: c, mean: mean, inverseStd: inv)
                        for i in 0..<m { yc[i] = xc[i] * scale + shift }
                    }
                }
            }
        }
    }

    /// 1/√(running variance + ε) of channel `c` (evaluation mode).
    @inline(__always)
    private func evaluationInverseStd(_ c: Int) -> Float {
        Float(1.0 / (Double(runningVariance.pointer[c]) + BatchNormLayer.epsilon).squareRoot())
    }

    /// Channel `c`'s map `y = x·scale + shift` for the given statistics.
    @inline(__always)
    private func affine(channel c: Int, mean: Float, inverseStd inv: Float) -> (scale: Float, shift: Float) {
        let gamma = weight?.pointer[c] ?? 1
        let beta = bias?.pointer[c] ?? 0
        let scale = gamma * inv
        return (scale, beta - mean * scale)
    }

    /// Evaluation mode's per-channel map `y = x·scale[c] + shift[c]` (running statistics), for a
    /// convolution that applies it in its epilogue (`InferenceFusion`).
    func evaluationAffine() -> (scale: [Float], shift: [Float]) {
        var scales = [Float](repeating: 1, count: shape.channels), shifts = [Float](repeating: 0, count: shape.channels)
        for c in 0..<shape.channels {
            (scales[c], shifts[c]) = affine(channel: c, mean: runningMean.pointer[c], inverseStd: evaluationInverseStd(c))
        }
        return (scales, shifts)
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        let m = batch * shape.height * shape.width
        let x = inputs[0].pointer
        let dy = outputGradient.pointer
        let dx = inputGradients[0]?.pointer
        let acc = accumulate[0]
        let training = lastTraining
        let channels = shape.channels
        savedMean.withUnsafeBufferPointer { means in
            savedInverseStd.withUnsafeBufferPointer { invs in
                parallelChunks(channels, work: channels * m) { range in
                    for c in range {
                        let xc = x + c * m
                        let dyc = dy + c * m
                        let mean = means[c], inv = invs[c]
                        // Σdy and Σdy·x̂ (x̂ recomputed from the input).
                        let (sumDy, rawDot) = sumAndDot(dyc, xc, m, shift: mean)
                        let sumDyXhat = rawDot * Double(inv)
                        weight?.gradientPointer[c] = Float(sumDyXhat)
                        bias?.gradientPointer[c] = Float(sumDy)
                        guard let dx else { continue }
                        let gamma = weight?.pointer[c] ?? 1
                        let dxc = dx + c * m
                        if training {
                            let k = gamma * inv
                            let meanDy = Float(sumDy / Double(m))
                            let meanDyXhat = Float(sumDyXhat / Double(m))
                            if acc {
                                for j in 0..<m {
                                    let xhat = (xc[j] - mean) * inv
                                    dxc[j] += k * (dyc[j] - meanDy - xhat * meanDyXhat)
                                }
                            } else {
                                for j in 0..<m {
                                    let xhat = (xc[j] - mean) * inv
                                    dxc[j] = k * (dyc[j] - meanDy - xhat * meanDyXhat)
                                }
                            }
                        } else {
                            let k = gamma * inv
                            if acc { for j in 0..<m { dxc[j] += k * dyc[j] } } else { for j in 0..<m { dxc[j] = k * dyc[j] } }
                        }
                    }
                }
            }
        }
    }
}
