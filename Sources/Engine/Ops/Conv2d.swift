import CBLAS
import Dispatch
import NASCore

/// A 2-D convolution (PyTorch's `Conv2d` semantics): weight `[out, in/groups, k, k]`.
///
/// Costs: parameters `out·(in/groups)·k²` (+ `out` with bias); MACs `out·H_out·W_out·(in/groups)·k²`;
/// NAS-Bench-201 FLOPs: the MACs + 1 per output element with bias.
public struct Conv2d: ConvolutionOp, Hashable, Codable {
    public static let kind = "conv2d"
    public var outChannels: Int
    public var kernel: Int
    public var stride: Int
    public var padding: Int
    public var dilation: Int
    public var groups: Int
    public var bias: Bool

    public init(outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                dilation: Int = 1, groups: Int = 1, bias: Bool = false) {
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
        guard outChannels > 0, kernel > 0, stride > 0, padding >= 0, dilation > 0, groups > 0 else {
            throw OpShapeError("conv attributes must be positive")
        }
        guard x.channels % groups == 0, outChannels % groups == 0 else {
            throw OpShapeError("groups \(groups) must divide in (\(x.channels)) and out (\(outChannels)) channels")
        }
        return FeatureShape(
            channels: outChannels,
            height: try Self.windowOutput(x.height, kernel: kernel, stride: stride, padding: padding, dilation: dilation),
            width: try Self.windowOutput(x.width, kernel: kernel, stride: stride, padding: padding, dilation: dilation))
    }

    public func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost {
        let perOutput = (inputs[0].channels / groups) * kernel * kernel
        let macs = output.elementCount * perOutput
        return OpCost(parameters: outChannels * perOutput + (bias ? outChannels : 0), multiplyAccumulates: macs,
                      nasBench201Flops: macs + (bias ? output.elementCount : 0))
    }

    public func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? {
        let conv = Conv2dLayer(name: context.name, attributes: self, inShape: context.inputShapes[0], outShape: context.outputShape)
        context.initializer.initialize(weight: conv.weight, bias: conv.bias, fanIn: conv.fanIn, fanOut: conv.fanOut, rng: &context.rng)
        return LayerHandle(conv)
    }
}

/// The attributes every convolution shares (PyTorch's names: out channels, kernel, stride,
/// padding, dilation, groups, bias) and their one spelling in graph JSON and latency keys.
public protocol ConvolutionOp: GraphOp {
    var outChannels: Int { get }
    var kernel: Int { get }
    var stride: Int { get }
    var padding: Int { get }
    var dilation: Int { get }
    var groups: Int { get }
    var bias: Bool { get }
    init(outChannels: Int, kernel: Int, stride: Int, padding: Int, dilation: Int, groups: Int, bias: Bool)
}

extension ConvolutionOp {
    public init(attributes a: OpAttributeReader) throws {
        self.init(outChannels: try a.int("out"), kernel: try a.int("kernel"), stride: try a.int("stride"),
                  padding: try a.int("padding"), dilation: try a.int("dilation"), groups: try a.int("groups"),
                  bias: try a.bool("bias"))
    }

    public var attributes: OpAttributeList {
        [("out", .int(outChannels)), ("kernel", .int(kernel)), ("stride", .int(stride)), ("padding", .int(padding)),
         ("dilation", .int(dilation)), ("groups", .int(groups)), ("bias", .bool(bias))]
    }
}

/// The attributes of a 2-D convolution are the op itself.
public typealias Conv2dAttributes = Conv2d

extension GraphOp where Self == Conv2d {
    public static func conv2d(_ c: Conv2d) -> Conv2d { c }
}

// MARK: - Engine layer

// MARK: - Convolution

final class Conv2dLayer: Layer {
    let a: Conv2dAttributes
    let inShape: FeatureShape
    let outShape: FeatureShape
    let weight: Parameter
    let bias: Parameter?
    let inPerGroup: Int
    let outPerGroup: Int
    let columnRows: Int
    let pointwise: Bool
    /// One input channel per group (depthwise, any channel multiplier): a direct kernel instead
    /// of many one-row GEMMs.
    let depthwise: Bool
    /// Stride-1 windows larger than one pixel: NASLab's direct kernels (``DirectConvolution``, per
    /// group) instead of im2col + GEMM, in every pass.
    let direct: DirectConvolution?

