import Dispatch
import NASCore

/// How `upsample` computes a new pixel.
public enum UpsampleMode: String, Hashable, Codable, Sendable, CaseIterable {
    /// The input pixel `⌊i / s⌋` (PyTorch's `mode='nearest'`; ONNX `Resize` with
    /// `coordinate_transformation_mode='asymmetric'`, `nearest_mode='floor'`).
    case nearest
    /// Bilinear interpolation at the source coordinate `max(0, (i + ½)/s − ½)`, the right and
    /// bottom neighbours clamped to the border (PyTorch's `mode='bilinear', align_corners=False`;
    /// ONNX `Resize` with `mode='linear'`, `coordinate_transformation_mode='half_pixel'`).
    case bilinear
}

/// Upsampling by an integer factor `scale` in height and width: C×H×W → C×(H·s)×(W·s), exactly
/// PyTorch's `F.interpolate(x, scale_factor=s, mode='nearest')` or
/// `F.interpolate(x, scale_factor=s, mode='bilinear', align_corners=False)`.
///
/// Attributes: `scale` (an integer ≥ 1, the same for both axes) and `mode` (`nearest` or
/// `bilinear`). The gradient of bilinear upsampling scatters each output gradient to the (up to
/// four) input pixels with the forward pass's weights; nearest sums each s×s block.
///
/// Costs: no parameters, no MACs and no NAS-Bench-201 FLOPs (`OpCost.free`): it is data movement
/// plus a few element-wise multiply-adds per output element, which none of NASLab's conventions
/// count (like pooling's MACs, it is not a matrix product).
public struct Upsample: GraphOp, Hashable, Codable {
    public static let kind = "upsample"
    public var scale: Int
    public var mode: UpsampleMode

    public init(scale: Int, mode: UpsampleMode = .nearest) {
        self.scale = scale
        self.mode = mode
    }

    public init(attributes a: OpAttributeReader) throws {
        let name = try a.string("mode")
        guard let mode = UpsampleMode(rawValue: name) else {
            throw NetworkGraphError.invalidAttributes(kind: Self.kind, message: "unknown mode '\(name)' (nearest or bilinear)")
        }
        self.init(scale: try a.int("scale"), mode: mode)
    }

    public var attributes: OpAttributeList { [("scale", .int(scale)), ("mode", .string(mode.rawValue))] }

    public func outputShape(inputs: [FeatureShape]) throws -> FeatureShape {
        let x = try Self.single(inputs)
        guard scale >= 1 else { throw OpShapeError("upsample scale must be at least 1, got \(scale)") }
        return FeatureShape(channels: x.channels, height: x.height * scale, width: x.width * scale)
    }

    public func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost { .free }

    public func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? {
        LayerHandle(UpsampleLayer(scale: scale, mode: mode, inShape: context.inputShapes[0], outShape: context.outputShape))
    }
}

extension GraphOp where Self == Upsample {
    public static func upsample(scale: Int, mode: UpsampleMode = .nearest) -> Upsample { Upsample(scale: scale, mode: mode) }
}

// MARK: - Engine layer

/// Upsampling of each CNHW plane on its own: the planes (channels × batch) are split into one
/// contiguous range per thread, so results do not depend on the thread count.
final class UpsampleLayer: Layer {
    let scale: Int
    let mode: UpsampleMode
    let inShape: FeatureShape
    let outShape: FeatureShape
    /// Bilinear: per output row (column) the two source rows (columns) and their weights.
    private let rows: BilinearAxis
    private let columns: BilinearAxis

