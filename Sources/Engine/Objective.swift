#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NASCore

/// What a network's output is trained against: one loss per task, computed on the engine's
/// channel-major output buffer (`[C][N][H][W]`), with the targets of `LabeledArrays`.
///
/// - `classification`: softmax cross-entropy on flat logits (K×1×1), one class index per sample
///   (`labels`), optional label smoothing. Statistic: correct samples.
/// - `segmentation`: per-pixel softmax cross-entropy on (K+1)×H×W logits whose H×W is the input's;
///   channel 0 is background, channel `1 + k` object class `k` (the ids of `masks`); pixels equal to
///   `LabeledArrays.ignoreIndex` are skipped; the loss is the mean over the counted pixels
///   (PyTorch's `cross_entropy(..., ignore_index=-100)`). Statistic: correctly labelled pixels.
/// - `detection`: CenterNet (Zhou et al. 2019, "Objects as Points") on (K+4)×(H/R)×(W/R) outputs,
///   see ``CenterNet``. Statistic: none (the training accuracy of a detector is not defined).
public enum Objective: Hashable, Sendable, CustomStringConvertible {
    case classification
    case segmentation
    case detection(CenterNet)

    /// The objective of `task`'s networks (CenterNet with its documented defaults for detection).
    public init(task: TaskKind) {
        switch task {
        case .imageClassification, .textClassification, .tabularClassification: self = .classification
        case .segmentation: self = .segmentation
        case .detection: self = .detection(CenterNet())
        }
    }

    public var description: String {
        switch self {
        case .classification: return "softmax cross-entropy"
        case .segmentation: return "per-pixel softmax cross-entropy"
        case .detection: return "CenterNet focal + L1"
        }
    }

    /// Sets the objective's starting values of the network's output layer: for detection the
    /// heatmap channels' biases start at −log((1 − π)/π) with π = `CenterNet.heatmapPrior` (the
    /// focal-loss prior of Lin et al. 2017 that CenterNet uses, so the many background positions
    /// do not swamp the first steps); classification and segmentation keep the initializer's values.
    public func initializeOutput(_ network: Network, classCount: Int) throws {
        switch self {
        case .classification, .segmentation:
            return
        case .detection:
            let name = network.graph.nodes[network.graph.output].name + "/bias"
            guard let bias = network.tensor(named: name), bias.count == classCount + CenterNet.regressionChannels else {
                throw EngineError.shapeMismatch("detection needs a biased output layer with \(classCount + CenterNet.regressionChannels) channels ('\(name)')")
            }
            var values = bias.values
            let prior = Float(-log((1 - CenterNet.heatmapPrior) / CenterNet.heatmapPrior))
            for k in 0..<classCount { values[k] = prior }
            bias.values = values
        }
    }

    /// The output shape a network trained with this objective must have, for `classCount` object
    /// classes and `inputShape` inputs (detection: any integer stride `R`; the expected shape at
    /// stride 4 is named in the error).
    public func checkOutput(_ output: FeatureShape, input: FeatureShape, classCount: Int) throws {
        switch self {
        case .classification:
            guard output.height == 1, output.width == 1 else {
                throw EngineError.shapeMismatch("the loss needs flat logits, network output is \(output)")
            }
        case .segmentation:
            guard output.channels == classCount + 1, output.height == input.height, output.width == input.width else {
                throw EngineError.shapeMismatch("segmentation needs \(classCount + 1)x\(input.height)x\(input.width) logits "
                    + "(background + \(classCount) classes at the input resolution), network output is \(output)")
            }
        case .detection:
            let stride = output.height > 0 ? input.height / output.height : 0
            guard output.channels == classCount + CenterNet.regressionChannels, stride >= 1,
                  output.height * stride == input.height, output.width * stride == input.width else {
                throw EngineError.shapeMismatch("detection needs \(classCount + CenterNet.regressionChannels)x(H/R)x(W/R) outputs "
                    + "(\(classCount) heatmaps + size + offset at an integer stride R), network output is \(output) for input \(input)")
            }
        }
    }

