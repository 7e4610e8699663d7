import CBLAS
import Dispatch
import NASCore

/// A 1-D convolution over the positions of a sequence (PyTorch's `Conv1d` semantics):
/// C×1×L → O×1×L', weight `[O, C/groups, k]` (`<node>/weight`), bias `[O]` (`<node>/bias`).
///
/// The input must have height 1. Initialisation: the network's `WeightInitializer` with
/// fan-in `(C/groups)·k` (PyTorch's default: uniform(±1/√fan_in) for weight and bias).
///
/// Costs: parameters `O·(C/groups)·k` (+ `O` with bias); MACs `L'·O·(C/groups)·k`;
/// NAS-Bench-201 FLOPs: the MACs + 1 per output element with bias.
public struct Conv1d: ConvolutionOp, Hashable, Codable {
    public static let kind = "conv1d"
    public var outChannels: Int
    public var kernel: Int
    public var stride: Int
    public var padding: Int
    public var dilation: Int
    public var groups: Int
    public var bias: Bool

    public init(outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                dilation: Int = 1, groups: Int = 1, bias: Bool = true) {
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.bias = bias
    }

    public func outputShape(inputs: [FeatureShape]) throws -> FeatureShape {
        let x = try Self.single(inputs)
        guard outChannels > 0, kernel > 0, stride > 0, dilation > 0, groups > 0 else {
            throw OpShapeError("conv1d out, kernel, stride, dilation and groups must be positive")
        }
        guard padding >= 0 else { throw OpShapeError("conv1d padding must not be negative, got \(padding)") }
        guard x.height == 1 else { throw OpShapeError("conv1d needs a sequence shaped Cx1xL, got \(x)") }
        guard x.channels % groups == 0, outChannels % groups == 0 else {
            throw OpShapeError("groups \(groups) must divide in (\(x.channels)) and out (\(outChannels)) channels")
        }
        return FeatureShape(channels: outChannels, height: 1,
                            width: try Self.windowOutput(x.width, kernel: kernel, stride: stride, padding: padding, dilation: dilation))
    }

    public func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost {
        let perOutput = (inputs[0].channels / groups) * kernel
        let macs = output.elementCount * perOutput
        return OpCost(parameters: outChannels * perOutput + (bias ? outChannels : 0), multiplyAccumulates: macs,
                      nasBench201Flops: macs + (bias ? output.elementCount : 0))
    }

    public func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? {
        let conv = Conv1dLayer(name: context.name, attributes: self, inShape: context.inputShapes[0], outShape: context.outputShape)
        context.initializer.initialize(weight: conv.weight, bias: conv.bias, fanIn: conv.columnRows,
                                       fanOut: conv.outPerGroup * kernel, rng: &context.rng)
        return LayerHandle(conv)
    }
}

extension GraphOp where Self == Conv1d {
    /// A 1-D convolution; `bias` defaults to true as in PyTorch's `Conv1d`.
    public static func conv1d(outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                              dilation: Int = 1, groups: Int = 1, bias: Bool = true) -> Conv1d {
        Conv1d(outChannels: outChannels, kernel: kernel, stride: stride, padding: padding,
               dilation: dilation, groups: groups, bias: bias)
    }

    public static func conv1d(_ c: Conv1d) -> Conv1d { c }
}

// MARK: - Engine layer

/// Conv1d on CNHW buffers `[C][N][L]`: per group one GEMM `W[O/g × (C/g)·k] · columns[(C/g)·k × n·L']`
/// over chunks of samples (im2col over time; a pointwise conv uses the input directly), the
/// batch split into one contiguous sample range per thread; depthwise convs (one input channel
/// per group) use a direct kernel.
final class Conv1dLayer: Layer {
    let a: Conv1d
    let inLength: Int
    let outLength: Int
    let inChannels: Int
    let weight: Parameter
    let bias: Parameter?
    let inPerGroup: Int
    let outPerGroup: Int
    let columnRows: Int
    let pointwise: Bool
    let depthwise: Bool
    /// Stride-1 windows larger than one position: NASLab's direct kernels (``DirectConvolution``
    /// with a 1×k window over height-1 images) in every pass.
    let direct: DirectConvolution?