    init(scale: Int, mode: UpsampleMode, inShape: FeatureShape, outShape: FeatureShape) {
        self.scale = scale
        self.mode = mode
        self.inShape = inShape
        self.outShape = outShape
        rows = BilinearAxis(size: inShape.height, scale: scale)
        columns = BilinearAxis(size: inShape.width, scale: scale)
    }

    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        let planes = inShape.channels * batch
        let h = inShape.height, w = inShape.width, oh = outShape.height, ow = outShape.width, s = scale
        let x = inputs[0].pointer, y = output.pointer
        switch mode {
        case .nearest:
            parallelChunks(planes, work: planes * oh * ow) { range in
                for plane in range {
                    let xp = x + plane * h * w
                    let yp = y + plane * oh * ow
                    for i in 0..<h {
                        let line = xp + i * w
                        let first = yp + i * s * ow
                        for j in 0..<w {
                            let v = line[j]
                            for b in 0..<s { first[j * s + b] = v }
                        }
                        for a in 1..<s { (first + a * ow).update(from: first, count: ow) }
                    }
                }
            }
        case .bilinear:
            let rows = self.rows, columns = self.columns
            parallelChunks(planes, work: planes * oh * ow * 4) { range in
                for plane in range {
                    let xp = x + plane * h * w
                    let yp = y + plane * oh * ow
                    for i in 0..<oh {
                        let r0 = xp + rows.low[i] * w, r1 = xp + rows.high[i] * w
                        let a0 = rows.lowWeight[i], a1 = rows.highWeight[i]
                        let out = yp + i * ow
                        for j in 0..<ow {
                            let c0 = columns.low[j], c1 = columns.high[j]
                            let b0 = columns.lowWeight[j], b1 = columns.highWeight[j]
                            out[j] = a0 * (b0 * r0[c0] + b1 * r0[c1]) + a1 * (b0 * r1[c0] + b1 * r1[c1])
                        }
                    }
                }
            }
        }
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        guard let dxBuffer = inputGradients[0] else { return }
        let planes = inShape.channels * batch
        let h = inShape.height, w = inShape.width, oh = outShape.height, ow = outShape.width, s = scale
        let dx = dxBuffer.pointer, dy = outputGradient.pointer
        let acc = accumulate[0]
        switch mode {
        case .nearest:
            parallelChunks(planes, work: planes * oh * ow) { range in
                for plane in range {
                    let dxp = dx + plane * h * w
                    let dyp = dy + plane * oh * ow
                    for i in 0..<h {
                        for j in 0..<w {
                            var sum: Float = 0
                            for a in 0..<s {
                                let line = dyp + (i * s + a) * ow + j * s
                                for b in 0..<s { sum += line[b] }
                            }
                            if acc { dxp[i * w + j] += sum } else { dxp[i * w + j] = sum }
                        }
                    }
                }
            }
        case .bilinear:
            let rows = self.rows, columns = self.columns
            parallelChunks(planes, work: planes * oh * ow * 4) { range in
                for plane in range {
                    let dxp = dx + plane * h * w
                    let dyp = dy + plane * oh * ow
                    if !acc { dxp.update(repeating: 0, count: h * w) }
                    for i in 0..<oh {
                        let r0 = dxp + rows.low[i] * w, r1 = dxp + rows.high[i] * w
                        let a0 = rows.lowWeight[i], a1 = rows.highWeight[i]
                        let g = dyp + i * ow
                        for j in 0..<ow {
                            let c0 = columns.low[j], c1 = columns.high[j]
                            let b0 = columns.lowWeight[j], b1 = columns.highWeight[j]
                            let v = g[j]
                            r0[c0] += a0 * b0 * v
                            r0[c1] += a0 * b1 * v
                            r1[c0] += a1 * b0 * v
                            r1[c1] += a1 * b1 * v
                        }
                    }
                }
            }
        }
    }
}

/// The source indices and weights of bilinear upsampling along one axis, as PyTorch computes
/// them for `align_corners=False` with a given scale factor: source `max(0, (i + ½)·(1/s) − ½)`
/// (in float), low index its integer part, high index the next one clamped to the border.
struct BilinearAxis: Sendable {
    var low: [Int]
    var high: [Int]
    var lowWeight: [Float]
    var highWeight: [Float]

    init(size: Int, scale: Int) {
        let count = size * scale
        let inverse = Float(1.0 / Double(scale))
        low = []; high = []; lowWeight = []; highWeight = []
        low.reserveCapacity(count); high.reserveCapacity(count)
        lowWeight.reserveCapacity(count); highWeight.reserveCapacity(count)
        for i in 0..<count {
            let source = max(0, inverse * (Float(i) + 0.5) - 0.5)
            let i0 = min(Int(source), size - 1)
            let fraction = source - Float(i0)
            low.append(i0)
            high.append(i0 < size - 1 ? i0 + 1 : i0)
            lowWeight.append(1 - fraction)
            highWeight.append(fraction)
        }
        (self.low, self.high, self.lowWeight, self.highWeight) = (low, high, lowWeight, highWeight)
    }
}
