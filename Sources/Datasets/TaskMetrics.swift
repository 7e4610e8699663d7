import NASCore

/// Segmentation metrics from a confusion matrix of mask ids (pure Swift, no engine dependency).
///
/// Mask ids are `0..<classCount` with `classCount = objectClasses + 1` (0 = background, `1 + k` =
/// object class k). Pixels whose *true* id is `ignoreIndex` (``LabeledArrays/ignoreIndex``, −100)
/// are skipped. A predicted id outside `0..<classCount` counts as wrong (it is no class).
///
/// Definitions (over all pixels added so far, not averaged per image):
/// - `pixelAccuracy` = correctly predicted pixels / counted pixels (0 with no counted pixel);
/// - IoU of class c = TP / (TP + FP + FN), TP = true c predicted c, FP = predicted c but true ≠ c,
///   FN = true c predicted ≠ c. A class **present in the ground truth** but never predicted has
///   IoU 0; a class **absent from the ground truth** has no IoU (`nil` in `perClassIoU`, even if
///   it was predicted — its false positives still lower the IoU of the true classes via their FN)
///   and is left out of the means;
/// - `meanIoU`: mean IoU over classes present in the ground truth, background included;
/// - `meanIoUExcludingBackground`: the same over object classes (ids ≥ 1) only.
///   Both are 0 when no class is present.
public struct SegmentationMetrics: Sendable, Equatable {
    /// Mask ids, background included (object classes + 1).
    public let classCount: Int
    /// `confusion[t * (classCount + 1) + p]`: pixels of true id `t` predicted `p`; column
    /// `classCount` counts predictions outside `0..<classCount`.
    public private(set) var confusion: [Int]

    /// An empty matrix for `objectClasses` object classes (ids `0...objectClasses`).
    public init(objectClasses: Int) {
        precondition(objectClasses >= 0)
        classCount = objectClasses + 1
        confusion = [Int](repeating: 0, count: classCount * (classCount + 1))
    }

    /// The metrics of `predicted` against `truth` (same length, any number of images).
    public init(predicted: [Int32], truth: [Int32], objectClasses: Int, ignoreIndex: Int32 = LabeledArrays.ignoreIndex) {
        self.init(objectClasses: objectClasses)
        add(predicted: predicted, truth: truth, ignoreIndex: ignoreIndex)
    }

    /// Adds pixels. Every true id must be in `0..<classCount` or `ignoreIndex`.
    public mutating func add(predicted: [Int32], truth: [Int32], ignoreIndex: Int32 = LabeledArrays.ignoreIndex) {
        precondition(predicted.count == truth.count, "predicted and true masks differ in size")
        let n = classCount, stride = classCount + 1
        confusion.withUnsafeMutableBufferPointer { m in
            for i in truth.indices {
                let t = truth[i]
                if t == ignoreIndex { continue }
                precondition(t >= 0 && Int(t) < n, "true mask id \(t) outside 0..<\(n)")
                let p = predicted[i]
                let column = p >= 0 && Int(p) < n ? Int(p) : n
                m[Int(t) * stride + column] += 1
            }
        }
    }

    /// Pixels of true id `t` predicted `p` (`p == classCount`: an invalid prediction).
    public func count(truth t: Int, predicted p: Int) -> Int { confusion[t * (classCount + 1) + p] }

    /// Counted (non-ignored) pixels.
    public var pixelCount: Int { confusion.reduce(0, +) }

    public var pixelAccuracy: Double {
        let total = pixelCount
        guard total > 0 else { return 0 }
        return Double((0..<classCount).reduce(0) { $0 + count(truth: $1, predicted: $1) }) / Double(total)
    }

    /// IoU per mask id; `nil` for ids absent from the ground truth.
    public var perClassIoU: [Double?] {
        (0..<classCount).map { c in
            let truthCount = (0...classCount).reduce(0) { $0 + count(truth: c, predicted: $1) }
            guard truthCount > 0 else { return nil }
            let tp = count(truth: c, predicted: c)
            let fp = (0..<classCount).reduce(0) { $1 == c ? $0 : $0 + count(truth: $1, predicted: c) }
            return Double(tp) / Double(truthCount + fp)
        }
    }

    public var meanIoU: Double { Self.mean(perClassIoU) }
    public var meanIoUExcludingBackground: Double { Self.mean(Array(perClassIoU.dropFirst())) }

    static func mean(_ values: [Double?]) -> Double {
        let present = values.compactMap { $0 }
        return present.isEmpty ? 0 : present.reduce(0, +) / Double(present.count)
    }
}

