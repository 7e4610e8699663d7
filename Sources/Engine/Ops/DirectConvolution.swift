import CKernels

/// A stride-1 convolution computed by NASLab's direct kernels (`CKernels`, AVX-512 / AVX2 / baseline
/// picked for the CPU) instead of im2col + GEMM.
///
/// The trick is the "padded-row" layout: each image is copied once into a zero-padded plane of
/// `paddedHeight × paddedWidth`, images of a chunk follow each other, and the output is computed
/// for every position `q = n·paddedPlane + ho·paddedWidth + wo` of the same row width. Tap
/// `(ki, kj)` of the kernel then reads input `q + offsets[ki·k + kj]` for every output at once, so a
/// convolution is `channels × k²` shifted multiply-adds over long contiguous rows (no k²-times
/// larger column matrix), and the columns `wo ≥ outWidth` that this computes on the way are
/// dropped when the output is copied out.
///
/// The backward pass reuses both kernels: the input gradient of a stride-1 convolution is the
/// convolution of the output gradient, padded by `dilation·(k−1) − padding`, with the weights
/// flipped and transposed (``transposed``); the weight gradient is a correlation of the output
/// gradient (laid out in the input's padded rows, ``embed(_:channels:batch:first:count:into:)``)
/// with the padded input.
struct DirectConvolution {
    let channels: Int
    let height: Int
    let width: Int
    let kernel: Int
    let dilation: Int
    let padding: Int

    var paddedHeight: Int { height + 2 * padding }
    var paddedWidth: Int { width + 2 * padding }
    var paddedPlane: Int { paddedHeight * paddedWidth }
    var outHeight: Int { paddedHeight - dilation * (kernel - 1) }
    var outWidth: Int { paddedWidth - dilation * (kernel - 1) }
    /// Tap `t = ki·k + kj` reads input position `q + offsets[t]`.
    let offsets: [Int]

    /// Floats after a padded buffer that the kernels may read (lanes past the last position).
    static let slack = 16

    /// Whether the direct kernels compute this convolution: stride 1, a window larger than one
    /// pixel (1×1 convolutions are a GEMM on the input itself) and padding the transposed
    /// convolution of the backward pass can express.
    static func applies(kernel: Int, stride: Int, padding: Int, dilation: Int) -> Bool {
        stride == 1 && kernel > 1 && padding <= dilation * (kernel - 1)
    }

    init(channels: Int, height: Int, width: Int, kernel: Int, dilation: Int, padding: Int) {
        self.channels = channels
        self.height = height
        self.width = width
        self.kernel = kernel
        self.dilation = dilation
        self.padding = padding
        let rowWidth = width + 2 * padding
        offsets = (0..<(kernel * kernel)).map { t in (t / kernel) * dilation * rowWidth + (t % kernel) * dilation }
    }

    /// The convolution whose forward pass is this one's input gradient: over the output gradient
    /// (`channels` output channels of `outHeight × outWidth`), padded by `dilation·(k−1) − padding`.
    func transposed(outChannels: Int) -> DirectConvolution {
        DirectConvolution(channels: outChannels, height: outHeight, width: outWidth, kernel: kernel, dilation: dilation,
                          padding: dilation * (kernel - 1) - padding)
    }

    /// Floats of one channel's padded rows for `count` images.
    func rowLength(images count: Int) -> Int { count * paddedPlane }

    /// Output positions the kernels compute for `count` images: up to the last valid output of the
    /// last image (every input they read then lies inside the chunk's padded rows).
    func computedLength(images count: Int) -> Int {
        (count - 1) * paddedPlane + (outHeight - 1) * paddedWidth + outWidth
    }

    /// Copies images `first ..< first + count` of a CNHW buffer (`channels` planes of `batch`
    /// images) into zero-padded rows: channel c at `destination + c·rowLength(count)`.
    func pad(_ source: UnsafePointer<Float>, batch: Int, first: Int, count: Int, into destination: UnsafeMutablePointer<Float>) {
        let length = rowLength(images: count)
        for c in 0..<channels {
            let row = destination + c * length
            row.update(repeating: 0, count: length)
            for n in 0..<count {
                let plane = source + (c * batch + first + n) * height * width
                let padded = row + n * paddedPlane + padding * paddedWidth + padding
                for h in 0..<height { (padded + h * paddedWidth).update(from: plane + h * width, count: width) }
            }
        }
        (destination + channels * length).update(repeating: 0, count: Self.slack)
    }