    init(name: String, attributes: Conv2dAttributes, inShape: FeatureShape, outShape: FeatureShape) {
        a = attributes
        self.inShape = inShape
        self.outShape = outShape
        inPerGroup = inShape.channels / a.groups
        outPerGroup = a.outChannels / a.groups
        columnRows = inPerGroup * a.kernel * a.kernel
        pointwise = a.kernel == 1 && a.stride == 1 && a.padding == 0
        depthwise = inPerGroup == 1 && a.groups > 1
        direct = DirectConvolution.applies(kernelHeight: a.kernel, kernelWidth: a.kernel, stride: a.stride,
                                           paddingHeight: a.padding, paddingWidth: a.padding, dilation: a.dilation,
                                           inPerGroup: inPerGroup, groups: a.groups)
            ? DirectConvolution(input: .init(channels: inPerGroup, height: inShape.height, width: inShape.width,
                                             kernelHeight: a.kernel, kernelWidth: a.kernel, dilation: a.dilation,
                                             paddingHeight: a.padding, paddingWidth: a.padding),
                                outChannels: outPerGroup, groups: a.groups)
            : nil
        weight = Parameter(name: name + "/weight", shape: [a.outChannels, inPerGroup, a.kernel, a.kernel], trainable: true)
        bias = a.bias ? Parameter(name: name + "/bias", shape: [a.outChannels], trainable: true) : nil
    }