    /// Checks that `data` carries this objective's targets for `network`.
    func check(_ data: LabeledArrays, for network: Network) throws {
        guard data.sampleShape == network.inputShape else {
            throw EngineError.shapeMismatch("data samples are \(data.sampleShape), network input is \(network.inputShape)")
        }
        switch self {
        case .classification:
            try checkOutput(network.outputShape, input: network.inputShape, classCount: network.outputShape.channels)
            let k = network.outputShape.elementCount
            if let bad = data.labels.firstIndex(where: { $0 < 0 || Int($0) >= k }) {
                throw EngineError.labelOutOfRange(index: bad, label: data.labels[bad], classCount: k)
            }
        case .segmentation:
            try checkOutput(network.outputShape, input: network.inputShape, classCount: data.classCount)
            guard let masks = data.masks else { throw EngineError.shapeMismatch("segmentation needs masks; the data has none") }
            if let bad = masks.firstIndex(where: { ($0 < 0 || Int($0) > data.classCount) && $0 != LabeledArrays.ignoreIndex }) {
                throw EngineError.labelOutOfRange(index: bad, label: masks[bad], classCount: data.classCount + 1)
            }
        case .detection:
            try checkOutput(network.outputShape, input: network.inputShape, classCount: data.classCount)
            guard let boxes = data.boxes else { throw EngineError.shapeMismatch("detection needs boxes; the data has none") }
            if let bad = boxes.firstIndex(where: { $0.classID < 0 || $0.classID >= data.classCount }) {
                throw EngineError.labelOutOfRange(index: bad, label: Int32(boxes[bad].classID), classCount: data.classCount)
            }
        }
    }
}

/// Loss and statistic of one batch: `correct` of `counted` samples (classification) or pixels
/// (segmentation) were right; detection counts nothing.
public struct BatchStatistics: Hashable, Sendable {
    public var loss: Float
    public var correct: Int
    public var counted: Int
}

// MARK: - Losses on the network's output buffer

extension Network {
    /// Loss (and, when `gradient`, ∂loss/∂output into the output's gradient buffer) of the last
    /// forward pass on samples `indices` of `data`. `boxes` is `data.boxesBySample`, grouped once
    /// by the caller rather than for every batch (needed for detection only).
    func objectiveLoss(_ objective: Objective, data: LabeledArrays, boxes: [[ObjectBox]]?, indices: ArraySlice<Int>,
                       labelSmoothing: Float, gradient: Bool) -> BatchStatistics {
        let out = activations[graph.output].pointer
        let grad = gradient ? gradients[graph.output].pointer : nil
        let shape = outputShape
        switch objective {
        case .classification:
            var labels = [Int32]()
            labels.reserveCapacity(indices.count)
            for i in indices { labels.append(data.labels[i]) }
            let (loss, correct) = labels.withUnsafeBufferPointer {
                softmaxCrossEntropyChannelMajor(logits: out, classes: shape.channels, batch: batchSize, labels: $0,
                                                labelSmoothing: labelSmoothing, gradient: grad)
            }
            return BatchStatistics(loss: loss, correct: correct, counted: indices.count)
        case .segmentation:
            let p = data.pixelsPerSample
            var labels = [Int32]()
            labels.reserveCapacity(indices.count * p)
            data.masks!.withUnsafeBufferPointer { m in
                for i in indices { labels.append(contentsOf: m[i * p ..< (i + 1) * p]) }
            }
            return labels.withUnsafeBufferPointer {
                pixelCrossEntropyChannelMajor(logits: out, classes: shape.channels, positions: batchSize * p, labels: $0,
                                              gradient: grad)
            }
        case let .detection(head):
            let bySample = boxes!
            let targets = head.targets(boxes: indices.map { bySample[$0] }, classCount: data.classCount,
                                       outputHeight: shape.height, outputWidth: shape.width,
                                       stride: inputShape.height / shape.height)
            return head.loss(output: out, batch: batchSize, classCount: data.classCount,
                             height: shape.height, width: shape.width, targets: targets, gradient: grad)
        }
    }

