import CBLAS
import Dispatch
import NASCore

/// A 2-D transposed convolution (PyTorch's `ConvTranspose2d` semantics, `groups = 1`,
/// `dilation = 1` only): C×H×W → O×H'×W' with `H' = (H − 1)·stride − 2·padding + kernel +
/// output_padding` (the same for W'), weight `[C, O, k, k]` as PyTorch stores it
/// (`<node>/weight`), bias `[O]` (`<node>/bias`).
///
/// Attributes: `out`, `kernel`, `stride`, `padding`, `output_padding` (smaller than the stride,
/// as PyTorch requires) and `bias`. It is the adjoint (gradient) of a `Conv2d` with the same
/// kernel, stride and padding mapping O×H'×W' to C×H×W.
///
/// Initialisation: the network's `WeightInitializer` with PyTorch's fan-in for this weight,
/// `weight.size(1)·k² = O·k²` (fan-out `C·k²`); the same convention as `Conv2d`, whose fan-in is
/// its weight's dimension 1 times k² (PyTorch's default: uniform(±1/√fan_in) for weight and bias).
///
/// Costs: parameters `C·O·k²` (+ `O` with bias); MACs `C·O·k²·H·W` (every input pixel meets
/// every kernel tap once, with the input's H×W; taps that fall into the cropped padding are
/// counted too, as PyTorch's profilers count them); NAS-Bench-201 FLOPs: the MACs + 1 per output
/// element with bias.
public struct ConvTranspose2d: GraphOp, Hashable, Codable {
    public static let kind = "convTranspose2d"
    public var outChannels: Int
    public var kernel: Int
    public var stride: Int
    public var padding: Int
    public var outputPadding: Int
    public var bias: Bool

    public init(outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, outputPadding: Int = 0, bias: Bool = false) {
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.outputPadding = outputPadding
        self.bias = bias
    }

    public init(attributes a: OpAttributeReader) throws {
        self.init(outChannels: try a.int("out"), kernel: try a.int("kernel"), stride: try a.int("stride"),
                  padding: try a.int("padding"), outputPadding: try a.int("output_padding"), bias: try a.bool("bias"))
    }

    public var attributes: OpAttributeList {
        [("out", .int(outChannels)), ("kernel", .int(kernel)), ("stride", .int(stride)), ("padding", .int(padding)),
         ("output_padding", .int(outputPadding)), ("bias", .bool(bias))]
    }

    /// The output size along one axis of input size `size`.
    public func outputSize(_ size: Int) -> Int { (size - 1) * stride - 2 * padding + kernel + outputPadding }

    public func outputShape(inputs: [FeatureShape]) throws -> FeatureShape {
        let x = try Self.single(inputs)
        guard outChannels > 0, kernel > 0, stride > 0 else {
            throw OpShapeError("convTranspose2d out, kernel and stride must be positive")
        }
        guard padding >= 0, outputPadding >= 0 else { throw OpShapeError("convTranspose2d padding and output_padding must not be negative") }
        guard outputPadding < stride else {
            throw OpShapeError("convTranspose2d output_padding \(outputPadding) must be smaller than the stride \(stride)")
        }
        let h = outputSize(x.height), w = outputSize(x.width)
        guard h >= 1, w >= 1 else {
            throw OpShapeError("convTranspose2d kernel \(kernel), stride \(stride), padding \(padding) leave no output for input \(x)")
        }
        return FeatureShape(channels: outChannels, height: h, width: w)
    }

    public func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost {
        let x = inputs[0]
        let weights = x.channels * outChannels * kernel * kernel
        let macs = weights * x.height * x.width
        return OpCost(parameters: weights + (bias ? outChannels : 0), multiplyAccumulates: macs,
                      nasBench201Flops: macs + (bias ? output.elementCount : 0))
    }

    public func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? {
        let layer = ConvTranspose2dLayer(name: context.name, attributes: self, inShape: context.inputShapes[0], outShape: context.outputShape)
        context.initializer.initialize(weight: layer.weight, bias: layer.bias, fanIn: outChannels * kernel * kernel,
                                       fanOut: context.inputShapes[0].channels * kernel * kernel, rng: &context.rng)
        return LayerHandle(layer)
    }
}

extension GraphOp where Self == ConvTranspose2d {
    public static func convTranspose2d(outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                                       outputPadding: Int = 0, bias: Bool = false) -> ConvTranspose2d {
        ConvTranspose2d(outChannels: outChannels, kernel: kernel, stride: stride, padding: padding,
                        outputPadding: outputPadding, bias: bias)
    }

    public static func convTranspose2d(_ c: ConvTranspose2d) -> ConvTranspose2d { c }
}

// MARK: - Engine layer

/// ConvTranspose2d on CNHW buffers. With `W` viewed as `[C, O·k²]` and the geometry of the
/// adjoint convolution (O channels of H'×W' → H×W):
/// - forward: `columns = Wᵀ · x` (GEMM, `[O·k², n·H·W]`), then `y = col2im(columns)` (+ bias);
/// - backward: `columns = im2col(dy)`, `dx = W · columns` (a convolution), `dW = x · columnsᵀ`.
/// The batch is split into one contiguous image range per thread (chunks of images keep the
/// columns near `Conv2dLayer.columnBudget` floats); per-thread weight gradients are summed in a
/// fixed order, so results are deterministic for a given thread count.
final class ConvTranspose2dLayer: Layer {
    let a: ConvTranspose2d
    let inShape: FeatureShape
    let outShape: FeatureShape
    let weight: Parameter
    let bias: Parameter?
    /// Rows of the column matrix: O·k².
    let columnRows: Int