    var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }
    var fanIn: Int { columnRows }
    var fanOut: Int { outPerGroup * a.kernel * a.kernel }

    /// Images per GEMM call: the column block of one call stays around `columnBudget` floats
    /// (512 KiB, L2-resident), so im2col, GEMM and col2im of a chunk share the cache. Measured on
    /// the benchmark CNN: 2^16–2^19 similar (2^17 best by a small margin), 2^21 and more ≈ 25 % slower.
    static let columnBudget = 1 << 17

    private func geometry(batch: Int) -> ConvolutionGeometry {
        ConvolutionGeometry(channels: inPerGroup, batch: batch, height: inShape.height, width: inShape.width,
                            kernel: a.kernel, stride: a.stride, padding: a.padding, dilation: a.dilation,
                            outHeight: outShape.height, outWidth: outShape.width)
    }

    /// Splits the batch into one contiguous image range per thread and calls
    /// `body(thread, imageRange, chunkImages)`; deterministic for a given thread count.
    private func forEachThread(batch: Int, _ body: (Int, Range<Int>, Int) -> Void) -> Int {
        let outPlane = outShape.height * outShape.width
        let perImage = max(1, (pointwise ? 0 : columnRows) * outPlane)
        let chunk = max(1, ConvolutionLayerChunking.images(budget: Conv2dLayer.columnBudget, perImage: perImage))
        let work = columnRows * outPerGroup * a.groups * outPlane * batch
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

    // MARK: Depthwise

    private func depthwiseForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                                  epilogue: ConvolutionEpilogue?) {
        let h = inShape.height, w = inShape.width, oh = outShape.height, ow = outShape.width
        let k = a.kernel, s = a.stride, p = a.padding, d = a.dilation
        let planes = a.outChannels * batch
        let weights = weight.pointer
        let b = bias?.pointer
        let outPerGroup = self.outPerGroup
        parallelChunks(planes, work: planes * oh * ow * k * k) { range in
            for plane in range {
                let co = plane / batch, n = plane % batch
                let xp = x + ((co / outPerGroup) * batch + n) * h * w
                let yp = y + plane * oh * ow
                yp.update(repeating: b?[co] ?? 0, count: oh * ow)
                for ki in 0..<k {
                    for kj in 0..<k {
                        let wv = weights[(co * k + ki) * k + kj]
                        let hOffset = ki * d - p, wOffset = kj * d - p
                        let (w0, w1) = validRange(ow, size: w, offset: wOffset, stride: s)
                        if w0 >= w1 { continue }
                        for ho in 0..<oh {
                            let hi = ho * s + hOffset
                            if hi < 0 || hi >= h { continue }
                            let line = xp + hi * w
                            let out = yp + ho * ow
                            if s == 1 {
                                let l = line + wOffset
                                for wo in w0..<w1 { out[wo] += wv * l[wo] }
                            } else {
                                for wo in w0..<w1 { out[wo] += wv * line[wo * s + wOffset] }
                            }
                        }
                    }
                }
                epilogue?.apply(yp, channel: co, count: oh * ow)
            }
        }
    }

    private func depthwiseBackward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>?,
                                   accumulate: Bool, batch: Int) {
        let h = inShape.height, w = inShape.width, oh = outShape.height, ow = outShape.width
        let k = a.kernel, s = a.stride, p = a.padding, d = a.dilation
        let weights = weight.pointer, dW = weight.gradientPointer
        let outPerGroup = self.outPerGroup
        let channels = inShape.channels
        parallelChunks(channels, work: a.outChannels * batch * oh * ow * k * k) { range in
            for g in range {
                if let dx, !accumulate { (dx + g * batch * h * w).update(repeating: 0, count: batch * h * w) }
                for co in (g * outPerGroup)..<((g + 1) * outPerGroup) {
                    for ki in 0..<k {
                        for kj in 0..<k {
                            let wv = weights[(co * k + ki) * k + kj]
                            let hOffset = ki * d - p, wOffset = kj * d - p
                            let (w0, w1) = validRange(ow, size: w, offset: wOffset, stride: s)
                            var total = 0.0
                            if w0 < w1 {
                                for n in 0..<batch {
                                    var partial: Float = 0
                                    for ho in 0..<oh {
                                        let hi = ho * s + hOffset
                                        if hi < 0 || hi >= h { continue }
                                        let dyRow = dy + ((co * batch + n) * oh + ho) * ow
                                        let xRow = x + ((g * batch + n) * h + hi) * w
                                        if s == 1 {
                                            let xl = xRow + wOffset
                                            for wo in w0..<w1 { partial += dyRow[wo] * xl[wo] }
                                            if let dx {
                                                let dl = dx + ((g * batch + n) * h + hi) * w + wOffset
                                                for wo in w0..<w1 { dl[wo] += wv * dyRow[wo] }
                                            }
                                        } else {
                                            for wo in w0..<w1 { partial += dyRow[wo] * xRow[wo * s + wOffset] }
                                            if let dx {
                                                let dl = dx + ((g * batch + n) * h + hi) * w
                                                for wo in w0..<w1 { dl[wo * s + wOffset] += wv * dyRow[wo] }
                                            }
                                        }
                                    }
                                    total += Double(partial)
                                }
                            }
                            dW[(co * k + ki) * k + kj] = Float(total)
                        }
                    }
                }
            }
        }
    }

    // MARK: GEMM path

    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        forward(inputs[0].pointer, output.pointer, batch: batch, epilogue: nil, context: context)
    }

    /// The forward pass, then `epilogue` (a fused batch norm and activation; nil: none) on each
    /// output tile while it is in cache. With fewer images than threads the work of each image is
    /// split among the threads (``intraImageForward``), so batch-1 inference uses every core.
    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, epilogue: ConvolutionEpilogue?,
                 context: ExecutionContext) {
        // The depthwise kernel starts each plane from its bias: only the fused steps follow.
        if depthwise { depthwiseForward(x, y, batch: batch, epilogue: epilogue); return }
        let withBias = ConvolutionEpilogue(bias: bias.map { UnsafePointer($0.pointer) }, fused: epilogue)
        let threads = ComputeContext.current.threads
        let intraImage = batch < threads
            && columnRows * a.outChannels * outShape.height * outShape.width * batch >= GEMMSplit.minimumWork
        if let direct {
            direct.forward(x, y, weights: weight.pointer, batch: batch, splitImages: intraImage, epilogue: withBias, context: context)
            return
        }
        if intraImage {
            intraImageForward(x, y, batch: batch, threads: threads, epilogue: withBias, context: context)
            return
        }
        let inPlane = batch * inShape.height * inShape.width
        let outPlane = outShape.height * outShape.width
        let np = batch * outPlane
        let geo = geometry(batch: batch)
        let maxChunk = ConvolutionLayerChunking.images(budget: Conv2dLayer.columnBudget, perImage: max(1, columnRows * outPlane))
        context.reserve(threads: min(ComputeContext.current.threads, batch), workspace: pointwise ? 0 : columnRows * maxChunk * outPlane, partial: 0)
        let w = weight.pointer
        _ = forEachThread(batch: batch) { t, images, chunk in
            let ws = context.workspaces[t].pointer
            var first = images.lowerBound
            while first < images.upperBound {
                let count = min(chunk, images.upperBound - first)
                let columns = count * outPlane
                for g in 0..<a.groups {
                    let xg = x + g * inPerGroup * inPlane
                    let yg = y + g * outPerGroup * np + first * outPlane
                    if pointwise {
                        gemm(transposeA: false, transposeB: false, m: outPerGroup, n: columns, k: columnRows,
                             a: w + g * outPerGroup * columnRows, lda: columnRows, b: xg + first * outPlane, ldb: np,
                             beta: 0, c: yg, ldc: np)
                    } else {
                        im2col(xg, geo, first: first, count: count, ws)
                        gemm(transposeA: false, transposeB: false, m: outPerGroup, n: columns, k: columnRows,
                             a: w + g * outPerGroup * columnRows, lda: columnRows, b: ws, ldb: columns,
                             beta: 0, c: yg, ldc: np)
                    }
                    if let withBias {
                        for co in 0..<outPerGroup { withBias.apply(yg + co * np, channel: g * outPerGroup + co, count: columns) }
                    }
                }
                first += count
            }
        }
    }

    /// Forward for fewer images than threads: per image and group, the im2col rows are split among
    /// the threads, then the GEMM along its larger dimension (output channels or output
    /// positions); every output element is still one BLAS dot product over the same K, so results
    /// match the batch-parallel path up to the BLAS kernel's blocking.
    private func intraImageForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, threads: Int,
                                   epilogue: ConvolutionEpilogue?, context: ExecutionContext) {
        let inPlane = batch * inShape.height * inShape.width
        let outPlane = outShape.height * outShape.width
        let np = batch * outPlane
        let geo = geometry(batch: batch)
        context.reserve(threads: 1, workspace: pointwise ? 0 : columnRows * outPlane, partial: 0)
        let ws = context.workspaces[0].pointer
        let w = weight.pointer
        let rows = columnRows
        let split = GEMMSplit(m: outPerGroup, n: outPlane, threads: threads)
        for n in 0..<batch {
            for g in 0..<a.groups {
                let xg = x + g * inPerGroup * inPlane
                let yg = y + g * outPerGroup * np + n * outPlane
                let wg = w + g * outPerGroup * columnRows
                let b: UnsafePointer<Float>
                let ldb: Int
                if pointwise {
                    b = UnsafePointer(xg + n * outPlane)
                    ldb = np
                } else {
                    parallelFor(iterations: min(threads, rows)) { t in
                        let count = min(threads, rows)
                        im2col(xg, geo, first: n, count: 1, ws, rows: (rows * t / count)..<(rows * (t + 1) / count))
                    }
                    b = UnsafePointer(ws)
                    ldb = outPlane
                }
                parallelFor(iterations: split.parts) { t in
                    let (r, c) = split.part(t)
                    guard !r.isEmpty, !c.isEmpty else { return }
                    gemm(transposeA: false, transposeB: false, m: r.count, n: c.count, k: rows,
                         a: wg + r.lowerBound * rows, lda: rows, b: b + c.lowerBound, ldb: ldb, beta: 0,
                         c: yg + r.lowerBound * np + c.lowerBound, ldc: np)
                    if let epilogue {
                        for co in r { epilogue.apply(yg + co * np + c.lowerBound, channel: g * outPerGroup + co, count: c.count) }
                    }
                }
            }
        }
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        let x = inputs[0].pointer
        let dy = outputGradient.pointer
        if depthwise {
            depthwiseBackward(x, dy, inputGradients[0]?.pointer, accumulate: accumulate[0], batch: batch)
            biasGradient(dy, batch: batch)
            return
        }
        if let direct {
            direct.backward(x, dy, inputGradients[0]?.pointer, accumulate: accumulate[0], weights: weight.pointer,
                            weightGradient: weight.gradientPointer, batch: batch, context: context)
            biasGradient(dy, batch: batch)
            return
        }
        let inPlaneSize = inShape.height * inShape.width
        let inPlane = batch * inPlaneSize
        let outPlane = outShape.height * outShape.width
        let np = batch * outPlane
        let geo = geometry(batch: batch)
        let maxChunk = ConvolutionLayerChunking.images(budget: Conv2dLayer.columnBudget, perImage: max(1, columnRows * outPlane))
        let weightCount = weight.count
        context.reserve(threads: min(ComputeContext.current.threads, batch),
                        workspace: pointwise ? 0 : columnRows * maxChunk * outPlane, partial: weightCount)
        let w = weight.pointer
        let dx = inputGradients[0]?.pointer
        let accumulateInput = accumulate[0]
        let threads = forEachThread(batch: batch) { t, images, chunk in
            let ws = context.workspaces[t].pointer
            let dw = context.partials[t].pointer
            if let dx, !accumulateInput, !pointwise {
                for c in 0..<inShape.channels {
                    (dx + (c * batch + images.lowerBound) * inPlaneSize).update(repeating: 0, count: images.count * inPlaneSize)
                }
            }
            var first = images.lowerBound
            while first < images.upperBound {
                let count = min(chunk, images.upperBound - first)
                let columns = count * outPlane
                let firstChunk = first == images.lowerBound
                for g in 0..<a.groups {
                    let xg = x + g * inPerGroup * inPlane
                    let dyg = dy + g * outPerGroup * np + first * outPlane
                    let wg = w + g * outPerGroup * columnRows
                    let dwg = dw + g * outPerGroup * columnRows
                    let col: UnsafePointer<Float>
                    let ldCol: Int
                    if pointwise {
                        col = UnsafePointer(xg + first * outPlane)
                        ldCol = np
                    } else {
                        im2col(xg, geo, first: first, count: count, ws)
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
                             c: dxg + first * outPlane, ldc: np)
                    } else {
                        gemm(transposeA: true, transposeB: false, m: columnRows, n: columns, k: outPerGroup,
                             a: wg, lda: columnRows, b: dyg, ldb: np, beta: 0, c: ws, ldc: columns)
                        col2imAdd(ws, geo, first: first, count: count, dxg)
                    }
                }
                first += count
            }
        }
        // Sum the per-thread partial weight gradients in a fixed order.
        context.sumPartials(threads: threads, count: weightCount, into: weight.gradientPointer)
        biasGradient(dy, batch: batch)
    }

    private func biasGradient(_ dy: UnsafePointer<Float>, batch: Int) {
        guard let bias else { return }
        let np = batch * outShape.height * outShape.width
        for co in 0..<a.outChannels { bias.gradientPointer[co] = Float(sumDouble(dy + co * np, np)) }
    }
}

