import CKernels
import Dispatch

/// Stride-1 convolutions (2-D, and 1-D as height-1 images with a 1×k window) computed by NASLab's
/// direct kernels (`CKernels`, AVX-512 / AVX2 / baseline picked for the CPU) instead of im2col +
/// GEMM. `Conv2dLayer` and `Conv1dLayer` both run their stride-1 windows through it.
///
/// The trick is the "padded-row" layout: the images of a chunk are copied once into one long row
/// per channel with zeros around them, rows of `pitch = width + paddingWidth` floats and planes of
/// `(height + paddingHeight)` rows, and the output is computed for every position
/// `q = n·plane + ho·pitch + wo` of the same pitch. Tap `(ki, kj)` of the window then reads input
/// `q + offsets[ki·kw + kj]` for every output at once, so a convolution is `channels × taps`
/// shifted multiply-adds over long contiguous rows (no taps-times larger column matrix); the
/// positions computed on the way that are no output (`wo ≥ outWidth`, `ho ≥ outHeight`) are dropped
/// when the output is copied out. The zeros are shared: a row's right padding is the next row's
/// left padding and an image's bottom padding the next image's top padding, so only `padding`
/// (not `2·padding`) zero columns and rows per image are computed on the way — 81 instead of
/// 100 positions for an 8×8 image with padding 1.
///
/// The backward pass reuses both kernels: the input gradient of a stride-1 convolution is the
/// convolution of the output gradient, padded by `dilation·(k−1) − padding`, with the weights
/// flipped and transposed; the weight gradient correlates the output gradient (laid out in the
/// input's padded rows) with the padded input.
///
/// Threads: the batch is split into one contiguous image range per thread, each thread's weight
/// gradient summed in a fixed order; with fewer images than threads (batch-1 inference) the output
/// channels of each image are split instead. Every output element is the same sequence of
/// multiply-adds whichever thread or block computes it, so forward results do not depend on the
/// thread count.
struct DirectConvolution {
    /// The padded-row layout of one side of the convolution (the input, or the output gradient in
    /// the backward pass): `channels` planes of `height × width`, a window of
    /// `kernelHeight × kernelWidth` taps.
    struct Layout {
        let channels: Int
        let height: Int
        let width: Int
        let kernelHeight: Int
        let kernelWidth: Int
        let dilation: Int
        let paddingHeight: Int
        let paddingWidth: Int
        /// Tap `t = ki·kw + kj` reads position `q + offsets[t]`.
        let offsets: [Int]

        init(channels: Int, height: Int, width: Int, kernelHeight: Int, kernelWidth: Int, dilation: Int,
             paddingHeight: Int, paddingWidth: Int) {
            self.channels = channels
            self.height = height
            self.width = width
            self.kernelHeight = kernelHeight
            self.kernelWidth = kernelWidth
            self.dilation = dilation
            self.paddingHeight = paddingHeight
            self.paddingWidth = paddingWidth
            let pitch = Self.pitch(width: width, paddingWidth: paddingWidth)
            offsets = (0..<(kernelHeight * kernelWidth)).map { t in
                (t / kernelWidth) * dilation * pitch + (t % kernelWidth) * dilation
            }
        }

        var taps: Int { kernelHeight * kernelWidth }
        /// Floats from one row of an image to the next: the row and the zeros it shares with the
        /// next row (its right padding, that row's left padding).
        var pitch: Int { Self.pitch(width: width, paddingWidth: paddingWidth) }
        static func pitch(width: Int, paddingWidth: Int) -> Int { width + paddingWidth }
        /// Floats from one image to the next: its rows and the zero rows it shares with the next
        /// image (its bottom padding, that image's top padding).
        var plane: Int { (height + paddingHeight) * pitch }
        /// Zeros before the first image's first pixel: the first image's top and left padding.
        var lead: Int { paddingHeight * pitch + paddingWidth }
        var outHeight: Int { height + 2 * paddingHeight - dilation * (kernelHeight - 1) }
        var outWidth: Int { width + 2 * paddingWidth - dilation * (kernelWidth - 1) }

