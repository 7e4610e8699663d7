import NASCore

/// Scratch state shared by the layers of one network.
final class ExecutionContext {
    /// im2col / col2im workspace, shared by all convolutions (recomputed in backward).
    let workspace = FloatBuffer(count: 0)
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

    init(name: String, attributes: Conv2dAttributes, inShape: FeatureShape, outShape: FeatureShape) {
        a = attributes
        self.inShape = inShape
        self.outShape = outShape
        inPerGroup = inShape.channels / a.groups
        outPerGroup = a.outChannels / a.groups
        columnRows = inPerGroup * a.kernel * a.kernel
        pointwise = a.kernel == 1 && a.stride == 1 && a.padding == 0
        weight = Parameter(name: name + "/weight", shape: [a.outChannels, inPerGroup, a.kernel, a.kernel], trainable: true)
        bias = a.bias ? Parameter(name: name + "/bias", shape: [a.outChannels], trainable: true) : nil
    }

    var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }
    var fanIn: Int { columnRows }
    var fanOut: Int { outPerGroup * a.kernel * a.kernel }

    private func columns(_ xg: UnsafePointer<Float>, batch: Int, context: ExecutionContext) -> UnsafePointer<Float> {
        if pointwise { return xg }
        let np = batch * outShape.height * outShape.width
        context.workspace.resize(columnRows * np)
        im2col(xg, channels: inPerGroup, batch: batch, height: inShape.height, width: inShape.width,
               kernel: a.kernel, stride: a.stride, padding: a.padding, dilation: a.dilation,
               outHeight: outShape.height, outWidth: outShape.width, context.workspace.pointer)
        return UnsafePointer(context.workspace.pointer)
    }

    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        let x = inputs[0].pointer
        let y = output.pointer
        let inPlane = batch * inShape.height * inShape.width
        let np = batch * outShape.height * outShape.width
        for g in 0..<a.groups {
            let col = columns(x + g * inPerGroup * inPlane, batch: batch, context: context)
            gemm(transposeA: false, transposeB: false, m: outPerGroup, n: np, k: columnRows,
                 a: weight.pointer + g * outPerGroup * columnRows, lda: columnRows, b: col, ldb: np,
                 beta: 0, c: y + g * outPerGroup * np, ldc: np)
        }
        if let bias {
            for co in 0..<a.outChannels {
                let b = bias.pointer[co]
                let row = y + co * np
                for i in 0..<np { row[i] += b }
            }
        }
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        let x = inputs[0].pointer
        let dy = outputGradient.pointer
        let inPlane = batch * inShape.height * inShape.width
        let np = batch * outShape.height * outShape.width
        for g in 0..<a.groups {
            let dyg = dy + g * outPerGroup * np
            let wg = weight.pointer + g * outPerGroup * columnRows
            let col = columns(x + g * inPerGroup * inPlane, batch: batch, context: context)
            gemm(transposeA: false, transposeB: true, m: outPerGroup, n: columnRows, k: np,
                 a: dyg, lda: np, b: col, ldb: np, beta: 0,
                 c: weight.gradientPointer + g * outPerGroup * columnRows, ldc: columnRows)
            guard let dx = inputGradients[0] else { continue }
            let dxg = dx.pointer + g * inPerGroup * inPlane
            if pointwise {
                gemm(transposeA: true, transposeB: false, m: columnRows, n: np, k: outPerGroup,
                     a: wg, lda: columnRows, b: dyg, ldb: np, beta: accumulate[0] ? 1 : 0, c: dxg, ldc: np)
            } else {
                let ws = context.workspace.pointer
                gemm(transposeA: true, transposeB: false, m: columnRows, n: np, k: outPerGroup,
                     a: wg, lda: columnRows, b: dyg, ldb: np, beta: 0, c: ws, ldc: np)
                if !accumulate[0] { dxg.update(repeating: 0, count: inPerGroup * inPlane) }
                col2imAdd(ws, channels: inPerGroup, batch: batch, height: inShape.height, width: inShape.width,
                          kernel: a.kernel, stride: a.stride, padding: a.padding, dilation: a.dilation,
                          outHeight: outShape.height, outWidth: outShape.width, dxg)
            }
        }
        if let bias {
            for co in 0..<a.outChannels {
                bias.gradientPointer[co] = Float(sumDouble(dy + co * np, np))
            }
        }
    }
}

@inline(__always)
func sumDouble(_ p: UnsafePointer<Float>, _ n: Int) -> Double {
    // Four Float partial sums per block of 1024, accumulated in Double: fast and accurate.
    var total = 0.0
    var i = 0
    while i < n {
        let end = min(n, i + 1024)
        var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
        var j = i
        while j + 4 <= end {
            s0 += p[j]; s1 += p[j + 1]; s2 += p[j + 2]; s3 += p[j + 3]
            j += 4
        }
        while j < end { s0 += p[j]; j += 1 }
        total += Double(s0) + Double(s1) + Double(s2) + Double(s3)
        i = end
    }
    return total
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
                            var s0: Float = 0, s1: Float = 0
                            var total = 0.0
                            var i = 0
                            while i < m {
                                let end = min(m, i + 1024)
                                s0 = 0; s1 = 0
                                var j = i
                                while j + 2 <= end {
                                    let d0 = xc[j] - muF, d1 = xc[j + 1] - muF
                                    s0 += d0 * d0; s1 += d1 * d1
                                    j += 2
                                }
                                while j < end { let d = xc[j] - muF; s0 += d * d; j += 1 }
                                total += Double(s0) + Double(s1)
                                i = end
                            }
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
                        var sumDy = 0.0, sumDyXhat = 0.0
                        var i = 0
                        while i < m {
                            let end = min(m, i + 1024)
                            var a: Float = 0, b: Float = 0
                            for j in i..<end {
                                a += dyc[j]
                                b += dyc[j] * (xc[j] - mean)
                            }
                            sumDy += Double(a); sumDyXhat += Double(b)
                            i = end
                        }
                        sumDyXhat *= Double(inv)
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
                if acc { for i in r { dx[i] += x[i] > 0 ? dy[i] : 0 } } else { for i in r { dx[i] = x[i] > 0 ? dy[i] : 0 } }
            case .relu6:
                for i in r { put(i, (x[i] > 0 && x[i] < 6) ? dy[i] : 0) }
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
            let xp = x + plane * hw
            var s: Float = 0
            for i in 0..<hw { s += xp[i] }
            y[plane] = s * scale
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