/// Object-detection metrics: COCO's bounding-box evaluation exactly as pycocotools' `COCOeval`
/// (`iouType="bbox"`) computes it, plus PASCAL VOC's all-point AP at IoU 0.5.
///
/// Boxes are ``ObjectBox``es (x1, y1, x2, y2 with x2/y2 exclusive); as in COCO a box is
/// `[x1, y1, w = x2 − x1, h = y2 − y1]` (no +1) and the IoU is pycocotools' `bbIou` in Double.
/// `image` groups boxes into images (any integers); `classID` in `0..<classCount` (other classes are
/// ignored, like detections of categories without an entry in the ground truth's categories).
///
/// **COCO** (`map`, `map50`, `map75`, `perClassAP`): per image and class, detections sorted by score
/// (descending; ties keep input order), the first ``maxDetections`` (100) kept — per image *and
/// class*, as pycocotools does. At each IoU threshold of ``iouThresholds`` (0.50:0.05:0.95, as
/// `np.linspace(.5, .95, 10)`), each detection in turn takes the not yet matched ground-truth box of
/// highest IoU ≥ the threshold (an equal IoU goes to the later box). Area range "all", no crowd
/// boxes. Per class, the detections of all images are ranked by score; precision is made monotone
/// (non-increasing from the right) and read at the 101 recall points ``recallThresholds``
/// (`np.linspace(0, 1, 101)`, first rank reaching each; 0 beyond the last recall). AP = mean over
/// recall points; `map` = mean over IoU thresholds and over classes **with ground truth** (classes
/// without any are left out, pycocotools' −1); `map50` / `map75` at the single thresholds 0.5 / 0.75.
/// With no ground-truth box at all the means are 0 (pycocotools reports −1).
///
/// **VOC** (`map50VOC`): PASCAL VOC 2010+ AP per class with all-point interpolation: detections of
/// all images ranked by score; each is a true positive when its highest-IoU ground-truth box in its
/// image has IoU > 0.5 (strict, as VOC) and is not yet taken, else a false positive; AP = area under
/// the monotone precision envelope of the recall steps. Same IoU (no +1), no "difficult" boxes,
/// no detection cap, mean over classes with ground truth.
public struct DetectionMetrics: Sendable, Equatable {
    /// pycocotools' `iouThrs`: `np.linspace(.5, .95, 10)`.
    public static let iouThresholds: [Double] = {
        let step = (0.95 - 0.5) / 9
        return (0..<10).map { $0 == 9 ? 0.95 : Double($0) * step + 0.5 }
    }()
    /// pycocotools' `recThrs`: `np.linspace(0, 1, 101)`.
    public static let recallThresholds: [Double] = (0...100).map { $0 == 100 ? 1 : Double($0) * 0.01 }
    /// pycocotools' largest `maxDets` (per image and class).
    public static let maxDetections = 100

    public let classCount: Int
    /// mAP@[.5:.95] (COCO `stats[0]`).
    public let map: Double
    /// AP at IoU 0.5 (COCO `stats[1]`).
    public let map50: Double
    /// AP at IoU 0.75 (COCO `stats[2]`).
    public let map75: Double
    /// PASCAL VOC all-point AP at IoU > 0.5, mean over classes with ground truth.
    public let map50VOC: Double
    /// COCO AP@[.5:.95] per class; `nil` for classes without ground truth.
    public let perClassAP: [Double?]
    /// COCO AP@0.5 per class; `nil` for classes without ground truth.
    public let perClassAP50: [Double?]
    /// Recall at IoU 0.5 with at most 100 detections per image and class, per class (`nil`: no ground truth).
    public let perClassRecall50: [Double?]