    init(name: String, attributes: Conv1d, inShape: FeatureShape, outShape: FeatureShape) {
        a = attributes
        inLength = inShape.width
        outLength = outShape.width
        inChannels = inShape.channels
        inPerGroup = inShape.channels / a.groups
        outPerGroup = a.outChannels / a.groups
        columnRows = inPerGroup * a.kernel
        pointwise = a.kernel == 1 && a.stride == 1 && a.padding == 0
        depthwise = inPerGroup == 1 && a.groups > 1
        direct = DirectConvolution.applies(kernelHeight: 1, kernelWidth: a.kernel, stride: a.stride, paddingHeight: 0,
                                           paddingWidth: a.padding, dilation: a.dilation, inPerGroup: inPerGroup, groups: a.groups)
            ? DirectConvolution(input: .init(channels: inPerGroup, height: 1, width: inShape.width, kernelHeight: 1,
                                             kernelWidth: a.kernel, dilation: a.dilation, paddingHeight: 0, paddingWidth: a.padding),
                                outChannels: outPerGroup, groups: a.groups)
            : nil
        weight = Parameter(name: name + "/weight", shape: [a.outChannels, inPerGroup, a.kernel], trainable: true)
        bias = a.bias ? Parameter(name: name + "/bias", shape: [a.outChannels], trainable: true) : nil
    }