        /// The layout of the transposed convolution (the input gradient's): over `outChannels`
        /// planes of this one's output size, padded by `dilation·(k−1) − padding`.
        func transposed(outChannels: Int) -> Layout {
            Layout(channels: outChannels, height: outHeight, width: outWidth, kernelHeight: kernelHeight,
                   kernelWidth: kernelWidth, dilation: dilation,
                   paddingHeight: dilation * (kernelHeight - 1) - paddingHeight,
                   paddingWidth: dilation * (kernelWidth - 1) - paddingWidth)
        }

        /// Floats of one channel's padded rows for `count` images: the lead, then one plane per
        /// image (the last one's zero rows are the bottom padding). The last computed output reads
        /// up to position `rowLength − 1 − (pitch − outWidth − paddingWidth)`, inside it because
        /// `padding ≤ dilation·(k − 1)` (``DirectConvolution/applies``) keeps output rows within
        /// the pitch.
        func rowLength(images count: Int) -> Int { lead + count * plane }

        /// Output positions the kernels compute for `count` images: up to the last valid output of
        /// the last image (every input they read then lies inside the chunk's padded rows).
        func computedLength(images count: Int) -> Int {
            (count - 1) * plane + (outHeight - 1) * pitch + outWidth
        }

        /// Floats of padded rows for `channels` channels of `count` images and the kernels' slack.
        func floats(channels: Int, images count: Int) -> Int { channels * rowLength(images: count) + DirectConvolution.slack }

        /// Copies images `first ..< first + count` of a CNHW buffer (`channels` planes of `batch`
        /// images) into zero-padded rows, channel c at `destination + c·rowLength(count)`, followed
        /// by ``DirectConvolution/slack`` zeros.
        func pad(_ source: UnsafePointer<Float>, batch: Int, first: Int, count: Int, into destination: UnsafeMutablePointer<Float>) {
            place(source, planes: channels, batch: batch, first: first, count: count, height: height, width: width,
                  at: lead, into: destination)
            (destination + channels * rowLength(images: count)).update(repeating: 0, count: DirectConvolution.slack)
        }

        /// Lays out images `first ..< first + count` of a CNHW buffer of this layout's *output*
        /// size (`rows` planes) at their padded-row positions, zeros elsewhere: the output gradient
        /// as the weight-gradient kernel reads it.
        func embed(_ source: UnsafePointer<Float>, rows: Int, batch: Int, first: Int, count: Int,
                   into destination: UnsafeMutablePointer<Float>) {
            place(source, planes: rows, batch: batch, first: first, count: count, height: outHeight, width: outWidth,
                  at: 0, into: destination)
        }

        /// Zeroes `planes` padded rows of `count` images and copies each image's `height × width`
        /// plane into them, the top-left pixel of image `n` at position `offset + n·plane`.
        private func place(_ source: UnsafePointer<Float>, planes: Int, batch: Int, first: Int, count: Int, height: Int,
                           width: Int, at offset: Int, into destination: UnsafeMutablePointer<Float>) {
            let length = rowLength(images: count)
            for c in 0..<planes {
                let row = destination + c * length
                row.update(repeating: 0, count: length)
                for n in 0..<count {
                    let plane = source + (c * batch + first + n) * height * width
                    let target = row + n * self.plane + offset
                    for h in 0..<height { (target + h * pitch).update(from: plane + h * width, count: width) }
                }
            }
        }

        /// Copies output rows `rows` computed at padded-row positions (row `o` at
        /// `source + (o − rows.lowerBound)·rowLength(count)`) into images `first ..< first + count`
        /// of a CNHW buffer, overwriting or adding.
        func extract(_ source: UnsafePointer<Float>, rows: Range<Int>, batch: Int, first: Int, count: Int,
                     into destination: UnsafeMutablePointer<Float>, accumulate: Bool) {
            let length = rowLength(images: count)
            for o in rows {
                let row = source + (o - rows.lowerBound) * length
                for n in 0..<count {
                    let plane = destination + (o * batch + first + n) * outHeight * outWidth
                    for h in 0..<outHeight {
                        storeOrAdd(row + n * self.plane + h * pitch, plane + h * outWidth, count: outWidth,
                                   accumulate: accumulate)
                    }
                }
            }
        }

