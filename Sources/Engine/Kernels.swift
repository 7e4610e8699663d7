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
/// `[channels·k·k, count·outHeight·outWidth]` (row = (c·k + ki)·k + kj).
func im2col(_ source: UnsafePointer<Float>, _ g: ConvolutionGeometry, first: Int, count: Int,
            _ destination: UnsafeMutablePointer<Float>) {
    let kernel = g.kernel, stride = g.stride, outWidth = g.outWidth, outHeight = g.outHeight
    let rows = g.channels * kernel * kernel
    let columns = count * outHeight * outWidth
    for row in 0..<rows {
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