    var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }

    /// Column block budget per GEMM call (floats), as for `Conv2dLayer`.
    static let columnBudget = 1 << 17

    private var chunk: Int { ConvolutionLayerChunking.images(budget: Conv1dLayer.columnBudget, perImage: max(1, columnRows * outLength)) }

    private func threadCount(batch: Int) -> Int {
        let work = columnRows * a.outChannels * outLength * batch
        return work < 1 << 18 ? 1 : min(ComputeContext.current.threads, batch)
    }

    /// Splits the batch into one contiguous sample range per thread (deterministic for a given thread count).
    private func forEachThread(_ threads: Int, batch: Int, _ body: (Int, Range<Int>) -> Void) {
        if threads == 1 {
            body(0, 0..<batch)
        } else {
            parallelFor(iterations: threads) { t in
                body(t, (batch * t / threads)..<(batch * (t + 1) / threads))
            }
        }
    }

    /// Receptive fields of samples `first ..< first+count` of one group (`x` at the group's first
    /// channel) → `columns[(C/g)·k, count·L']`, row `c·k + j`.
    private func im2col(_ x: UnsafePointer<Float>, batch: Int, first: Int, count: Int, _ columns: UnsafeMutablePointer<Float>) {
        let k = a.kernel, s = a.stride, L = inLength, Lo = outLength
        let width = count * Lo
        for row in 0..<columnRows {
            let c = row / k, j = row % k
            let offset = j * a.dilation - a.padding
            let (lo, hi) = validRange(Lo, size: L, offset: offset, stride: s)
            for n in 0..<count {
                let src = x + (c * batch + first + n) * L
                let dst = columns + row * width + n * Lo
                if lo >= hi { dst.update(repeating: 0, count: Lo); continue }
                if lo > 0 { dst.update(repeating: 0, count: lo) }
                if s == 1 {
                    (dst + lo).update(from: src + lo + offset, count: hi - lo)
                } else {
                    for o in lo..<hi { dst[o] = src[o * s + offset] }
                }
                if hi < Lo { (dst + hi).update(repeating: 0, count: Lo - hi) }
            }
        }
    }

    /// The adjoint of `im2col`: `dx += col2im(columns)`.
    private func col2imAdd(_ columns: UnsafePointer<Float>, batch: Int, first: Int, count: Int, _ dx: UnsafeMutablePointer<Float>) {
        let k = a.kernel, s = a.stride, L = inLength, Lo = outLength
        let width = count * Lo
        for row in 0..<columnRows {
            let c = row / k, j = row % k
            let offset = j * a.dilation - a.padding
            let (lo, hi) = validRange(Lo, size: L, offset: offset, stride: s)
            if lo >= hi { continue }
            for n in 0..<count {
                let dst = dx + (c * batch + first + n) * L
                let src = columns + row * width + n * Lo
                if s == 1 {
                    let d = dst + offset
                    for o in lo..<hi { d[o] += src[o] }
                } else {
                    for o in lo..<hi { dst[o * s + offset] += src[o] }
                }
            }
        }
    }

    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        let x = inputs[0].pointer, y = output.pointer
        if depthwise { depthwiseForward(x, y, batch: batch); return }
        let inPlane = batch * inLength, np = batch * outLength
        let available = ComputeContext.current.threads
        let splitSamples = batch < available && columnRows * a.outChannels * outLength * batch >= GEMMSplit.minimumWork
        if let direct {
            direct.forward(x, y, weights: weight.pointer, batch: batch, splitImages: splitSamples,
                           epilogue: ConvolutionEpilogue(bias: bias.map { UnsafePointer($0.pointer) }, fused: nil), context: context)
            return
        }
        if splitSamples {
            intraSampleForward(x, y, batch: batch, threads: available, context: context)
            return
        }
        let chunk = self.chunk
        let threads = threadCount(batch: batch)
        context.reserve(threads: threads, workspace: pointwise ? 0 : columnRows * min(chunk, batch) * outLength, partial: 0)
        let w = weight.pointer
        let withBias = ConvolutionEpilogue(bias: bias.map { UnsafePointer($0.pointer) }, fused: nil)
        forEachThread(threads, batch: batch) { t, samples in
            let ws = context.workspaces[t].pointer
            var first = samples.lowerBound
            while first < samples.upperBound {
                let count = min(chunk, samples.upperBound - first)
                let columns = count * outLength
                for g in 0..<a.groups {
                    let xg = x + g * inPerGroup * inPlane
                    let yg = y + g * outPerGroup * np + first * outLength
                    let wg = w + g * outPerGroup * columnRows
                    if pointwise {
                        gemm(transposeA: false, transposeB: false, m: outPerGroup, n: columns, k: columnRows,
                             a: wg, lda: columnRows, b: xg + first * inLength, ldb: inPlane, beta: 0, c: yg, ldc: np)
                    } else {
                        im2col(xg, batch: batch, first: first, count: count, ws)
                        gemm(transposeA: false, transposeB: false, m: outPerGroup, n: columns, k: columnRows,
                             a: wg, lda: columnRows, b: ws, ldb: columns, beta: 0, c: yg, ldc: np)
                    }
                    if let withBias {
                        for co in 0..<outPerGroup { withBias.apply(yg + co * np, channel: g * outPerGroup + co, count: columns) }
                    }
                }
                first += count
            }
        }
    }

    /// Forward for fewer samples than threads (as `Conv2dLayer`'s intra-image path): per sample
    /// and group, one im2col, then the GEMM split among the threads along its larger dimension
    /// (output channels or positions); each output element is still one dot product over the same K.
    private func intraSampleForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, threads: Int,
                                    context: ExecutionContext) {
        let inPlane = batch * inLength, np = batch * outLength
        context.reserve(threads: 1, workspace: pointwise ? 0 : columnRows * outLength, partial: 0)
        let ws = context.workspaces[0].pointer
        let w = weight.pointer
        let withBias = ConvolutionEpilogue(bias: bias.map { UnsafePointer($0.pointer) }, fused: nil)
        let rows = columnRows, positions = outLength
        let split = GEMMSplit(m: outPerGroup, n: positions, threads: threads)
        for n in 0..<batch {
            for g in 0..<a.groups {
                let xg = x + g * inPerGroup * inPlane
                let yg = y + g * outPerGroup * np + n * outLength
                let wg = w + g * outPerGroup * columnRows
                let b: UnsafePointer<Float>
                let ldb: Int
                if pointwise {
                    b = UnsafePointer(xg + n * inLength)
                    ldb = inPlane
                } else {
                    im2col(xg, batch: batch, first: n, count: 1, ws)
                    b = UnsafePointer(ws)
                    ldb = positions
                }
                parallelFor(iterations: split.parts) { t in
                    let (r, c) = split.part(t)
                    guard !r.isEmpty, !c.isEmpty else { return }
                    gemm(transposeA: false, transposeB: false, m: r.count, n: c.count, k: rows,
                         a: wg + r.lowerBound * rows, lda: rows, b: b + c.lowerBound, ldb: ldb, beta: 0,
                         c: yg + r.lowerBound * np + c.lowerBound, ldc: np)
                    if let withBias {
                        for co in r { withBias.apply(yg + co * np + c.lowerBound, channel: g * outPerGroup + co, count: c.count) }
                    }
                }
            }
        }
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        let x = inputs[0].pointer, dy = outputGradient.pointer
        let dx = inputGradients[0]?.pointer
        let accumulateInput = accumulate[0]
        let np = batch * outLength
        if let bias {
            for co in 0..<a.outChannels { bias.gradientPointer[co] = Float(sumDouble(dy + co * np, np)) }
        }
        if depthwise {
            depthwiseBackward(x, dy, dx, accumulate: accumulateInput, batch: batch)
            return
        }
        if let direct {
            direct.backward(x, dy, dx, accumulate: accumulateInput, weights: weight.pointer, weightGradient: weight.gradientPointer,
                            batch: batch, context: context)
            return
        }
        let inPlane = batch * inLength
        let chunk = self.chunk
        let threads = threadCount(batch: batch)
        let weightCount = weight.count
        context.reserve(threads: threads, workspace: pointwise ? 0 : columnRows * min(chunk, batch) * outLength, partial: weightCount)
        let w = weight.pointer
        forEachThread(threads, batch: batch) { t, samples in
            let ws = context.workspaces[t].pointer
            let dw = context.partials[t].pointer
            if samples.isEmpty { dw.update(repeating: 0, count: weightCount); return }
            if let dx, !accumulateInput, !pointwise {
                for c in 0..<inChannels {
                    (dx + (c * batch + samples.lowerBound) * inLength).update(repeating: 0, count: samples.count * inLength)
                }
            }
            var first = samples.lowerBound
            while first < samples.upperBound {
                let count = min(chunk, samples.upperBound - first)
                let columns = count * outLength
                let firstChunk = first == samples.lowerBound
                for g in 0..<a.groups {
                    let xg = x + g * inPerGroup * inPlane
                    let dyg = dy + g * outPerGroup * np + first * outLength
                    let wg = w + g * outPerGroup * columnRows
                    let dwg = dw + g * outPerGroup * columnRows
                    let col: UnsafePointer<Float>
                    let ldCol: Int
                    if pointwise {
                        col = UnsafePointer(xg + first * inLength)
                        ldCol = inPlane
                    } else {
                        im2col(xg, batch: batch, first: first, count: count, ws)
                        col = UnsafePointer(ws)
                        ldCol = columns
                    }
                    gemm(transposeA: false, transposeB: true, m: outPerGroup, n: columnRows, k: columns,
                         a: dyg, lda: np, b: col, ldb: ldCol, beta: firstChunk ? 0 : 1, c: dwg, ldc: columnRows)
                    guard let dx else { continue }
                    let dxg = dx + g * inPerGroup * inPlane
                    if pointwise {
                        gemm(transposeA: true, transposeB: false, m: columnRows, n: columns, k: outPerGroup,
                             a: wg, lda: columnRows, b: dyg, ldb: np, beta: accumulateInput ? 1 : 0,
                             c: dxg + first * inLength, ldc: inPlane)
                    } else {
                        gemm(transposeA: true, transposeB: false, m: columnRows, n: columns, k: outPerGroup,
                             a: wg, lda: columnRows, b: dyg, ldb: np, beta: 0, c: ws, ldc: columns)
                        col2imAdd(ws, batch: batch, first: first, count: count, dxg)
                    }
                }
                first += count
            }
        }
        // Per-thread partial weight gradients, summed in a fixed order.
        context.sumPartials(threads: threads, count: weightCount, into: weight.gradientPointer)
    }

    // MARK: Depthwise (one input channel per group)

    private func depthwiseForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int) {
        let L = inLength, Lo = outLength, k = a.kernel, s = a.stride, p = a.padding, d = a.dilation
        let planes = a.outChannels * batch
        let weights = weight.pointer, b = bias?.pointer
        let outPerGroup = self.outPerGroup
        parallelChunks(planes, work: planes * Lo * k) { range in
            for plane in range {
                let co = plane / batch, n = plane % batch
                let xp = x + ((co / outPerGroup) * batch + n) * L
                let yp = y + plane * Lo
                yp.update(repeating: b?[co] ?? 0, count: Lo)
                for j in 0..<k {
                    let wv = weights[co * k + j]
                    let offset = j * d - p
                    let (lo, hi) = validRange(Lo, size: L, offset: offset, stride: s)
                    if lo >= hi { continue }
                    if s == 1 {
                        let line = xp + offset
                        for o in lo..<hi { yp[o] += wv * line[o] }
                    } else {
                        for o in lo..<hi { yp[o] += wv * xp[o * s + offset] }
                    }
                }
            }
        }
    }

    private func depthwiseBackward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>?,
                                   accumulate: Bool, batch: Int) {
        let L = inLength, Lo = outLength, k = a.kernel, s = a.stride, p = a.padding, d = a.dilation
        let weights = weight.pointer, dW = weight.gradientPointer
        let outPerGroup = self.outPerGroup
        // Each thread owns whole groups (input channel g and its output channels).
        parallelChunks(inChannels, work: a.outChannels * batch * Lo * k) { range in
            for g in range {
                if let dx, !accumulate { (dx + g * batch * L).update(repeating: 0, count: batch * L) }
                for co in (g * outPerGroup)..<((g + 1) * outPerGroup) {
                    for j in 0..<k {
                        let wv = weights[co * k + j]
                        let offset = j * d - p
                        let (lo, hi) = validRange(Lo, size: L, offset: offset, stride: s)
                        var total = 0.0
                        if lo < hi {
                            for n in 0..<batch {
                                let dyp = dy + (co * batch + n) * Lo
                                let xp = x + (g * batch + n) * L
                                var partial: Float = 0
                                if s == 1 {
                                    let line = xp + offset
                                    for o in lo..<hi { partial += dyp[o] * line[o] }
                                    if let dx {
                                        let dl = dx + (g * batch + n) * L + offset
                                        for o in lo..<hi { dl[o] += wv * dyp[o] }
                                    }
                                } else {
                                    for o in lo..<hi { partial += dyp[o] * xp[o * s + offset] }
                                    if let dx {
                                        let dl = dx + (g * batch + n) * L
                                        for o in lo..<hi { dl[o * s + offset] += wv * dyp[o] }
                                    }
                                }
                                total += Double(partial)
                            }
                        }
                        dW[co * k + j] = Float(total)
                    }
                }
            }
        }
    }
}