    /// One training step on samples `indices` of `data`: forward (training mode), the objective's
    /// loss, backward. The optimizer is not called.
    func trainStep(_ objective: Objective, data: LabeledArrays, boxes: [[ObjectBox]]?, indices: ArraySlice<Int>,
                   labelSmoothing: Float) -> BatchStatistics {
        loadInput(data, indices: indices)
        runForward(training: true)
        let s = objectiveLoss(objective, data: data, boxes: boxes, indices: indices, labelSmoothing: labelSmoothing, gradient: true)
        runBackward(inputGradient: false)
        return s
    }

    /// The objective's loss and statistic on samples `indices` of `data` — one training step
    /// without the optimizer: forward in training mode, the loss, backward. Afterwards every
    /// parameter's `gradient` holds ∂loss/∂parameter and `outputGradient(ofNode:)` of the output
    /// node holds ∂loss/∂output (NCHW). What `Trainer` does per batch, public so that the dense
    /// losses can be checked against references (`lossAndGradients` is classification-only).
    ///
    /// - Throws: `EngineError` when `data` does not carry the objective's targets for this
    ///   network (`Objective` checks) or an index is out of range.
    @discardableResult
    public func loss(_ objective: Objective, on data: LabeledArrays, indices: [Int], labelSmoothing: Float = 0) throws -> BatchStatistics {
        try objective.check(data, for: self)
        guard !indices.isEmpty else { throw EngineError.invalidConfiguration("no samples to compute the loss on") }
        if let bad = indices.first(where: { $0 < 0 || $0 >= data.count }) {
            throw EngineError.invalidConfiguration("sample index \(bad) is out of range 0..<\(data.count)")
        }
        return trainStep(objective, data: data, boxes: data.boxesBySample, indices: indices[...], labelSmoothing: labelSmoothing)
    }

    /// Runs the network in evaluation mode over `data` in batches and hands each batch's output
    /// (NCHW, `[batch, C, H, W]`) with the batch's first sample index to `body`.
    public func predictBatches(_ data: LabeledArrays, batchSize: Int = 256, _ body: (Int, Tensor) throws -> Void) throws {
        guard data.sampleShape == inputShape else {
            throw EngineError.shapeMismatch("data samples are \(data.sampleShape), network input is \(inputShape)")
        }
        var start = 0
        while start < data.count {
            let end = min(data.count, start + batchSize)
            loadInput(data, indices: Array(start..<end)[...])
            runForward(training: false)
            try body(start, tensor(fromChannelMajor: activations[graph.output], shape: outputShape))
            start = end
        }
    }
}

/// Per-position softmax cross-entropy on channel-major logits `[classes, positions]`: the mean
/// over positions whose label is not `LabeledArrays.ignoreIndex`; writes ∂(mean)/∂logits (zero
/// at ignored positions) when `gradient` is given.
func pixelCrossEntropyChannelMajor(logits: UnsafePointer<Float>, classes: Int, positions: Int,
                                   labels: UnsafeBufferPointer<Int32>, gradient: UnsafeMutablePointer<Float>?) -> BatchStatistics {
    var counted = 0
    for l in labels where l != LabeledArrays.ignoreIndex { counted += 1 }
    let scale = counted > 0 ? 1 / Double(counted) : 0
    var total = 0.0
    var correct = 0
    var z = [Double](repeating: 0, count: classes)
    for n in 0..<positions {
        let label = labels[n]
        guard label != LabeledArrays.ignoreIndex else {
            if let gradient { for k in 0..<classes { gradient[k * positions + n] = 0 } }
            continue
        }
        var maxValue = -Double.infinity
        var argmax = 0
        for k in 0..<classes {
            z[k] = Double(logits[k * positions + n])
            if z[k] > maxValue { maxValue = z[k]; argmax = k }
        }
        if argmax == Int(label) { correct += 1 }
        var sum = 0.0
        for k in 0..<classes { sum += exp(z[k] - maxValue) }
        let logSum = maxValue + log(sum)
        total += logSum - z[Int(label)]
        if let gradient {
            for k in 0..<classes {
                let p = exp(z[k] - logSum)
                gradient[k * positions + n] = Float((p - (k == Int(label) ? 1 : 0)) * scale)
            }
        }
    }
    return BatchStatistics(loss: Float(total * scale), correct: correct, counted: counted)
}

