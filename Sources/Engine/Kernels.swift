// Low-level kernels on channel-major (CNHW) buffers. A CNHW buffer of `channels` planes stores
// channel c, sample n, row h, column w at `((c * batch + n) * height + h) * width + w`.

/// Geometry of one convolution group for `im2col` / `col2imAdd`.
struct ConvolutionGeometry {
    var channels: Int
    var batch: Int
    var height: Int
    var width: Int
    var kernel: Int
    var stride: Int
    var padding: Int
    var dilation: Int
    var outHeight: Int
    var outWidth: Int
}

/// Copies the receptive fields of images `first ..< first + count` of one convolution group into
/// the columns of a GEMM operand (single-threaded; callers split work by images).
///
/// `source` is `[channels, batch, height, width]`; `destination` becomes
/// `[channels·k·k, count·outHeight·outWidth]` (row = (c·k + ki)·k + kj); `rows` limits the work to
/// some of those rows (threads splitting one image).
func im2col(_ source: UnsafePointer<Float>, _ g: ConvolutionGeometry, first: Int, count: Int,
            _ destination: UnsafeMutablePointer<Float>, rows selected: Range<Int>? = nil) {
    let kernel = g.kernel, stride = g.stride, outWidth = g.outWidth, outHeight = g.outHeight
    let rows = g.channels * kernel * kernel
    let columns = count * outHeight * outWidth
    for row in selected ?? 0..<rows {
        let c = row / (kernel * kernel)
        let ki = (row / kernel) % kernel
        let kj = row % kernel
        let destinationRow = destination + row * columns
        let hOffset = ki * g.dilation - g.padding
        let wOffset = kj * g.dilation - g.padding
        let (woStart, woEnd) = validRange(outWidth, size: g.width, offset: wOffset, stride: stride)
        for n in 0..<count {
            let plane = source + (c * g.batch + first + n) * g.height * g.width
            for ho in 0..<outHeight {
                let out = destinationRow + (n * outHeight + ho) * outWidth
                let hi = ho * stride + hOffset
                if hi < 0 || hi >= g.height || woStart >= woEnd {
                    out.update(repeating: 0, count: outWidth)
                    continue
                }
                let line = plane + hi * g.width
                var wo = 0
                while wo < woStart { out[wo] = 0; wo += 1 }
                if stride == 1 {
                    (out + woStart).update(from: line + (woStart + wOffset), count: woEnd - woStart)
                } else {
                    for w in woStart..<woEnd { out[w] = line[w * stride + wOffset] }
                }
                wo = woEnd
                while wo < outWidth { out[wo] = 0; wo += 1 }
            }
        }
    }
}

/// Adds columns back into images `first ..< first + count` of an image buffer (the adjoint of
/// `im2col`): `destination += col2im(columns)`.
func col2imAdd(_ columns: UnsafePointer<Float>, _ g: ConvolutionGeometry, first: Int, count: Int,
               _ destination: UnsafeMutablePointer<Float>) {
    let kernel = g.kernel, stride = g.stride, outWidth = g.outWidth, outHeight = g.outHeight
    let columnCount = count * outHeight * outWidth
    for c in 0..<g.channels {
        for ki in 0..<kernel {
            for kj in 0..<kernel {
                let row = (c * kernel + ki) * kernel + kj
                let sourceRow = columns + row * columnCount
                let hOffset = ki * g.dilation - g.padding
                let wOffset = kj * g.dilation - g.padding
                let (woStart, woEnd) = validRange(outWidth, size: g.width, offset: wOffset, stride: stride)
                if woStart >= woEnd { continue }
                for n in 0..<count {
                    let plane = destination + (c * g.batch + first + n) * g.height * g.width
                    for ho in 0..<outHeight {
                        let hi = ho * stride + hOffset
                        if hi < 0 || hi >= g.height { continue }
                        let input = sourceRow + (n * outHeight + ho) * outWidth
                        let line = plane + hi * g.width
                        if stride == 1 {
                            let l = line + wOffset
                            for w in woStart..<woEnd { l[w] += input[w] }
                        } else {
                            for w in woStart..<woEnd { line[w * stride + wOffset] += input[w] }
                        }
                    }
                }
            }
        }
    }
}

/// How the m × n output of one sample's GEMM is split among threads (convolutions with fewer
/// samples than threads): along its larger dimension — output channels, or positions in blocks of
/// 16. Each part is a sub-GEMM over the full K, so every element is the same dot product.
struct GEMMSplit {
    /// Multiply-accumulates below which one sample's op stays on one thread: waking the other
    /// threads costs more than they save. Measured on NB201 networks (16-channel 3×3 convolutions at
    /// 32×32, 2.4M MACs): splitting them made batch-1 inference on 2 threads slower than on 1.
    static let minimumWork = 1 << 22

    let m: Int
    let n: Int
    let alongRows: Bool
    /// Parts (≤ threads); some may be empty.
    let parts: Int

