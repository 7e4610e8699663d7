import CBLAS
import Dispatch
import NASCore

/// Attributes of max or average pooling (PyTorch's `MaxPool2d` / `AvgPool2d`).
public struct PoolAttributes: Hashable, Codable, Sendable {
    public var kernel: Int
    public var stride: Int
    public var padding: Int
    /// Average pooling only: whether padded zeros count in the divisor (PyTorch's `count_include_pad`).
    public var countIncludePadding: Bool

    public init(kernel: Int, stride: Int, padding: Int = 0, countIncludePadding: Bool = true) {
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.countIncludePadding = countIncludePadding
    }

    init(_ a: OpAttributeReader, countIncludePadding: Bool) throws {
        self.init(kernel: try a.int("kernel"), stride: try a.int("stride"), padding: try a.int("padding"),
                  countIncludePadding: countIncludePadding)
    }

    var windowAttributes: OpAttributeList { [("kernel", .int(kernel)), ("stride", .int(stride)), ("padding", .int(padding))] }

    func outputShape(_ inputs: [FeatureShape]) throws -> FeatureShape {
        let x = try Conv2d.single(inputs)
        guard kernel > 0, stride > 0, padding >= 0, padding * 2 <= kernel else {
            throw OpShapeError("pool padding must be at most half the kernel")
        }
        return FeatureShape(
            channels: x.channels,
            height: try Conv2d.windowOutput(x.height, kernel: kernel, stride: stride, padding: padding, dilation: 1),
            width: try Conv2d.windowOutput(x.width, kernel: kernel, stride: stride, padding: padding, dilation: 1))
    }

    /// NB201 FLOPs: `k²` per output element.
    func cost(_ output: FeatureShape) -> OpCost { OpCost(nasBench201Flops: output.elementCount * kernel * kernel) }
}

/// Max pooling k×k (PyTorch's `MaxPool2d`).
public struct MaxPool: GraphOp, Hashable {
    public static let kind = "maxPool"
    public var pool: PoolAttributes

    public init(_ pool: PoolAttributes) { self.pool = pool }
    public init(attributes a: OpAttributeReader) throws { pool = try PoolAttributes(a, countIncludePadding: true) }

    public var attributes: OpAttributeList { pool.windowAttributes }
    public func outputShape(inputs: [FeatureShape]) throws -> FeatureShape { try pool.outputShape(inputs) }
    public func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost { pool.cost(output) }

    public func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? {
        LayerHandle(MaxPoolLayer(attributes: pool, inShape: context.inputShapes[0], outShape: context.outputShape))
    }
}

/// Average pooling k×k (PyTorch's `AvgPool2d`, with `count_include_pad`).
public struct AvgPool: GraphOp, Hashable {
    public static let kind = "avgPool"
    public var pool: PoolAttributes

    public init(_ pool: PoolAttributes) { self.pool = pool }

    public init(attributes a: OpAttributeReader) throws {
        pool = try PoolAttributes(a, countIncludePadding: try a.bool("countIncludePadding"))
    }

    public var attributes: OpAttributeList { pool.windowAttributes + [("countIncludePadding", .bool(pool.countIncludePadding))] }
    public func outputShape(inputs: [FeatureShape]) throws -> FeatureShape { try pool.outputShape(inputs) }
    public func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost { pool.cost(output) }

    public func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? {
        LayerHandle(AvgPoolLayer(attributes: pool, inShape: context.inputShapes[0], outShape: context.outputShape))
    }
}

/// Mean over height and width: C×H×W → C×1×1. NB201 FLOPs: 1 per input element.
public struct GlobalAvgPool: AttributeFreeOp, Hashable {
    public static let kind = "globalAvgPool"
    public init() {}
    public func outputShape(inputs: [FeatureShape]) throws -> FeatureShape { FeatureShape(features: try Self.single(inputs).channels) }
    public func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost { OpCost(nasBench201Flops: inputs[0].elementCount) }
    public func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? {
        LayerHandle(GlobalAvgPoolLayer(inShape: context.inputShapes[0]))
    }
}

extension GraphOp where Self == MaxPool {
    public static func maxPool(_ p: PoolAttributes) -> MaxPool { MaxPool(p) }
}

extension GraphOp where Self == AvgPool {
    public static func avgPool(_ p: PoolAttributes) -> AvgPool { AvgPool(p) }
}

extension GraphOp where Self == GlobalAvgPool {
    public static var globalAvgPool: GlobalAvgPool { GlobalAvgPool() }
}

// MARK: - Engine layer

// MARK: - Pooling