// MARK: - CenterNet

/// The CenterNet detection head's loss, targets and decoding ("Objects as Points", Zhou et al. 2019).
///
/// Output channels at stride `R` (input size / output size): `0..<K` centre-heatmap logits, one per
/// class (sigmoid); `K`, `K+1` box width and height in output cells; `K+2`, `K+3` the sub-cell
/// offset of the centre (x, y).
///
/// Targets: each box's centre `c = ((x1+x2)/2, (y1+y2)/2) / R` falls in cell `⌊c⌋`; its class's
/// heatmap gets a Gaussian peak there (radius from CornerNet's `gaussian_radius` with minimum
/// overlap 0.7, σ = (2r+1)/6, overlapping peaks take the maximum); size `(w, h)/R` and offset
/// `c − ⌊c⌋` are regressed at that cell only.
///
/// Loss: the penalty-reduced focal loss (α = 2, β = 4) summed over all heatmap positions, plus
/// 0.1 × L1 of the size and 1 × L1 of the offset at object cells, all divided by the number of
/// objects in the batch (at least 1).
///
/// Decoding: sigmoid heatmap; a position is a peak when it equals the maximum of its 3×3
/// neighbourhood (max-pool NMS); the `topK` (100) highest peaks with score ≥ `scoreThreshold`
/// (0.01) become boxes `(c ± size/2) · R`, clipped to the image; a peak whose box is empty (zero
/// predicted size, or nothing left after clipping) is dropped.
public struct CenterNet: Hashable, Sendable, Codable {
    /// Size (2) and offset (2) channels after the K heatmaps.
    public static let regressionChannels = 4
    /// The heatmap probability every position starts at (see `Objective.initializeOutput`).
    public static let heatmapPrior = 0.1
    public var alpha: Double = 2
    public var beta: Double = 4
    public var sizeWeight: Double = 0.1
    public var offsetWeight: Double = 1
    public var minimumOverlap: Double = 0.7
    public var scoreThreshold: Float = 0.01
    public var topK: Int = 100

    public init() {}

    /// Dense targets of one batch at the output resolution.
    public struct Targets {
        /// `[K][N][H][W]` (channel-major, like the output).
        public internal(set) var heatmap: [Float]
        /// One entry per object: its cell (n, y, x) and regression targets.
        public internal(set) var objects: [(n: Int, y: Int, x: Int, width: Float, height: Float, dx: Float, dy: Float)]
    }

    /// CornerNet's radius of a Gaussian peak for a box of `height` × `width` output cells such that
    /// a box shifted within it keeps IoU ≥ `minimumOverlap` with the truth.
    public func gaussianRadius(height: Double, width: Double) -> Double {
        let o = minimumOverlap
        let b1 = height + width, c1 = width * height * (1 - o) / (1 + o)
        let r1 = (b1 + (b1 * b1 - 4 * c1).squareRoot()) / 2
        let b2 = 2 * (height + width), c2 = (1 - o) * width * height
        let r2 = (b2 + (b2 * b2 - 16 * c2).squareRoot()) / 2
        let a3 = 4 * o, b3 = -2 * o * (height + width), c3 = (o - 1) * width * height
        let r3 = (b3 + (b3 * b3 - 4 * a3 * c3).squareRoot()) / 2
        return min(r1, r2, r3)
    }