enum ConvolutionLayerChunking {
    static func images(budget: Int, perImage: Int) -> Int { max(1, budget / max(1, perImage)) }
}

/// What a convolution does to each output row after its GEMM: add its bias, then — when an
/// `InferenceFusion` chain is fused into it — the batch norm's evaluation map and the activation,
/// in the same order and arithmetic as the separate layers.
struct ConvolutionEpilogue {
    var bias: UnsafePointer<Float>?
    var scale: [Float]? = nil
    var shift: [Float]? = nil
    var activation: ActivationKind? = nil

    /// The conv's own bias followed by `fused`'s steps; nil when there is nothing to do.
    init?(bias: UnsafePointer<Float>?, fused: ConvolutionEpilogue?) {
        guard bias != nil || fused != nil else { return nil }
        self.bias = bias
        scale = fused?.scale
        shift = fused?.shift
        activation = fused?.activation
    }

    init(scale: [Float]?, shift: [Float]?, activation: ActivationKind?) {
        self.scale = scale
        self.shift = shift
        self.activation = activation
    }

    /// Applies the epilogue to `count` outputs of channel `channel` starting at `row`.
    @inline(__always)
    func apply(_ row: UnsafeMutablePointer<Float>, channel: Int, count: Int) {
        if let bias {
            let v = bias[channel]
            for i in 0..<count { row[i] += v }
        }
        if let scale, let shift {
            let s = scale[channel], h = shift[channel]
            for i in 0..<count { row[i] = row[i] * s + h }
        }
        activation?.apply(row, row, 0..<count)
    }
}