final class MaxPoolLayer: Layer {
    let p: PoolAttributes
    let inShape: FeatureShape
    let outShape: FeatureShape
    private var argmax = [Int32]()

    init(attributes: PoolAttributes, inShape: FeatureShape, outShape: FeatureShape) {
        p = attributes
        self.inShape = inShape
        self.outShape = outShape
    }

    /// Whether `argmax` holds the last forward's window maxima (a forward in evaluation mode
    /// skips them; a backward after it recomputes them).
    private var argmaxValid = false

    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        if training {
            scanWithArgmax(inputs[0].pointer, output.pointer, batch: batch)
        } else {
            scanMaxima(inputs[0].pointer, output.pointer, batch: batch)
            argmaxValid = false
        }
    }

    /// Each output's window clipped to the image, once per row and column.
    private func windows() -> (rowStart: [Int], rowEnd: [Int], columnStart: [Int], columnEnd: [Int]) {
        let h = inShape.height, w = inShape.width, oh = outShape.height, ow = outShape.width
        let k = p.kernel, s = p.stride, pad = p.padding
        return ((0..<oh).map { i in max(0, i * s - pad) }, (0..<oh).map { i in min(h, i * s - pad + k) },
                (0..<ow).map { j in max(0, j * s - pad) }, (0..<ow).map { j in min(w, j * s - pad + k) })
    }

    /// Evaluation mode: the window maxima only, without branches on the data (a compare-and-select
    /// per element, the vertical pass vectorised over whole rows): as fast for any input, so the
    /// latency a table measures for it holds inside any network. NaN propagates, as PyTorch.
    private func scanMaxima(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int) {
        let planes = inShape.channels * batch
        let h = inShape.height, w = inShape.width, oh = outShape.height, ow = outShape.width
        let (rowStart, rowEnd, columnStart, columnEnd) = windows()
        parallelChunks(planes, work: planes * oh * ow * p.kernel * p.kernel) { range in
            let rowMax = UnsafeMutablePointer<Float>.allocate(capacity: w)
            defer { rowMax.deallocate() }
            for plane in range {
                let xp = x + plane * h * w
                for i in 0..<oh {
                    let h0 = rowStart[i], h1 = rowEnd[i]
                    rowMax.update(from: xp + h0 * w, count: w)
                    for hi in (h0 + 1)..<max(h0 + 1, h1) {
                        let line = xp + hi * w
                        for c in 0..<w {
                            let v = line[c], b = rowMax[c]
                            rowMax[c] = (v > b || v != v) ? v : b
                        }
                    }
                    let o = y + (plane * oh + i) * ow
                    for j in 0..<ow {
                        let w0 = columnStart[j], w1 = columnEnd[j]
                        var best = rowMax[w0]
                        for c in (w0 + 1)..<max(w0 + 1, w1) {
                            let v = rowMax[c]
                            best = (v > best || v != v) ? v : best
                        }
                        o[j] = best
                    }
                }
            }
        }
    }

    /// Training mode: the maxima and where they are (for the backward pass).
    private func scanWithArgmax(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int) {
        let planes = inShape.channels * batch
        let h = inShape.height, w = inShape.width, oh = outShape.height, ow = outShape.width
        if argmax.count != planes * oh * ow { argmax = [Int32](repeating: 0, count: planes * oh * ow) }
        // The scan itself has no bounds checks; the first element of the window seeds the maximum
        // (windows are never empty: padding ≤ kernel / 2); ties keep the first index, a NaN wins
        // (the last one, as PyTorch).
        let (rowStart, rowEnd, columnStart, columnEnd) = windows()
        let k = p.kernel
        argmax.withUnsafeMutableBufferPointer { arg in
            let arg = arg.baseAddress!
            parallelChunks(planes, work: planes * oh * ow * k * k) { range in
                for plane in range {
                    let xp = x + plane * h * w
                    for i in 0..<oh {
                        let h0 = rowStart[i], h1 = rowEnd[i]
                        let o = (plane * oh + i) * ow
                        for j in 0..<ow {
                            let w0 = columnStart[j], w1 = columnEnd[j]
                            var bestIndex = h0 * w + w0
                            var best = xp[bestIndex]
                            for hi in h0..<h1 {
                                let line = xp + hi * w
                                for wi in w0..<w1 {
                                    let v = line[wi]
                                    if v > best || v.isNaN {
                                        best = v
                                        bestIndex = hi * w + wi
                                    }
                                }
                            }
                            y[o + j] = best
                            arg[o + j] = Int32(bestIndex)
                        }
                    }
                }
            }
        }
        argmaxValid = true
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        guard let dxBuffer = inputGradients[0] else { return }
        if !argmaxValid { scanWithArgmax(inputs[0].pointer, output.pointer, batch: batch) }
        let planes = inShape.channels * batch
        let h = inShape.height, w = inShape.width, oh = outShape.height, ow = outShape.width
        let dx = dxBuffer.pointer, dy = outputGradient.pointer
        if !accumulate[0] { dx.update(repeating: 0, count: planes * h * w) }
        argmax.withUnsafeBufferPointer { arg in
            parallelChunks(planes, work: planes * oh * ow * 4) { range in
                for plane in range {
                    let dxp = dx + plane * h * w
                    for o in (plane * oh * ow)..<((plane + 1) * oh * ow) { dxp[Int(arg[o])] += dy[o] }
                }
            }
        }
    }
}