    init(m: Int, n: Int, threads: Int) {
        self.m = m
        self.n = n
        alongRows = m >= n
        parts = max(1, min(threads, alongRows ? m : n / 16))
    }

    /// Part `t`'s output rows and columns.
    func part(_ t: Int) -> (rows: Range<Int>, columns: Range<Int>) {
        if alongRows { return ((m * t / parts)..<(m * (t + 1) / parts), 0..<n) }
        let blocks = (n + 15) / 16
        return (0..<m, min(n, 16 * (blocks * t / parts))..<min(n, 16 * (blocks * (t + 1) / parts)))
    }
}

/// The output columns `wo` with `0 ≤ wo·stride + offset < size`, as a half-open range.
@inline(__always)
func validRange(_ outSize: Int, size: Int, offset: Int, stride: Int) -> (Int, Int) {
    let start = offset >= 0 ? 0 : min(outSize, (-offset + stride - 1) / stride)
    let last = size - 1 - offset
    let end = last < 0 ? 0 : min(outSize, last / stride + 1)
    return (start, max(start, end))
}

/// `destination = source` or `destination += source` over `count` floats.
@inline(__always)
func storeOrAdd(_ source: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<Float>, count: Int, accumulate: Bool) {
    if accumulate {
        for i in 0..<count { destination[i] += source[i] }
    } else {
        destination.update(from: source, count: count)
    }
}

// MARK: - Vector helpers (explicit SIMD: Swift does not vectorise float reductions or selects)

@inline(__always)
func loadVector(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inline(__always)
func storeVector(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}

/// Σ p[0..<n] in Float (SIMD partial sums).
@inline(__always)
func vectorSum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD16<Float>(repeating: 0)
    var i = 0
    while i + 16 <= n { acc += loadVector(p + i); i += 16 }
    var s = acc.sum()
    while i < n { s += p[i]; i += 1 }
    return s
}

/// Σ p[0..<n] with Float SIMD partial sums over blocks of 4096, accumulated in Double.
@inline(__always)
func sumDouble(_ p: UnsafePointer<Float>, _ n: Int) -> Double {
    var total = 0.0
    var i = 0
    while i < n {
        let count = min(4096, n - i)
        total += Double(vectorSum(p + i, count))
        i += count
    }
    return total
}

/// Σ (p[i] − shift)² with the same blocking as `sumDouble`.
@inline(__always)
func sumSquaredDeviations(_ p: UnsafePointer<Float>, _ n: Int, shift: Float) -> Double {
    var total = 0.0
    var i = 0
    let s = SIMD16<Float>(repeating: shift)
    while i < n {
        let end = min(n, i + 4096)
        var acc = SIMD16<Float>(repeating: 0)
        var j = i
        while j + 16 <= end { let d = loadVector(p + j) - s; acc += d * d; j += 16 }
        var t = acc.sum()
        while j < end { let d = p[j] - shift; t += d * d; j += 1 }
        total += Double(t)
        i = end
    }
    return total
}

/// (Σ a[i], Σ a[i]·(b[i] − shift)) with Double accumulation over blocks.
@inline(__always)
func sumAndDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int, shift: Float) -> (Double, Double) {
    var total = 0.0, dot = 0.0
    var i = 0
    let s = SIMD16<Float>(repeating: shift)
    while i < n {
        let end = min(n, i + 4096)
        var accA = SIMD16<Float>(repeating: 0), accD = SIMD16<Float>(repeating: 0)
        var j = i
        while j + 16 <= end {
            let av = loadVector(a + j)
            accA += av
            accD += av * (loadVector(b + j) - s)
            j += 16
        }
        var ta = accA.sum(), td = accD.sum()
        while j < end { ta += a[j]; td += a[j] * (b[j] - shift); j += 1 }
        total += Double(ta)
        dot += Double(td)
        i = end
    }
    return (total, dot)
}

/// dx = (lower < x < upper) ? dy : 0, or dx += … when accumulating (ReLU: lower 0, upper ∞).
@inline(__always)
func maskedCopy(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, range: Range<Int>,
                lower: Float, upper: Float, accumulate: Bool) {
    var i = range.lowerBound
    let end = range.upperBound
    let lo = SIMD16<Float>(repeating: lower), hi = SIMD16<Float>(repeating: upper)
    let zero = SIMD16<Float>(repeating: 0)
    if accumulate {
        while i + 16 <= end {
            let xv = loadVector(x + i)
            let g = zero.replacing(with: loadVector(dy + i), where: (xv .> lo) .& (xv .< hi))
            storeVector(loadVector(dx + i) + g, dx + i)
            i += 16
        }
        while i < end { if x[i] > lower && x[i] < upper { dx[i] += dy[i] }; i += 1 }
    } else {
        while i + 16 <= end {
            let xv = loadVector(x + i)
            storeVector(zero.replacing(with: loadVector(dy + i), where: (xv .> lo) .& (xv .< hi)), dx + i)
            i += 16
        }
        while i < end { dx[i] = (x[i] > lower && x[i] < upper) ? dy[i] : 0; i += 1 }
    }
}