    /// Lays out images `first ..< first + count` of a CNHW buffer of this convolution's *output*
    /// shape (`rows` planes) in its padded-row positions, zeros elsewhere: the output gradient as
    /// the weight-gradient kernel reads it.
    func embed(_ source: UnsafePointer<Float>, rows: Int, batch: Int, first: Int, count: Int,
               into destination: UnsafeMutablePointer<Float>) {
        let length = rowLength(images: count)
        for o in 0..<rows {
            let row = destination + o * length
            row.update(repeating: 0, count: length)
            for n in 0..<count {
                let plane = source + (o * batch + first + n) * outHeight * outWidth
                for h in 0..<outHeight {
                    (row + n * paddedPlane + h * paddedWidth).update(from: plane + h * outWidth, count: outWidth)
                }
            }
        }
    }

    /// Copies output rows `rows` computed in padded-row positions (row `o` at
    /// `source + (o − rows.lowerBound)·rowLength(count)`) into images `first ..< first + count` of a
    /// CNHW buffer, overwriting or adding.
    func extract(_ source: UnsafePointer<Float>, rows: Range<Int>, batch: Int, first: Int, count: Int,
                 into destination: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let length = rowLength(images: count)
        for o in rows {
            let row = source + (o - rows.lowerBound) * length
            for n in 0..<count {
                let plane = destination + (o * batch + first + n) * outHeight * outWidth
                for h in 0..<outHeight {
                    storeOrAdd(row + n * paddedPlane + h * paddedWidth, plane + h * outWidth, count: outWidth, accumulate: accumulate)
                }
            }
        }
    }

    /// `output[o] = Σ_c Σ_t weights[o][c][t] · padded[c][q + offsets[t]]` for `rows` output rows over
    /// `count` images of padded rows (from ``pad(_:batch:first:count:into:)``).
    func forward(padded: UnsafePointer<Float>, weights: UnsafePointer<Float>, rows: Int, count: Int,
                 output: UnsafeMutablePointer<Float>) {
        offsets.withUnsafeBufferPointer { o in
            naslab_direct_conv(padded, rowLength(images: count), Int32(channels), weights, Int32(rows),
                               Int32(kernel * kernel), o.baseAddress, output, rowLength(images: count), computedLength(images: count))
        }
    }

    /// `weightGradient[o][c][t] += Σ_q gradient[o][q] · padded[c][q + offsets[t]]` with `gradient`
    /// from ``embed(_:rows:batch:first:count:into:)``.
    func weightGradient(gradient: UnsafePointer<Float>, rows: Int, padded: UnsafePointer<Float>, count: Int,
                        into weightGradient: UnsafeMutablePointer<Float>) {
        offsets.withUnsafeBufferPointer { o in
            naslab_direct_conv_weight_gradient(gradient, rowLength(images: count), Int32(rows), padded,
                                               rowLength(images: count), Int32(channels), Int32(kernel * kernel), o.baseAddress,
                                               computedLength(images: count), weightGradient)
        }
    }

    /// The weights of ``transposed(outChannels:)``: `[in][out][k·k]` with the taps reversed.
    static func flippedTransposed(_ weights: UnsafePointer<Float>, outChannels: Int, inChannels: Int, taps: Int,
                                  into destination: UnsafeMutablePointer<Float>) {
        for o in 0..<outChannels {
            for c in 0..<inChannels {
                let source = weights + (o * inChannels + c) * taps
                let target = destination + (c * outChannels + o) * taps
                for t in 0..<taps { target[taps - 1 - t] = source[t] }
            }
        }
    }

    /// The instruction set the direct kernels use on this CPU ("avx512", "avx2" or "baseline").
    static var instructionSet: String { String(cString: naslab_kernel_isa()) }
}