final class AvgPoolLayer: Layer {
    let p: PoolAttributes
    let inShape: FeatureShape
    let outShape: FeatureShape

    init(attributes: PoolAttributes, inShape: FeatureShape, outShape: FeatureShape) {
        p = attributes
        self.inShape = inShape
        self.outShape = outShape
    }

    /// The window rows (or columns) of output index `i` clipped to the input, and the divisor
    /// extent (PyTorch: clipped to the padded input when counting padding).
    @inline(__always)
    private func window(_ i: Int, size: Int) -> (start: Int, end: Int, padded: Int) {
        let start = i * p.stride - p.padding
        let end = min(start + p.kernel, size + p.padding)
        let padded = end - start
        return (max(start, 0), min(end, size), padded)
    }

    private func forEachWindow(_ body: (Int, Int, Int, Int, Int, Int, Float) -> Void) {
        for i in 0..<outShape.height {
            let (h0, h1, hp) = window(i, size: inShape.height)
            for j in 0..<outShape.width {
                let (w0, w1, wp) = window(j, size: inShape.width)
                let count = p.countIncludePadding ? hp * wp : (h1 - h0) * (w1 - w0)
                body(i, j, h0, h1, w0, w1, 1 / Float(max(count, 1)))
            }
        }
    }

    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        let planes = inShape.channels * batch
        let h = inShape.height, w = inShape.width, oh = outShape.height, ow = outShape.width
        let x = inputs[0].pointer, y = output.pointer
        parallelChunks(planes, work: planes * oh * ow * p.kernel * p.kernel) { range in
            for plane in range {
                let xp = x + plane * h * w
                let yp = y + plane * oh * ow
                forEachWindow { i, j, h0, h1, w0, w1, scale in
                    var s: Float = 0
                    for hi in h0..<h1 { for wi in w0..<w1 { s += xp[hi * w + wi] } }
                    yp[i * ow + j] = s * scale
                }
            }
        }
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        guard let dxBuffer = inputGradients[0] else { return }
        let planes = inShape.channels * batch
        let h = inShape.height, w = inShape.width, oh = outShape.height, ow = outShape.width
        let dx = dxBuffer.pointer, dy = outputGradient.pointer
        if !accumulate[0] { dx.update(repeating: 0, count: planes * h * w) }
        parallelChunks(planes, work: planes * oh * ow * p.kernel * p.kernel) { range in
            for plane in range {
                let dxp = dx + plane * h * w
                let dyp = dy + plane * oh * ow
                forEachWindow { i, j, h0, h1, w0, w1, scale in
                    let g = dyp[i * ow + j] * scale
                    for hi in h0..<h1 { for wi in w0..<w1 { dxp[hi * w + wi] += g } }
                }
            }
        }
    }
}

final class GlobalAvgPoolLayer: Layer {
    let inShape: FeatureShape
    init(inShape: FeatureShape) { self.inShape = inShape }

    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        let hw = inShape.height * inShape.width
        let planes = inShape.channels * batch
        let x = inputs[0].pointer, y = output.pointer
        let scale = 1 / Float(hw)
        for plane in 0..<planes {
            y[plane] = vectorSum(x + plane * hw, hw) * scale
        }
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        guard let dxBuffer = inputGradients[0] else { return }
        let hw = inShape.height * inShape.width
        let planes = inShape.channels * batch
        let dx = dxBuffer.pointer, dy = outputGradient.pointer
        let scale = 1 / Float(hw)
        let acc = accumulate[0]
        for plane in 0..<planes {
            let g = dy[plane] * scale
            let dxp = dx + plane * hw
            if acc { for i in 0..<hw { dxp[i] += g } } else { for i in 0..<hw { dxp[i] = g } }
        }
    }
}
