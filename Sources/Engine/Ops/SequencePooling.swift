import Dispatch
import NASCore

/// Which reduction a sequence pooling applies.
enum SequenceReduction { case max, mean }

/// What the sequence poolings share: C×1×L → C×1×1, no parameters, NAS-Bench-201 FLOPs 1 per
/// input element, one layer parameterised by the reduction.
protocol SequencePool: AttributeFreeOp {
    static var reduction: SequenceReduction { get }
}

extension SequencePool {
    public func outputShape(inputs: [FeatureShape]) throws -> FeatureShape {
        let x = try Self.single(inputs)
        guard x.height == 1 else { throw OpShapeError("\(Self.kind) needs a sequence shaped Cx1xL, got \(x)") }
        return FeatureShape(features: x.channels)
    }

    public func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost { OpCost(nasBench201Flops: inputs[0].elementCount) }

    public func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? {
        LayerHandle(SequencePoolLayer(reduction: Self.reduction, inShape: context.inputShapes[0]))
    }
}

/// The maximum over the valid positions of a sequence: C×1×L → C×1×1.
///
/// Valid positions are those before the sample's padding, as recorded by the `embedding` of the
/// network (rescaled when a strided convolution shortened the sequence; see
/// `ExecutionContext.validLength`); without an embedding every position is valid. The gradient
/// flows to the arg-max position only (padded positions get exactly 0).
///
/// Costs: no parameters; NAS-Bench-201 FLOPs 1 per input element.
public struct SequenceMaxPool: SequencePool, Hashable {
    public static let kind = "sequenceMaxPool"
    static let reduction = SequenceReduction.max
    public init() {}
}

/// The mean over the valid positions of a sequence: C×1×L → C×1×1 (masking as `SequenceMaxPool`;
/// padded positions get exactly 0 gradient).
///
/// Costs: no parameters; NAS-Bench-201 FLOPs 1 per input element.
public struct SequenceMeanPool: SequencePool, Hashable {
    public static let kind = "sequenceMeanPool"
    static let reduction = SequenceReduction.mean
    public init() {}
}

extension GraphOp where Self == SequenceMaxPool {
    public static var sequenceMaxPool: SequenceMaxPool { SequenceMaxPool() }
}

extension GraphOp where Self == SequenceMeanPool {
    public static var sequenceMeanPool: SequenceMeanPool { SequenceMeanPool() }
}

// MARK: - Engine layer

final class SequencePoolLayer: Layer {
    let reduction: SequenceReduction
    let channels: Int
    let length: Int
    /// Max: the arg-max position per (channel, sample); mean: unused.
    private var argmax = [Int32]()
    /// The valid length per sample of the last forward.
    private var valid = [Int]()

    init(reduction: SequenceReduction, inShape: FeatureShape) {
        self.reduction = reduction
        channels = inShape.channels
        length = inShape.width
    }

    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        let x = inputs[0].pointer, y = output.pointer
        let L = length
        valid = (0..<batch).map { context.validLength(sample: $0, length: L) }
        if reduction == .max, argmax.count != channels * batch { argmax = [Int32](repeating: 0, count: channels * batch) }
        let planes = channels * batch
        valid.withUnsafeBufferPointer { lengths in
            switch reduction {
            case .mean:
                parallelChunks(planes, work: planes * L) { range in
                    for plane in range {
                        let v = lengths[plane % batch]
                        y[plane] = vectorSum(x + plane * L, v) / Float(v)
                    }
                }
            case .max:
                argmax.withUnsafeMutableBufferPointer { arg in
                    parallelChunks(planes, work: planes * L) { range in
                        for plane in range {
                            let xp = x + plane * L
                            var best = xp[0], bestIndex = 0
                            for l in 1..<max(1, lengths[plane % batch]) {
                                let v = xp[l]
                                if v > best || v.isNaN { best = v; bestIndex = l }
                            }
                            y[plane] = best
                            arg[plane] = Int32(bestIndex)
                        }
                    }
                }
            }
        }
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        guard let dxBuffer = inputGradients[0] else { return }
        let dx = dxBuffer.pointer, dy = outputGradient.pointer
        let L = length, acc = accumulate[0]
        let planes = channels * batch
        if !acc { dx.update(repeating: 0, count: planes * L) }
        switch reduction {
        case .mean:
            for plane in 0..<planes {
                let v = valid[plane % batch]
                let g = dy[plane] / Float(v)
                let dxp = dx + plane * L
                for l in 0..<v { dxp[l] += g }
            }
        case .max:
            for plane in 0..<planes { dx[plane * L + Int(argmax[plane])] += dy[plane] }
        }
    }
}
