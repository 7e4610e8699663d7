// Low-level kernels on channel-major (CNHW) buffers. A CNHW buffer of `channels` planes stores
// channel c, sample n, row h, column w at `((c * batch + n) * height + h) * width + w`.

/// Copies the receptive fields of one convolution group into the columns of a GEMM operand.
///
/// `source` is `[channels, batch, height, width]`; `destination` becomes
/// `[channels·k·k, batch·outHeight·outWidth]` (row = (c·k + ki)·k + kj).
func im2col(_ source: UnsafePointer<Float>, channels: Int, batch: Int, height: Int, width: Int,
            kernel: Int, stride: Int, padding: Int, dilation: Int, outHeight: Int, outWidth: Int,
            _ destination: UnsafeMutablePointer<Float>) {
    let rows = channels * kernel * kernel
    let columns = batch * outHeight * outWidth
    parallelChunks(rows, work: rows * columns) { range in
        for row in range {
            let c = row / (kernel * kernel)
            let ki = (row / kernel) % kernel
            let kj = row % kernel
            let destinationRow = destination + row * columns
            let hOffset = ki * dilation - padding
            let wOffset = kj * dilation - padding
            let (woStart, woEnd) = validRange(outWidth, size: width, offset: wOffset, stride: stride)
            for n in 0..<batch {
                let plane = source + (c * batch + n) * height * width
                for ho in 0..<outHeight {
                    let out = destinationRow + (n * outHeight + ho) * outWidth
                    let hi = ho * stride + hOffset
                    if hi < 0 || hi >= height || woStart >= woEnd {
                        out.update(repeating: 0, count: outWidth)
                        continue
                    }
                    let line = plane + hi * width
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
}

/// Adds columns back into an image buffer (the adjoint of `im2col`): `destination += col2im(columns)`.
func col2imAdd(_ columns: UnsafePointer<Float>, channels: Int, batch: Int, height: Int, width: Int,
               kernel: Int, stride: Int, padding: Int, dilation: Int, outHeight: Int, outWidth: Int,
               _ destination: UnsafeMutablePointer<Float>) {
    let columnCount = batch * outHeight * outWidth
    parallelChunks(channels, work: channels * kernel * kernel * columnCount) { range in
        for c in range {
            for ki in 0..<kernel {
                for kj in 0..<kernel {
                    let row = (c * kernel + ki) * kernel + kj
                    let sourceRow = columns + row * columnCount
                    let hOffset = ki * dilation - padding
                    let wOffset = kj * dilation - padding
                    let (woStart, woEnd) = validRange(outWidth, size: width, offset: wOffset, stride: stride)
                    if woStart >= woEnd { continue }
                    for n in 0..<batch {
                        let plane = destination + (c * batch + n) * height * width
                        for ho in 0..<outHeight {
                            let hi = ho * stride + hOffset
                            if hi < 0 || hi >= height { continue }
                            let input = sourceRow + (n * outHeight + ho) * outWidth
                            let line = plane + hi * width
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