    init(name: String, attributes: ConvTranspose2d, inShape: FeatureShape, outShape: FeatureShape) {
        a = attributes
        self.inShape = inShape
        self.outShape = outShape
        columnRows = a.outChannels * a.kernel * a.kernel
        weight = Parameter(name: name + "/weight", shape: [inShape.channels, a.outChannels, a.kernel, a.kernel], trainable: true)
        bias = a.bias ? Parameter(name: name + "/bias", shape: [a.outChannels], trainable: true) : nil
    }

    var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }

    /// The adjoint convolution: its input is this layer's output, its output this layer's input.
    private func geometry(batch: Int) -> ConvolutionGeometry {
        ConvolutionGeometry(channels: a.outChannels, batch: batch, height: outShape.height, width: outShape.width,
                            kernel: a.kernel, stride: a.stride, padding: a.padding, dilation: 1,
                            outHeight: inShape.height, outWidth: inShape.width)
    }

    private var chunkImages: Int {
        ConvolutionLayerChunking.images(budget: Conv2dLayer.columnBudget, perImage: max(1, columnRows * inShape.height * inShape.width))
    }

    /// Splits the batch into one contiguous image range per thread and calls
    /// `body(thread, imageRange, chunkImages)`; returns the number of threads used.
    private func forEachThread(batch: Int, _ body: (Int, Range<Int>, Int) -> Void) -> Int {
        let chunk = chunkImages
        let work = columnRows * inShape.elementCount * batch
        let threads = work < 1 << 18 ? 1 : min(ComputeContext.current.threads, batch)
        if threads == 1 {
            body(0, 0..<batch, chunk)
        } else {
            parallelFor(iterations: threads) { t in
                body(t, (batch * t / threads)..<(batch * (t + 1) / threads), chunk)
            }
        }
        return threads
    }

    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        let x = inputs[0].pointer, y = output.pointer
        let inPlane = inShape.height * inShape.width, outPlane = outShape.height * outShape.width
        let ldx = batch * inPlane, ldy = batch * outPlane
        let inChannels = inShape.channels, outChannels = a.outChannels, rows = columnRows
        let geo = geometry(batch: batch)
        context.reserve(threads: min(ComputeContext.current.threads, batch), workspace: rows * chunkImages * inPlane, partial: 0)
        let w = weight.pointer
        let b = bias?.pointer
        _ = forEachThread(batch: batch) { t, images, chunk in
            let ws = context.workspaces[t].pointer
            for co in 0..<outChannels {
                (y + co * ldy + images.lowerBound * outPlane).update(repeating: b?[co] ?? 0, count: images.count * outPlane)
            }
            var first = images.lowerBound
            while first < images.upperBound {
                let count = min(chunk, images.upperBound - first)
                let columns = count * inPlane
                gemm(transposeA: true, transposeB: false, m: rows, n: columns, k: inChannels,
                     a: w, lda: rows, b: x + first * inPlane, ldb: ldx, beta: 0, c: ws, ldc: columns)
                col2imAdd(ws, geo, first: first, count: count, y)
                first += count
            }
        }
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        let x = inputs[0].pointer, dy = outputGradient.pointer
        let inPlane = inShape.height * inShape.width, outPlane = outShape.height * outShape.width
        let ldx = batch * inPlane, ldy = batch * outPlane
        let inChannels = inShape.channels, rows = columnRows
        let geo = geometry(batch: batch)
        let weightCount = weight.count
        context.reserve(threads: min(ComputeContext.current.threads, batch), workspace: rows * chunkImages * inPlane, partial: weightCount)
        let w = weight.pointer
        let dx = inputGradients[0]?.pointer
        let accumulateInput = accumulate[0]
        let threads = forEachThread(batch: batch) { t, images, chunk in
            let ws = context.workspaces[t].pointer
            let dw = context.partials[t].pointer
            var first = images.lowerBound
            while first < images.upperBound {
                let count = min(chunk, images.upperBound - first)
                let columns = count * inPlane
                im2col(dy, geo, first: first, count: count, ws)
                // dW[C, O·k²] (+)= x[C, columns] · columnsᵀ
                gemm(transposeA: false, transposeB: true, m: inChannels, n: rows, k: columns,
                     a: x + first * inPlane, lda: ldx, b: ws, ldb: columns,
                     beta: first == images.lowerBound ? 0 : 1, c: dw, ldc: rows)
                if let dx {
                    // dx[C, columns] = W[C, O·k²] · columns
                    gemm(transposeA: false, transposeB: false, m: inChannels, n: columns, k: rows,
                         a: w, lda: rows, b: ws, ldb: columns, beta: accumulateInput ? 1 : 0,
                         c: dx + first * inPlane, ldc: ldx)
                }
                first += count
            }
        }
        // Sum the per-thread partial weight gradients in a fixed order.
        context.sumPartials(threads: threads, count: weightCount, into: weight.gradientPointer)
        if let bias {
            for co in 0..<a.outChannels {
                bias.gradientPointer[co] = Float(sumDouble(dy + co * ldy, ldy))
            }
        }
    }
}