    /// Evaluates `predictions` (with scores) against `truth`.
    public init(truth: [ObjectBox], predictions: [ObjectBox], classCount: Int) {
        self.classCount = classCount
        let thresholds = Self.iouThresholds, recalls = Self.recallThresholds
        let T = thresholds.count, R = recalls.count
        var truthBy = [Int: [[ObjectBox]]](), predictionBy = [Int: [[ObjectBox]]]()
        for b in truth where b.classID >= 0 && b.classID < classCount {
            truthBy[b.image, default: Array(repeating: [], count: classCount)][b.classID].append(b)
        }
        for b in predictions where b.classID >= 0 && b.classID < classCount {
            predictionBy[b.image, default: Array(repeating: [], count: classCount)][b.classID].append(b)
        }
        let images = Set(truthBy.keys).union(predictionBy.keys).sorted()

        var ap = [Double?](repeating: nil, count: classCount), ap50 = ap, ap75 = ap, recall50 = ap, voc = ap
        for k in 0..<classCount {
            // evaluateImg per image, then accumulate.
            var scores = [Double]()
            var matched = [[Bool]](repeating: [], count: T)   // per threshold, per detection (concatenated)
            var gtCount = 0
            var vocDetections = [(score: Double, image: Int, box: ObjectBox)]()
            var vocTruth = [Int: [ObjectBox]]()
            for image in images {
                let gts = truthBy[image]?[k] ?? []
                var dts = predictionBy[image]?[k] ?? []
                if gts.isEmpty && dts.isEmpty { continue }
                gtCount += gts.count
                vocTruth[image] = gts
                for d in dts { vocDetections.append((Double(d.score), image, d)) }
                dts = Self.stableSortedByScore(dts)
                if dts.count > Self.maxDetections { dts.removeLast(dts.count - Self.maxDetections) }
                let ious = dts.map { d in gts.map { g in Self.cocoIoU(d, g) } }
                for (t, threshold) in thresholds.enumerated() {
                    var gtTaken = [Bool](repeating: false, count: gts.count)
                    for di in dts.indices {
                        var best = min(threshold, 1 - 1e-10)
                        var m = -1
                        for gi in gts.indices where !gtTaken[gi] {
                            if ious[di][gi] < best { continue }
                            best = ious[di][gi]
                            m = gi
                        }
                        if m >= 0 { gtTaken[m] = true }
                        matched[t].append(m >= 0)
                    }
                }
                scores += dts.map { Double($0.score) }
            }
            guard gtCount > 0 else { continue }
            // Rank all kept detections of the class by score (stable, mergesort in pycocotools).
            let order = scores.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
            var precisionAt = [[Double]](repeating: [Double](repeating: 0, count: R), count: T)
            for t in 0..<T {
                var tp = 0.0, fp = 0.0
                var rc = [Double](), pr = [Double]()
                rc.reserveCapacity(order.count)
                pr.reserveCapacity(order.count)
                for i in order {
                    if matched[t][i] { tp += 1 } else { fp += 1 }
                    rc.append(tp / Double(gtCount))
                    pr.append(tp / (fp + tp + Double.ulpOfOne))
                }
                if t == 0 { recall50[k] = rc.last ?? 0 }
                if pr.count > 1 {
                    for i in stride(from: pr.count - 1, to: 0, by: -1) where pr[i] > pr[i - 1] { pr[i - 1] = pr[i] }
                }
                var start = 0
                for (r, threshold) in recalls.enumerated() {
                    // np.searchsorted(rc, threshold, side="left"): first index with rc[i] >= threshold.
                    while start < rc.count && rc[start] < threshold { start += 1 }
                    if start >= rc.count { break }
                    precisionAt[t][r] = pr[start]
                }
            }
            let perThreshold = precisionAt.map { $0.reduce(0, +) / Double(R) }
            ap[k] = perThreshold.reduce(0, +) / Double(T)
            ap50[k] = perThreshold[0]
            ap75[k] = perThreshold[5]
            voc[k] = Self.vocAP(detections: vocDetections, truth: vocTruth, gtCount: gtCount)
        }
        perClassAP = ap
        perClassAP50 = ap50
        perClassRecall50 = recall50
        map = SegmentationMetrics.mean(ap)
        map50 = SegmentationMetrics.mean(ap50)
        map75 = SegmentationMetrics.mean(ap75)
        map50VOC = SegmentationMetrics.mean(voc)
    }

    /// Sorted by descending score, ties in input order (numpy's mergesort on −score).
    static func stableSortedByScore(_ boxes: [ObjectBox]) -> [ObjectBox] {
        boxes.indices.sorted { boxes[$0].score > boxes[$1].score || (boxes[$0].score == boxes[$1].score && $0 < $1) }.map { boxes[$0] }
    }

    /// pycocotools' `bbIou` (maskApi.c) for `[x, y, w, h]` boxes in Double, not crowd.
    public static func cocoIoU(_ d: ObjectBox, _ g: ObjectBox) -> Double {
        let (dx, dy, gx, gy) = (Double(d.x1), Double(d.y1), Double(g.x1), Double(g.y1))
        let (dw, dh) = (Double(d.x2) - dx, Double(d.y2) - dy)
        let (gw, gh) = (Double(g.x2) - gx, Double(g.y2) - gy)
        let ga = gw * gh, da = dw * dh
        let w = min(dw + dx, gw + gx) - max(dx, gx)
        if w <= 0 { return 0 }
        let h = min(dh + dy, gh + gy) - max(dy, gy)
        if h <= 0 { return 0 }
        let i = w * h
        return i / (da + ga - i)
    }

    /// VOC all-point AP at IoU > 0.5 for one class.
    static func vocAP(detections: [(score: Double, image: Int, box: ObjectBox)], truth: [Int: [ObjectBox]], gtCount: Int) -> Double {
        let order = detections.indices.sorted {
            detections[$0].score > detections[$1].score || (detections[$0].score == detections[$1].score && $0 < $1)
        }
        var taken = truth.mapValues { [Bool](repeating: false, count: $0.count) }
        var tp = 0.0, fp = 0.0
        var recall = [Double](), precision = [Double]()
        for i in order {
            let d = detections[i]
            let gts = truth[d.image] ?? []
            var best = -Double.infinity, m = -1
            for (gi, g) in gts.enumerated() {
                let iou = cocoIoU(d.box, g)
                if iou > best { best = iou; m = gi }
            }
            if m >= 0, best > 0.5, taken[d.image]?[m] == false {
                taken[d.image]?[m] = true
                tp += 1
            } else {
                fp += 1
            }
            recall.append(tp / Double(gtCount))
            precision.append(tp / max(tp + fp, Double.leastNormalMagnitude))
        }
        let mrec = [0.0] + recall + [1.0]
        var mpre = [0.0] + precision + [0.0]
        for i in stride(from: mpre.count - 2, through: 0, by: -1) { mpre[i] = max(mpre[i], mpre[i + 1]) }
        var area = 0.0
        for i in 1..<mrec.count where mrec[i] != mrec[i - 1] { area += (mrec[i] - mrec[i - 1]) * mpre[i] }
        return area
    }
}
