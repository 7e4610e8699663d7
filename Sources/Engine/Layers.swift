import Dispatch
import NASCore

/// Scratch state shared by the layers of one network.
final class ExecutionContext {
    /// Per-thread im2col / col2im workspaces, shared by all convolutions (columns are recomputed
    /// in backward rather than stored).
    private(set) var workspaces = [FloatBuffer]()
    /// Per-thread partial weight gradients of a convolution (summed in a fixed order).
    private(set) var partials = [FloatBuffer]()

    func workspace(_ thread: Int, count: Int) -> UnsafeMutablePointer<Float> {
        while workspaces.count <= thread { workspaces.append(FloatBuffer(count: 0)) }
        workspaces[thread].resize(count)
        return workspaces[thread].pointer
    }

    /// Makes sure `threads` workspaces and partial buffers exist (call before parallel regions).
    func reserve(threads: Int, workspace: Int, partial: Int) {
        while workspaces.count < threads { workspaces.append(FloatBuffer(count: 0)) }
        while partials.count < threads { partials.append(FloatBuffer(count: 0)) }
        for t in 0..<threads {
            workspaces[t].resize(workspace)
            partials[t].resize(partial)
        }
    }
    /// Source of dropout masks.
    var generator: SeededGenerator
    init(generator: SeededGenerator) { self.generator = generator }
}

/// One node's computation on CNHW buffers. Parameter gradients are overwritten by each backward;
/// input gradients are written or, when `accumulate[i]` is true, added.
protocol Layer: AnyObject {
    var parameters: [Parameter] { get }
    var buffers: [Parameter] { get }
    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext)
    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext)
}

extension Layer {
    var parameters: [Parameter] { [] }
    var buffers: [Parameter] { [] }
}

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

    init(name: String, attributes: Conv2dAttributes, inShape: FeatureShape, outShape: FeatureShape) {
        a = attributes
        self.inShape = inShape
        self.outShape = outShape
        inPerGroup = inShape.channels / a.groups
        outPerGroup = a.outChannels / a.groups
        columnRows = inPerGroup * a.kernel * a.kernel
        pointwise = a.kernel == 1 && a.stride == 1 && a.padding == 0
        depthwise = inPerGroup == 1 && a.groups > 1
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
        let threads = work < 1 << 18 ? 1 : min(EngineConfiguration.threadCount, batch)
        if threads == 1 {
            body(0, 0..<batch, chunk)
        } else {
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                body(t, (batch * t / threads)..<(batch * (t + 1) / threads), chunk)
            }
        }
        return threads
    }

    // MARK: Depthwise

    private func depthwiseForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int) {
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
        let x = inputs[0].pointer
        let y = output.pointer
        if depthwise { depthwiseForward(x, y, batch: batch); return }
        let inPlane = batch * inShape.height * inShape.width
        let outPlane = outShape.height * outShape.width
        let np = batch * outPlane
        let geo = geometry(batch: batch)
        let maxChunk = ConvolutionLayerChunking.images(budget: Conv2dLayer.columnBudget, perImage: max(1, columnRows * outPlane))
        context.reserve(threads: min(EngineConfiguration.threadCount, batch), workspace: pointwise ? 0 : columnRows * maxChunk * outPlane, partial: 0)
        let w = weight.pointer
        let b = bias?.pointer
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
                    if let b {
                        for co in 0..<outPerGroup {
                            let v = b[g * outPerGroup + co]
                            let row = yg + co * np
                            for i in 0..<columns { row[i] += v }
                        }
                    }
                }
                first += count
            }
        }
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        let x = inputs[0].pointer
        let dy = outputGradient.pointer
        if depthwise {
            depthwiseBackward(x, dy, inputGradients[0]?.pointer, accumulate: accumulate[0], batch: batch)
            if let bias {
                let np = batch * outShape.height * outShape.width
                for co in 0..<a.outChannels { bias.gradientPointer[co] = Float(sumDouble(dy + co * np, np)) }
            }
            return
        }
        let inPlaneSize = inShape.height * inShape.width
        let inPlane = batch * inPlaneSize
        let outPlane = outShape.height * outShape.width
        let np = batch * outPlane
        let geo = geometry(batch: batch)
        let maxChunk = ConvolutionLayerChunking.images(budget: Conv2dLayer.columnBudget, perImage: max(1, columnRows * outPlane))
        let weightCount = weight.count
        context.reserve(threads: min(EngineConfiguration.threadCount, batch),
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
        let dW = weight.gradientPointer
        dW.update(from: context.partials[0].pointer, count: weightCount)
        for t in 1..<max(1, threads) {
            let p = context.partials[t].pointer
            for i in 0..<weightCount { dW[i] += p[i] }
        }
        if let bias {
            for co in 0..<a.outChannels {
                bias.gradientPointer[co] = Float(sumDouble(dy + co * np, np))
            }
        }
    }
}