    /// The targets of a batch whose samples have `boxes` (in input pixels).
    public func targets(boxes: [[ObjectBox]], classCount: Int, outputHeight h: Int, outputWidth w: Int, stride: Int) -> Targets {
        let n = boxes.count
        var heatmap = [Float](repeating: 0, count: classCount * n * h * w)
        var objects = [(n: Int, y: Int, x: Int, width: Float, height: Float, dx: Float, dy: Float)]()
        let r = Float(stride)
        for (s, list) in boxes.enumerated() {
            for b in list {
                let bw = b.width / r, bh = b.height / r
                guard bw > 0, bh > 0 else { continue }
                let cx = (b.x1 + b.x2) / 2 / r, cy = (b.y1 + b.y2) / 2 / r
                let ix = min(w - 1, max(0, Int(cx.rounded(.down)))), iy = min(h - 1, max(0, Int(cy.rounded(.down))))
                let radius = max(0, Int(gaussianRadius(height: Double(bh.rounded(.up)), width: Double(bw.rounded(.up)))))
                let sigma = Double(2 * radius + 1) / 6
                let base = (b.classID * n + s) * h * w
                for y in max(0, iy - radius)...min(h - 1, iy + radius) {
                    for x in max(0, ix - radius)...min(w - 1, ix + radius) {
                        let d2 = Double((x - ix) * (x - ix) + (y - iy) * (y - iy))
                        let g = Float(exp(-d2 / (2 * sigma * sigma)))
                        if g > heatmap[base + y * w + x] { heatmap[base + y * w + x] = g }
                    }
                }
                objects.append((s, iy, ix, bw, bh, cx - Float(ix), cy - Float(iy)))
            }
        }
        return Targets(heatmap: heatmap, objects: objects)
    }

    /// The loss of channel-major `output` (`[K+4][N][H][W]`) against `targets`; writes ∂loss/∂output
    /// into `gradient` when given.
    func loss(output: UnsafePointer<Float>, batch n: Int, classCount k: Int, height h: Int, width w: Int,
              targets: Targets, gradient: UnsafeMutablePointer<Float>?) -> BatchStatistics {
        let plane = n * h * w
        let norm = 1 / Double(max(1, targets.objects.count))
        var total = 0.0
        for i in 0..<(k * plane) {
            let z = Double(output[i])
            let y = Double(targets.heatmap[i])
            // log σ(z) and log(1 − σ(z)), stable for large |z|.
            let logP = z >= 0 ? -log1p(exp(-z)) : z - log1p(exp(z))
            let log1mP = logP - z
            let p = exp(logP)
            let q = 1 - p
            if y >= 1 {
                total -= pow(q, alpha) * logP
                if let gradient { gradient[i] = Float((alpha * pow(q, alpha) * p * logP - pow(q, alpha + 1)) * norm) }
            } else {
                let wNeg = pow(1 - y, beta)
                total -= wNeg * pow(p, alpha) * log1mP
                if let gradient { gradient[i] = Float(-wNeg * (alpha * pow(p, alpha) * q * log1mP - pow(p, alpha + 1)) * norm) }
            }
        }
        if let gradient { (gradient + k * plane).update(repeating: 0, count: Self.regressionChannels * plane) }
        for o in targets.objects {
            let cell = (o.n * h + o.y) * w + o.x
            let pairs: [(channel: Int, target: Float, weight: Double)] = [
                (k, o.width, sizeWeight), (k + 1, o.height, sizeWeight), (k + 2, o.dx, offsetWeight), (k + 3, o.dy, offsetWeight),
            ]
            for (channel, target, weight) in pairs {
                let d = Double(output[channel * plane + cell] - target)
                total += weight * abs(d)
                if let gradient { gradient[channel * plane + cell] += Float(weight * (d > 0 ? 1 : d < 0 ? -1 : 0) * norm) }
            }
        }
        return BatchStatistics(loss: Float(total * norm), correct: 0, counted: 0)
    }