        /// `output[o][q] = Σ_c Σ_t weights[o][c][t] · padded[c][q + offsets[t]]` for `rows` rows.
        func convolve(padded: UnsafePointer<Float>, weights: UnsafePointer<Float>, rows: Int, count: Int,
                      output: UnsafeMutablePointer<Float>) {
            offsets.withUnsafeBufferPointer { o in
                naslab_direct_conv(padded, rowLength(images: count), Int32(channels), weights, Int32(rows), Int32(taps),
                                   o.baseAddress, output, rowLength(images: count), computedLength(images: count))
            }
        }

        /// `weightGradient[o][c][t] += Σ_q gradient[o][q] · padded[c][q + offsets[t]]`.
        func correlate(gradient: UnsafePointer<Float>, rows: Int, padded: UnsafePointer<Float>, count: Int,
                       into weightGradient: UnsafeMutablePointer<Float>) {
            offsets.withUnsafeBufferPointer { o in
                naslab_direct_conv_weight_gradient(gradient, rowLength(images: count), Int32(rows), padded,
                                                   rowLength(images: count), Int32(channels), Int32(taps), o.baseAddress,
                                                   computedLength(images: count), weightGradient)
            }
        }
    }

    /// The input side (per group).
    let input: Layout
    /// Output channels per group.
    let outChannels: Int
    let groups: Int
    /// The input gradient's convolution (per group).
    let transposed: Layout

    /// Floats after a padded buffer that the kernels may read (lanes past the last position).
    static let slack = 16
    /// Bumped whenever the kernels change in a way that moves their timings (latency tables record it).
    static let revision = 2
    /// Floats of padded rows per chunk (1 MiB). Measured on NB201 training (16 channels at 32×32):
    /// 2^17 left the weight-gradient kernel with one image per call and the backward pass ~25 %
    /// slower; 2^18–2^20 were alike within the machine's noise.
    static let budget = 1 << 18
    /// Positions per kernel call at least, whatever the budget: the kernels' per-call costs
    /// (horizontal sums, partial last vectors) are per channel pair, so small images with many
    /// channels (512 at 7×7) need many images per call (weight gradient 23 → 83 GFLOP/s from 1 to
    /// 16 such images).
    static let minimumPositions = 2048

    /// Whether the direct kernels compute a convolution: stride 1, a window larger than one pixel
    /// (1×1 convolutions are a GEMM on the input itself), not depthwise (its own kernel), and
    /// padding the transposed convolution of the backward pass can express.
    static func applies(kernelHeight: Int, kernelWidth: Int, stride: Int, paddingHeight: Int, paddingWidth: Int,
                        dilation: Int, inPerGroup: Int, groups: Int) -> Bool {
        stride == 1 && kernelHeight * kernelWidth > 1 && !(inPerGroup == 1 && groups > 1)
            && paddingHeight <= dilation * (kernelHeight - 1) && paddingWidth <= dilation * (kernelWidth - 1)
    }

    /// Whether the output gradient's padded rows (``transposed``) put every output at the position
    /// the weight-gradient kernel reads it from (``Layout/embed``) shifted by their lead: same pitch,
    /// plane and lead — "same" convolutions (output size = input size: 3×3 with padding 1, …).
    let gradientLayoutsCoincide: Bool

    init(input: Layout, outChannels: Int, groups: Int) {
        self.input = input
        self.outChannels = outChannels
        self.groups = groups
        transposed = input.transposed(outChannels: outChannels)
        gradientLayoutsCoincide = transposed.pitch == input.pitch && transposed.plane == input.plane
            && transposed.lead == input.lead
    }

    private var weightsPerGroup: Int { outChannels * input.channels * input.taps }

    /// Images per kernel call for `floatsPerImage` floats of padded rows per image.
    private func chunk(floatsPerImage: Int) -> Int {
        max(ConvolutionLayerChunking.images(budget: Self.budget, perImage: max(1, floatsPerImage)),
            (Self.minimumPositions + input.plane - 1) / input.plane)
    }

