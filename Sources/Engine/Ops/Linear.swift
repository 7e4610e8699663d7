import CBLAS
import Dispatch
import NASCore

/// A fully connected layer on a flat (F×1×1) input: weight `[out, in]`.
///
/// Costs: parameters `in·out` (+ `out` with bias); MACs `in·out`; NB201 FLOPs `in·out`.
public struct Linear: GraphOp, Hashable {
    public static let kind = "linear"
    public var outFeatures: Int
    public var bias: Bool

    public init(outFeatures: Int, bias: Bool) {
        self.outFeatures = outFeatures
        self.bias = bias
    }

    public init(attributes a: OpAttributeReader) throws {
        self.init(outFeatures: try a.int("out"), bias: try a.bool("bias"))
    }

    public var attributes: OpAttributeList { [("out", .int(outFeatures)), ("bias", .bool(bias))] }

    public func outputShape(inputs: [FeatureShape]) throws -> FeatureShape {
        let x = try Self.single(inputs)
        guard x.height == 1, x.width == 1 else { throw OpShapeError("linear needs a flat input, got \(x)") }
        guard outFeatures > 0 else { throw OpShapeError("linear needs at least one output") }
        return FeatureShape(features: outFeatures)
    }

    public func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost {
        let macs = inputs[0].elementCount * outFeatures
        return OpCost(parameters: macs + (bias ? outFeatures : 0), multiplyAccumulates: macs, nasBench201Flops: macs)
    }

    public func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? {
        let linear = LinearLayer(name: context.name, inFeatures: context.inputShapes[0].elementCount,
                                 outFeatures: outFeatures, hasBias: bias)
        context.initializer.initialize(weight: linear.weight, bias: linear.bias, fanIn: linear.inFeatures,
                                       fanOut: outFeatures, rng: &context.rng)
        return LayerHandle(linear)
    }
}

extension GraphOp where Self == Linear {
    public static func linear(outFeatures: Int, bias: Bool) -> Linear { Linear(outFeatures: outFeatures, bias: bias) }
}

// MARK: - Engine layer

// MARK: - Linear

final class LinearLayer: Layer {
    let inFeatures: Int
    let outFeatures: Int
    let weight: Parameter
    let bias: Parameter?

    init(name: String, inFeatures: Int, outFeatures: Int, hasBias: Bool) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = Parameter(name: name + "/weight", shape: [outFeatures, inFeatures], trainable: true)
        bias = hasBias ? Parameter(name: name + "/bias", shape: [outFeatures], trainable: true) : nil
    }

    var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }

    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        let y = output.pointer
        let threads = ComputeContext.current.threads
        if batch < threads, outFeatures >= 2 * threads, outFeatures * inFeatures * batch >= GEMMSplit.minimumWork {
            // Fewer samples than threads: split the output features (each row is still one dot product).
            let w = weight.pointer, x = inputs[0].pointer, outFeatures = self.outFeatures, inFeatures = self.inFeatures
            parallelFor(iterations: threads) { t in
                let r0 = outFeatures * t / threads, r1 = outFeatures * (t + 1) / threads
                gemm(transposeA: false, transposeB: false, m: r1 - r0, n: batch, k: inFeatures,
                     a: w + r0 * inFeatures, lda: inFeatures, b: x, ldb: batch, beta: 0, c: y + r0 * batch, ldc: batch)
            }
        } else {
            gemm(transposeA: false, transposeB: false, m: outFeatures, n: batch, k: inFeatures,
                 a: weight.pointer, lda: inFeatures, b: inputs[0].pointer, ldb: batch, beta: 0, c: y, ldc: batch)
        }
        if let bias {
            for o in 0..<outFeatures {
                let b = bias.pointer[o]
                for n in 0..<batch { y[o * batch + n] += b }
            }
        }
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        let dy = outputGradient.pointer
        gemm(transposeA: false, transposeB: true, m: outFeatures, n: inFeatures, k: batch,
             a: dy, lda: batch, b: inputs[0].pointer, ldb: batch, beta: 0, c: weight.gradientPointer, ldc: inFeatures)
        if let dx = inputGradients[0] {
            gemm(transposeA: true, transposeB: false, m: inFeatures, n: batch, k: outFeatures,
                 a: weight.pointer, lda: inFeatures, b: dy, ldb: batch, beta: accumulate[0] ? 1 : 0, c: dx.pointer, ldc: batch)
        }
        if let bias {
            for o in 0..<outFeatures { bias.gradientPointer[o] = Float(sumDouble(dy + o * batch, batch)) }
        }
    }
}