    /// Boxes (in input pixels, clipped to `imageHeight` × `imageWidth`) of one sample's output
    /// `[K+4, H, W]` (NCHW values of one sample), best score first.
    public func decode(sample: UnsafeBufferPointer<Float>, classCount k: Int, height h: Int, width w: Int, stride: Int,
                       image: Int, imageHeight: Int, imageWidth: Int) -> [ObjectBox] {
        let plane = h * w
        var peaks = [(score: Float, c: Int, y: Int, x: Int)]()
        for c in 0..<k {
            for y in 0..<h {
                for x in 0..<w {
                    let z = sample[c * plane + y * w + x]
                    var isPeak = true
                    neighbourhood: for yy in max(0, y - 1)...min(h - 1, y + 1) {
                        for xx in max(0, x - 1)...min(w - 1, x + 1) where sample[c * plane + yy * w + xx] > z {
                            isPeak = false
                            break neighbourhood
                        }
                    }
                    guard isPeak else { continue }
                    let score = Float(1 / (1 + exp(-Double(z))))
                    if score >= scoreThreshold { peaks.append((score, c, y, x)) }
                }
            }
        }
        // Highest score first; ties by class, then position (deterministic).
        peaks.sort { ($0.score, -$0.c, -$0.y, -$0.x) > ($1.score, -$1.c, -$1.y, -$1.x) }
        let r = Float(stride)
        // A peak whose predicted size is zero (or clipped away) has no box: it is dropped before
        // the top-K cut, so it takes no slot.
        return peaks.lazy.compactMap { p -> ObjectBox? in
            let cell = p.y * w + p.x
            let bw = max(0, sample[k * plane + cell]), bh = max(0, sample[(k + 1) * plane + cell])
            let cx = Float(p.x) + sample[(k + 2) * plane + cell], cy = Float(p.y) + sample[(k + 3) * plane + cell]
            func clip(_ v: Float, _ limit: Int) -> Float { min(Float(limit), max(0, v)) }
            let box = ObjectBox(image: image, classID: p.c,
                                x1: clip((cx - bw / 2) * r, imageWidth), y1: clip((cy - bh / 2) * r, imageHeight),
                                x2: clip((cx + bw / 2) * r, imageWidth), y2: clip((cy + bh / 2) * r, imageHeight),
                                score: p.score)
            return box.x2 > box.x1 && box.y2 > box.y1 ? box : nil
        }.prefix(topK).map { $0 }
    }
}

// MARK: - Dense predictions

extension Network {
    /// The predicted class id of every pixel (arg-max over the background + class channels;
    /// ties to the lower id) of a segmentation network: `count × H × W`, sample-major.
    public func predictMasks(_ data: LabeledArrays, batchSize: Int = 256) throws -> [Int32] {
        let shape = outputShape
        let plane = shape.height * shape.width
        var masks = [Int32]()
        masks.reserveCapacity(data.count * plane)
        try predictBatches(data, batchSize: batchSize) { _, output in
            let n = output.shape[0]
            output.values.withUnsafeBufferPointer { v in
                for s in 0..<n {
                    let base = s * shape.channels * plane
                    for p in 0..<plane {
                        var best = 0
                        var bestValue = v[base + p]
                        for k in 1..<shape.channels where v[base + k * plane + p] > bestValue {
                            best = k
                            bestValue = v[base + k * plane + p]
                        }
                        masks.append(Int32(best))
                    }
                }
            }
        }
        return masks
    }

    /// The boxes a detection network finds in every sample (``CenterNet/decode``), image indices
    /// in `data`'s order; `classCount` object classes.
    public func predictBoxes(_ data: LabeledArrays, head: CenterNet = CenterNet(), classCount: Int,
                             batchSize: Int = 256) throws -> [ObjectBox] {
        try Objective.detection(head).checkOutput(outputShape, input: inputShape, classCount: classCount)
        let shape = outputShape
        let stride = inputShape.height / shape.height
        let per = shape.elementCount
        var boxes = [ObjectBox]()
        try predictBatches(data, batchSize: batchSize) { first, output in
            output.values.withUnsafeBufferPointer { v in
                for s in 0..<output.shape[0] {
                    boxes += head.decode(sample: UnsafeBufferPointer(rebasing: v[(s * per)..<((s + 1) * per)]), classCount: classCount,
                                         height: shape.height, width: shape.width, stride: stride, image: first + s,
                                         imageHeight: inputShape.height, imageWidth: inputShape.width)
                }
            }
        }
        return boxes
    }
}
