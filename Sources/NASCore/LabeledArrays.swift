/// A labelled set of samples held in memory: the hand-off between data loaders and the engine.
///
/// `features` holds `count` samples of `sampleShape` each, sample-major
/// (sample i occupies `features[i * sampleShape.elementCount ..< (i + 1) * sampleShape.elementCount]`,
/// each sample in C×H×W order). `labels[i]` is in `0..<classCount`.
///
/// Dense tasks carry their targets next to the per-sample label:
/// - `masks` (segmentation): one class id per pixel, `count × H × W` sample-major, where H×W is the
///   sample's spatial size; 0 is background and `1 + k` object class `k` (so ids are in
///   `0...classCount`). ``ignoreIndex`` marks pixels the loss and the metrics skip.
/// - `boxes` (detection): every object of every sample, ``ObjectBox/image`` naming the sample.
///
/// For scenes, `labels[i]` is the sample's *dominant* object class (the class owning the most
/// visible pixels; 0 for an empty scene): it stratifies the train/validation/test splits.
public struct LabeledArrays: Sendable, Equatable {
    public var features: [Float]
    public var labels: [Int32]
    public var sampleShape: FeatureShape
    /// Object classes (background excluded for masks and boxes).
    public var classCount: Int
    /// Segmentation targets (`count × H × W` class ids), if the data has them.
    public var masks: [Int32]?
    /// Detection targets, if the data has them.
    public var boxes: [ObjectBox]?

    /// The mask value the segmentation loss and metrics skip (PyTorch's default `ignore_index`).
    public static let ignoreIndex: Int32 = -100

    public init(features: [Float], labels: [Int32], sampleShape: FeatureShape, classCount: Int,
                masks: [Int32]? = nil, boxes: [ObjectBox]? = nil) {
        precondition(features.count == labels.count * sampleShape.elementCount, "features and labels disagree")
        precondition(masks == nil || masks!.count == labels.count * sampleShape.height * sampleShape.width,
                     "masks must hold one class id per pixel of every sample")
        self.features = features
        self.labels = labels
        self.sampleShape = sampleShape
        self.classCount = classCount
        self.masks = masks
        self.boxes = boxes
    }

    public var count: Int { labels.count }

    /// Pixels per mask (the sample's height × width).
    public var pixelsPerSample: Int { sampleShape.height * sampleShape.width }

    /// The boxes of each sample (empty arrays for samples without objects); `nil` without boxes.
    public var boxesBySample: [[ObjectBox]]? {
        guard let boxes else { return nil }
        var out = [[ObjectBox]](repeating: [], count: count)
        for b in boxes where b.image >= 0 && b.image < count { out[b.image].append(b) }
        return out
    }

    /// The samples at `indices`, in that order (masks and boxes follow; box image indices are renumbered).
    public func subset(_ indices: [Int]) -> LabeledArrays {
        let n = sampleShape.elementCount
        var f = [Float]()
        f.reserveCapacity(indices.count * n)
        var l = [Int32]()
        l.reserveCapacity(indices.count)
        for i in indices {
            f.append(contentsOf: features[i * n ..< (i + 1) * n])
            l.append(labels[i])
        }
        var m: [Int32]?
        if let masks {
            let p = pixelsPerSample
            var out = [Int32]()
            out.reserveCapacity(indices.count * p)
            for i in indices { out.append(contentsOf: masks[i * p ..< (i + 1) * p]) }
            m = out
        }
        var b: [ObjectBox]?
        if let bySample = boxesBySample {
            var out = [ObjectBox]()
            for (newIndex, i) in indices.enumerated() {
                for var box in bySample[i] { box.image = newIndex; out.append(box) }
            }
            b = out
        }
        return LabeledArrays(features: f, labels: l, sampleShape: sampleShape, classCount: classCount, masks: m, boxes: b)
    }
}

/// One object of a detection dataset or prediction: an axis-aligned box in pixels with `x2`/`y2`
/// exclusive (a one-pixel item at column 3 has `x1 = 3, x2 = 4`), its class (0-based, background
/// excluded) and, for predictions, a score.
public struct ObjectBox: Hashable, Codable, Sendable {
    /// The sample (image) the box belongs to.
    public var image: Int
    public var classID: Int
    public var x1: Float
    public var y1: Float
    public var x2: Float
    public var y2: Float
    /// Confidence of a predicted box (1 for ground truth).
    public var score: Float

    public init(image: Int, classID: Int, x1: Float, y1: Float, x2: Float, y2: Float, score: Float = 1) {
        self.image = image
        self.classID = classID
        self.x1 = x1
        self.y1 = y1
        self.x2 = x2
        self.y2 = y2
        self.score = score
    }

    public var width: Float { x2 - x1 }
    public var height: Float { y2 - y1 }
    public var area: Float { max(0, width) * max(0, height) }

    /// Intersection over union with `other` (0 when either box is empty).
    public func iou(_ other: ObjectBox) -> Float {
        let w = min(x2, other.x2) - max(x1, other.x1)
        let h = min(y2, other.y2) - max(y1, other.y1)
        guard w > 0, h > 0 else { return 0 }
        let inter = w * h
        let union = area + other.area - inter
        return union > 0 ? inter / union : 0
    }
}