enum ConvolutionLayerChunking {
    static func images(budget: Int, perImage: Int) -> Int { max(1, budget / max(1, perImage)) }
}

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
        gemm(transposeA: false, transposeB: false, m: outFeatures, n: batch, k: inFeatures,
             a: weight.pointer, lda: inFeatures, b: inputs[0].pointer, ldb: batch, beta: 0, c: y, ldc: batch)
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
                            inv = Float(1.0 / (Double(runningVariance.pointer[c]) + BatchNormLayer.epsilon).squareRoot())
                        }
                        meanOut[c] = mean
                        invOut[c] = inv
                        let gamma = weight?.pointer[c] ?? 1
                        let beta = bias?.pointer[c] ?? 0
                        let scale = gamma * inv
                        let shift = beta - mean * scale
                        for i in 0..<m { yc[i] = xc[i] * scale + shift }
                    }
                }
            }
        }
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

// MARK: - Activations

final class ActivationLayer: Layer {
    let kind: ActivationKind
    init(kind: ActivationKind) { self.kind = kind }

    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        let x = inputs[0].pointer, y = output.pointer
        let n = output.count
        let kind = self.kind
        parallelChunks(n, minimumPerChunk: 4096, work: n * 4) { r in
            switch kind {
            case .relu: for i in r { y[i] = max(x[i], 0) }
            case .relu6: for i in r { y[i] = min(max(x[i], 0), 6) }
            case .hardSwish: for i in r { let v = x[i]; y[i] = v * min(max(v + 3, 0), 6) * (1.0 / 6.0) }
            case .sigmoid: for i in r { y[i] = 1 / (1 + expf(-x[i])) }
            }
        }
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        guard let dxBuffer = inputGradients[0] else { return }
        let x = inputs[0].pointer, y = output.pointer, dy = outputGradient.pointer, dx = dxBuffer.pointer
        let n = output.count
        let acc = accumulate[0]
        let kind = self.kind
        parallelChunks(n, minimumPerChunk: 4096, work: n * 4) { r in
            @inline(__always) func put(_ i: Int, _ v: Float) { if acc { dx[i] += v } else { dx[i] = v } }
            switch kind {
            case .relu:
                maskedCopy(x: x, dy: dy, dx: dx, range: r, lower: 0, upper: .infinity, accumulate: acc)
            case .relu6:
                maskedCopy(x: x, dy: dy, dx: dx, range: r, lower: 0, upper: 6, accumulate: acc)
            case .hardSwish:
                // PyTorch: 0 for x < -3, x/3 + 1/2 for -3 ≤ x ≤ 3, 1 above.
                for i in r {
                    let v = x[i]
                    let d: Float = v < -3 ? 0 : (v <= 3 ? v / 3 + 0.5 : 1)
                    put(i, d * dy[i])
                }
            case .sigmoid:
                for i in r { put(i, dy[i] * y[i] * (1 - y[i])) }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        let planes = inShape.channels * batch
        let h = inShape.height, w = inShape.width, oh = outShape.height, ow = outShape.width
        if argmax.count != planes * oh * ow { argmax = [Int32](repeating: 0, count: planes * oh * ow) }
        let x = inputs[0].pointer, y = output.pointer
        let p = self.p
        argmax.withUnsafeMutableBufferPointer { arg in
            parallelChunks(planes, work: planes * oh * ow * p.kernel * p.kernel) { range in
                for plane in range {
                    let xp = x + plane * h * w
                    for i in 0..<oh {
                        for j in 0..<ow {
                            var best = -Float.infinity
                            var bestIndex = -1
                            for ki in 0..<p.kernel {
                                let hi = i * p.stride - p.padding + ki
                                if hi < 0 || hi >= h { continue }
                                for kj in 0..<p.kernel {
                                    let wi = j * p.stride - p.padding + kj
                                    if wi < 0 || wi >= w { continue }
                                    let v = xp[hi * w + wi]
                                    if v > best || bestIndex < 0 || v.isNaN { best = v; bestIndex = hi * w + wi }
                                }
                            }
                            let o = (plane * oh + i) * ow + j
                            y[o] = best
                            arg[o] = Int32(bestIndex)
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

// MARK: - Structural ops

final class AddLayer: Layer {
    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        let n = output.count, y = output.pointer
        y.update(from: inputs[0].pointer, count: n)
        for k in 1..<inputs.count {
            let x = inputs[k].pointer
            for i in 0..<n { y[i] += x[i] }
        }
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        for (k, g) in inputGradients.enumerated() {
            guard let g else { continue }
            storeOrAdd(outputGradient.pointer, g.pointer, count: output.count, accumulate: accumulate[k])
        }
    }
}

/// Channel concatenation: in CNHW each input is one contiguous block of the output.
final class ConcatLayer: Layer {
    let inShapes: [FeatureShape]
    init(inShapes: [FeatureShape]) { self.inShapes = inShapes }

    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        var offset = 0
        for x in inputs {
            (output.pointer + offset).update(from: x.pointer, count: x.count)
            offset += x.count
        }
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        var offset = 0
        for (k, x) in inputs.enumerated() {
            if let g = inputGradients[k] {
                storeOrAdd(outputGradient.pointer + offset, g.pointer, count: x.count, accumulate: accumulate[k])
            }
            offset += x.count
        }
    }
}

final class IdentityLayer: Layer {
    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        output.pointer.update(from: inputs[0].pointer, count: output.count)
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        if let g = inputGradients[0] {
            storeOrAdd(outputGradient.pointer, g.pointer, count: output.count, accumulate: accumulate[0])
        }
    }
}

final class ZeroLayer: Layer {
    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        output.zero()
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        if let g = inputGradients[0], !accumulate[0] { g.zero() }
    }
}

/// Inverted dropout: kept values are scaled by 1/(1−rate) in training; identity in evaluation.
final class DropoutLayer: Layer {
    let rate: Double
    private let mask = FloatBuffer(count: 0)
    private var lastTraining = false

    init(rate: Double) { self.rate = rate }

    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        let n = output.count
        let x = inputs[0].pointer, y = output.pointer
        lastTraining = training && rate > 0
        guard lastTraining else { y.update(from: x, count: n); return }
        mask.resize(n)
        let keep = Float(1 / (1 - rate))
        let mp = mask.pointer
        let rate = self.rate
        for i in 0..<n { mp[i] = context.generator.nextUnitDouble() < rate ? 0 : keep }
        for i in 0..<n { y[i] = x[i] * mp[i] }
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        guard let g = inputGradients[0] else { return }
        let n = output.count, dx = g.pointer, dy = outputGradient.pointer
        if !lastTraining { storeOrAdd(dy, dx, count: n, accumulate: accumulate[0]); return }
        let mp = mask.pointer
        if accumulate[0] { for i in 0..<n { dx[i] += dy[i] * mp[i] } } else { for i in 0..<n { dx[i] = dy[i] * mp[i] } }
    }
}

/// C×H×W → (C·H·W)×1×1 with PyTorch's per-sample (c, h, w) feature order.
final class FlattenLayer: Layer {
    let inShape: FeatureShape
    init(inShape: FeatureShape) { self.inShape = inShape }

    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        let hw = inShape.height * inShape.width
        let x = inputs[0].pointer, y = output.pointer
        for c in 0..<inShape.channels {
            for n in 0..<batch {
                let xp = x + (c * batch + n) * hw
                for s in 0..<hw { y[(c * hw + s) * batch + n] = xp[s] }
            }
        }
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        guard let g = inputGradients[0] else { return }
        let hw = inShape.height * inShape.width
        let dx = g.pointer, dy = outputGradient.pointer
        let acc = accumulate[0]
        for c in 0..<inShape.channels {
            for n in 0..<batch {
                let dxp = dx + (c * batch + n) * hw
                for s in 0..<hw {
                    let v = dy[(c * hw + s) * batch + n]
                    if acc { dxp[s] += v } else { dxp[s] = v }
                }
            }
        }
    }
}