    /// Splits the batch into one contiguous image range per thread (one thread for small work).
    private func forEachThread(batch: Int, _ body: (Int, Range<Int>) -> Void) -> Int {
        let work = outChannels * groups * input.channels * input.taps * input.outHeight * input.outWidth * batch
        let threads = work < 1 << 18 ? 1 : min(ComputeContext.current.threads, batch)
        if threads == 1 {
            body(0, 0..<batch)
        } else {
            parallelFor(iterations: threads) { t in
                body(t, (batch * t / threads)..<(batch * (t + 1) / threads))
            }
        }
        return threads
    }

    /// `y = conv(x)` then `epilogue` (bias, a fused batch norm and activation) per output channel.
    /// `splitImages`: split each image's output channels among the threads (fewer images than
    /// threads, enough work).
    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, weights: UnsafePointer<Float>, batch: Int,
                 splitImages: Bool, epilogue: ConvolutionEpilogue?, context: ExecutionContext) {
        let inPlane = batch * input.height * input.width
        let outPlane = input.outHeight * input.outWidth
        let np = batch * outPlane
        let perImage = (input.channels + outChannels) * input.plane
        // Padded input rows and slack, then the output rows.
        func workspace(images: Int) -> Int {
            input.floats(channels: input.channels, images: images) + outChannels * input.rowLength(images: images)
        }
        if splitImages {
            let length = input.rowLength(images: 1)
            context.reserve(threads: 1, workspace: workspace(images: 1), partial: 0)
            let padded = context.workspaces[0].pointer, output = padded + input.channels * length + Self.slack
            let split = GEMMSplit(m: outChannels, n: 0, threads: ComputeContext.current.threads)
            for n in 0..<batch {
                for g in 0..<groups {
                    input.pad(x + g * input.channels * inPlane, batch: batch, first: n, count: 1, into: padded)
                    let yg = y + g * outChannels * np
                    parallelFor(iterations: split.parts) { t in
                        let rows = split.part(t).rows
                        guard !rows.isEmpty else { return }
                        input.convolve(padded: padded, weights: weights + g * weightsPerGroup + rows.lowerBound * input.channels * input.taps,
                                       rows: rows.count, count: 1, output: output + rows.lowerBound * length)
                        input.extract(output + rows.lowerBound * length, rows: rows, batch: batch, first: n, count: 1,
                                      into: yg, accumulate: false)
                        if let epilogue {
                            for o in rows { epilogue.apply(yg + o * np + n * outPlane, channel: g * outChannels + o, count: outPlane) }
                        }
                    }
                }
            }
            return
        }
        let maxChunk = chunk(floatsPerImage: perImage)
        context.reserve(threads: min(ComputeContext.current.threads, batch), workspace: workspace(images: maxChunk), partial: 0)
        _ = forEachThread(batch: batch) { t, images in
            let padded = context.workspaces[t].pointer
            var first = images.lowerBound
            while first < images.upperBound {
                let count = min(maxChunk, images.upperBound - first)
                let output = padded + input.channels * input.rowLength(images: count) + Self.slack
                for g in 0..<groups {
                    input.pad(x + g * input.channels * inPlane, batch: batch, first: first, count: count, into: padded)
                    input.convolve(padded: padded, weights: weights + g * weightsPerGroup, rows: outChannels, count: count, output: output)
                    let yg = y + g * outChannels * np
                    input.extract(output, rows: 0..<outChannels, batch: batch, first: first, count: count, into: yg, accumulate: false)
                    if let epilogue {
                        for o in 0..<outChannels {
                            epilogue.apply(yg + o * np + first * outPlane, channel: g * outChannels + o, count: count * outPlane)
                        }
                    }
                }
                first += count
            }
        }
    }

    /// The weight gradient (overwritten) and, with `dx`, the input gradient (overwritten or added).
    func backward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>?, accumulate: Bool,
                  weights: UnsafePointer<Float>, weightGradient: UnsafeMutablePointer<Float>, batch: Int,
                  context: ExecutionContext) {
        let inPlane = batch * input.height * input.width
        let np = batch * input.outHeight * input.outWidth
        let weightCount = weightsPerGroup * groups
        var flipped = [Float]()
        if dx != nil {
            // Weights of the transposed convolution: [in][out][taps] with the taps reversed.
            let taps = input.taps
            flipped = [Float](repeating: 0, count: weightCount)
            flipped.withUnsafeMutableBufferPointer { buffer in
                for g in 0..<groups {
                    for o in 0..<outChannels {
                        for c in 0..<input.channels {
                            let source = weights + g * weightsPerGroup + (o * input.channels + c) * taps
                            let target = buffer.baseAddress! + g * weightsPerGroup + (c * outChannels + o) * taps
                            for t in 0..<taps { target[taps - 1 - t] = source[t] }
                        }
                    }
                }
            }
        }
        // "Same" convolutions with an input gradient: the padded output gradient, seen from its
        // lead on, is the output gradient at output positions too — one copy serves both kernels.
        let shared = dx != nil && gradientLayoutsCoincide
        let perImage = input.channels * input.plane + (shared ? 0 : outChannels * input.plane)
            + (dx == nil ? 0 : (input.channels + outChannels) * transposed.plane)
        let maxChunk = chunk(floatsPerImage: perImage)
        // Padded input rows and slack, the output gradient at output positions (unless shared); for
        // the input gradient the output gradient's padded rows and slack, then the transposed output rows.
        func gradientFloats(images: Int) -> Int { shared ? 0 : outChannels * input.rowLength(images: images) }
        let workspace = input.floats(channels: input.channels, images: maxChunk) + gradientFloats(images: maxChunk)
            + (dx == nil ? 0 : transposed.floats(channels: outChannels, images: maxChunk)
                + input.channels * transposed.rowLength(images: maxChunk))
        context.reserve(threads: min(ComputeContext.current.threads, batch), workspace: workspace, partial: weightCount)
        let threads = flipped.withUnsafeBufferPointer { flippedWeights in
            forEachThread(batch: batch) { t, images in
                let ws = context.workspaces[t].pointer
                let dw = context.partials[t].pointer
                dw.update(repeating: 0, count: weightCount)
                var first = images.lowerBound
                while first < images.upperBound {
                    let count = min(maxChunk, images.upperBound - first)
                    let padded = ws
                    let gradient = padded + input.channels * input.rowLength(images: count) + Self.slack
                    let paddedGradient = gradient + gradientFloats(images: count)
                    let inputGradient = paddedGradient + outChannels * transposed.rowLength(images: count) + Self.slack
                    for g in 0..<groups {
                        let dyg = dy + g * outChannels * np
                        input.pad(x + g * input.channels * inPlane, batch: batch, first: first, count: count, into: padded)
                        if shared {
                            transposed.pad(dyg, batch: batch, first: first, count: count, into: paddedGradient)
                        } else {
                            input.embed(dyg, rows: outChannels, batch: batch, first: first, count: count, into: gradient)
                        }
                        input.correlate(gradient: shared ? paddedGradient + transposed.lead : gradient, rows: outChannels,
                                        padded: padded, count: count, into: dw + g * weightsPerGroup)
                        guard let dx else { continue }
                        if !shared { transposed.pad(dyg, batch: batch, first: first, count: count, into: paddedGradient) }
                        transposed.convolve(padded: paddedGradient, weights: flippedWeights.baseAddress! + g * weightsPerGroup,
                                            rows: input.channels, count: count, output: inputGradient)
                        transposed.extract(inputGradient, rows: 0..<input.channels, batch: batch, first: first, count: count,
                                           into: dx + g * input.channels * inPlane, accumulate: accumulate)
                    }
                    first += count
                }
            }
        }
        context.sumPartials(threads: threads, count: weightCount, into: weightGradient)
    }

    /// The instruction set the direct kernels use on this CPU ("avx512", "avx2" or "baseline").
    static var instructionSet: String { String(cString: naslab_kernel_isa()) }
}
