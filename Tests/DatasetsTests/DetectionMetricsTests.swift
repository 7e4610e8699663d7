import Datasets
import Foundation
import NASCore
import TestSupport
import XCTest

/// Segmentation metrics on hand-computed cases; detection metrics by hand and against pycocotools.
final class DetectionMetricsTests: XCTestCase {
    // MARK: Segmentation

    func testSegmentationMetricsByHand() {
        // ids 0...3; the last pixel is ignored; class 3 is only predicted.
        let truth: [Int32] = [0, 0, 1, 1, 1, 2, -100]
        let predicted: [Int32] = [0, 1, 1, 1, 3, 0, 2]
        let m = SegmentationMetrics(predicted: predicted, truth: truth, objectClasses: 3)
        XCTAssertEqual(m.classCount, 4)
        XCTAssertEqual(m.pixelCount, 6)
        XCTAssertEqual(m.pixelAccuracy, 0.5, accuracy: 1e-12)
        let iou = m.perClassIoU
        XCTAssertEqual(iou.count, 4)
        XCTAssertEqual(iou[0]!, 1.0 / 3, accuracy: 1e-12)   // TP 1, FN 1, FP 1
        XCTAssertEqual(iou[1]!, 0.5, accuracy: 1e-12)       // TP 2, FN 1, FP 1
        XCTAssertEqual(iou[2]!, 0, accuracy: 1e-12)         // present, never predicted right
        XCTAssertNil(iou[3], "absent from the ground truth")
        XCTAssertEqual(m.meanIoU, (1.0 / 3 + 0.5 + 0) / 3, accuracy: 1e-12)
        XCTAssertEqual(m.meanIoUExcludingBackground, 0.25, accuracy: 1e-12)
        XCTAssertEqual(m.count(truth: 1, predicted: 3), 1)

        // Accumulating in two calls is the same; an invalid predicted id is simply wrong.
        var twice = SegmentationMetrics(objectClasses: 3)
        twice.add(predicted: Array(predicted.prefix(3)), truth: Array(truth.prefix(3)))
        twice.add(predicted: Array(predicted.dropFirst(3)), truth: Array(truth.dropFirst(3)))
        XCTAssertEqual(twice, m)
        twice.add(predicted: [7], truth: [0])
        XCTAssertEqual(twice.count(truth: 0, predicted: 4), 1)
        XCTAssertEqual(twice.perClassIoU[0]!, 0.25, accuracy: 1e-12)
        XCTAssertEqual(twice.pixelAccuracy, 3.0 / 7, accuracy: 1e-12)

        let perfect = SegmentationMetrics(predicted: [0, 2, 2], truth: [0, 2, 2], objectClasses: 2)
        XCTAssertEqual(perfect.meanIoU, 1)
        XCTAssertEqual(perfect.meanIoUExcludingBackground, 1)
        XCTAssertEqual(perfect.pixelAccuracy, 1)
        XCTAssertNil(perfect.perClassIoU[1])
        let empty = SegmentationMetrics(predicted: [1], truth: [-100], objectClasses: 1)
        XCTAssertEqual(empty.pixelAccuracy, 0)
        XCTAssertEqual(empty.meanIoU, 0)
    }

    // MARK: Detection by hand

    func box(_ image: Int, _ c: Int, _ x1: Float, _ y1: Float, _ x2: Float, _ y2: Float, _ score: Float = 1) -> ObjectBox {
        ObjectBox(image: image, classID: c, x1: x1, y1: y1, x2: x2, y2: y2, score: score)
    }

    func testDetectionMetricsByHand() {
        let gt = [box(0, 0, 0, 0, 10, 10)]
        let perfect = DetectionMetrics(truth: gt, predictions: [box(0, 0, 0, 0, 10, 10, 0.9)], classCount: 2)
        XCTAssertEqual(perfect.map, 1, accuracy: 1e-12)
        XCTAssertEqual(perfect.map50, 1, accuracy: 1e-12)
        XCTAssertEqual(perfect.map50VOC, 1, accuracy: 1e-12)
        XCTAssertEqual(perfect.perClassAP[0]!, 1, accuracy: 1e-12)
        XCTAssertNil(perfect.perClassAP[1], "no ground truth: left out")

        // IoU 100/150 = 2/3 passes the thresholds 0.50, 0.55, 0.60, 0.65: 4 of 10.
        let twoThirds = DetectionMetrics(truth: gt, predictions: [box(0, 0, 0, 0, 10, 15, 0.9)], classCount: 1)
        XCTAssertEqual(DetectionMetrics.cocoIoU(box(0, 0, 0, 0, 10, 15), gt[0]), 2.0 / 3, accuracy: 1e-15)
        XCTAssertEqual(twoThirds.map, 0.4, accuracy: 1e-12)
        XCTAssertEqual(twoThirds.map50, 1, accuracy: 1e-12)
        XCTAssertEqual(twoThirds.map75, 0, accuracy: 1e-12)
        XCTAssertEqual(twoThirds.map50VOC, 1, accuracy: 1e-12)

        // Two objects; the best-scored detection is a false positive, the second finds one object.
        // Ranked: FP, TP → recall [0, .5], precision [0, .5] → envelope .5 up to recall .5:
        // COCO: 51 of 101 recall points at .5; VOC: .5 × .5.
        let two = [box(0, 0, 0, 0, 10, 10), box(0, 0, 20, 20, 30, 30)]
        let predictions = [box(0, 0, 40, 40, 50, 50, 0.9), box(0, 0, 0, 0, 10, 10, 0.8), box(0, 1, 0, 0, 5, 5, 0.7)]
        let m = DetectionMetrics(truth: two, predictions: predictions, classCount: 3)
        XCTAssertEqual(m.map50, 51 * 0.5 / 101, accuracy: 1e-12)
        XCTAssertEqual(m.map, 51 * 0.5 / 101, accuracy: 1e-12)
        XCTAssertEqual(m.map50VOC, 0.25, accuracy: 1e-12)
        XCTAssertEqual(m.perClassRecall50[0]!, 0.5, accuracy: 1e-12)
        XCTAssertEqual(m.perClassAP.compactMap { $0 }.count, 1, "classes 1 and 2 have no ground truth")

        // A duplicate detection of a matched object is a false positive; a missed image lowers recall.
        let dup = DetectionMetrics(truth: [box(0, 0, 0, 0, 10, 10), box(1, 0, 0, 0, 10, 10)],
                                   predictions: [box(0, 0, 0, 0, 10, 10, 0.9), box(0, 0, 0, 0, 10, 10, 0.8)], classCount: 1)
        // Ranked TP, FP: recall [.5, .5], precision [1, .5] → 51 recall points at 1.
        XCTAssertEqual(dup.map50, 51.0 / 101, accuracy: 1e-12)
        XCTAssertEqual(dup.map50VOC, 0.5, accuracy: 1e-12)
        XCTAssertEqual(DetectionMetrics(truth: [], predictions: predictions, classCount: 3).map, 0)
    }

    func testThresholdsAreCOCOs() {
        XCTAssertEqual(DetectionMetrics.iouThresholds.count, 10)
        XCTAssertEqual(DetectionMetrics.iouThresholds.first, 0.5)
        XCTAssertEqual(DetectionMetrics.iouThresholds.last, 0.95)
        XCTAssertEqual(DetectionMetrics.recallThresholds.count, 101)
        XCTAssertEqual(DetectionMetrics.recallThresholds[50], 0.5)
    }

    // MARK: Against pycocotools

    /// A python3 that can import pycocotools, or a skip (a failure with `NASLAB_REQUIRE_PYCOCOTOOLS=1`).
    func pythonWithPycocotools() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        var candidates = [String]()
        if let python = environment["NASLAB_PYTHON"], !python.isEmpty { candidates.append(python) }
        candidates += (environment["PATH"] ?? "").split(separator: ":").map { "\($0)/python3" }
        candidates += ["/usr/bin/python3", "/usr/local/bin/python3"]
        var tried = [String]()
        for candidate in candidates where !tried.contains(candidate) {
            tried.append(candidate)
            guard FileManager.default.isExecutableFile(atPath: candidate) else { continue }
            if let result = try? runTool(candidate, ["-c", "import pycocotools.cocoeval, numpy"]), result.status == 0 { return candidate }
        }
        let message = "no python3 with pycocotools found (tried: \(tried.joined(separator: ", "))); install it with "
            + "`python3 -m pip install pycocotools` (scripts/test.sh does)"
        if environment["NASLAB_REQUIRE_PYCOCOTOOLS"] == "1" {
            XCTFail(message)
            throw XCTSkip("pycocotools required but missing")
        }
        throw XCTSkip(message)
    }

    struct Case {
        var images: Int
        var classes: Int
        var truth: [ObjectBox]
        var predictions: [ObjectBox]
    }

    /// Random ground truth and predictions: several images and 3–5 classes; jittered (sometimes
    /// badly) copies of objects, wrong classes, duplicates, false positives, misses, images without
    /// objects, now and then more than 100 detections of one class in one image. Scores are distinct.
    static func randomCases(count: Int, seed: UInt64) -> [Case] {
        var rng = SeededGenerator(seed: seed)
        func uniform(_ a: Float, _ b: Float) -> Float { a + (b - a) * rng.nextUnitFloat() }
        var cases = [Case]()
        for index in 0..<count {
            let images = 1 + rng.nextInt(below: 5), classes = 3 + rng.nextInt(below: 3)
            var truth = [ObjectBox](), predictions = [ObjectBox]()
            for image in 0..<images {
                for _ in 0..<rng.nextInt(below: 7) {
                    let x = Float(rng.nextInt(below: 56)), y = Float(rng.nextInt(below: 56))
                    let w = Float(4 + rng.nextInt(below: 21)), h = Float(4 + rng.nextInt(below: 21))
                    truth.append(ObjectBox(image: image, classID: rng.nextInt(below: classes), x1: x, y1: y,
                                           x2: min(64, x + w), y2: min(64, y + h)))
                }
            }
            for g in truth where rng.nextUnitFloat() < 0.8 {
                for _ in 0..<(1 + rng.nextInt(below: 2)) {
                    let jitter = rng.nextUnitFloat() < 0.7 ? Float(2) : Float(8)
                    var d = g
                    d.x1 += uniform(-jitter, jitter); d.y1 += uniform(-jitter, jitter)
                    d.x2 += uniform(-jitter, jitter); d.y2 += uniform(-jitter, jitter)
                    if d.x2 < d.x1 + 1 { d.x2 = d.x1 + 1 }
                    if d.y2 < d.y1 + 1 { d.y2 = d.y1 + 1 }
                    if rng.nextUnitFloat() < 0.1 { d.classID = rng.nextInt(below: classes) }
                    predictions.append(d)
                }
            }
            for _ in 0..<rng.nextInt(below: 5) {
                let x = uniform(0, 56), y = uniform(0, 56)
                predictions.append(ObjectBox(image: rng.nextInt(below: images), classID: rng.nextInt(below: classes),
                                             x1: x, y1: y, x2: x + uniform(2, 20), y2: y + uniform(2, 20)))
            }
            if index % 25 == 0 {
                // More than maxDets (100) detections of one class in one image.
                for _ in 0..<(90 + rng.nextInt(below: 40)) {
                    let x = uniform(0, 50), y = uniform(0, 50)
                    predictions.append(ObjectBox(image: 0, classID: 0, x1: x, y1: y, x2: x + uniform(4, 14), y2: y + uniform(4, 14)))
                }
                truth.append(ObjectBox(image: 0, classID: 0, x1: 10, y1: 10, x2: 30, y2: 30))
            }
            if predictions.isEmpty {
                predictions.append(ObjectBox(image: 0, classID: 0, x1: 1, y1: 1, x2: 9, y2: 9))
            }
            var used = Set<Float>()
            for i in predictions.indices {
                var s: Float
                repeat { s = rng.nextUnitFloat() } while s == 0 || used.contains(s)
                used.insert(s)
                predictions[i].score = s
            }
            rng.shuffle(&predictions)
            cases.append(Case(images: images, classes: classes, truth: truth, predictions: predictions))
        }
        return cases
    }

    /// JSON numbers exactly as Swift's Double sees them (shortest round-trip representation).
    static func json(_ cases: [Case]) -> String {
        func row(_ b: ObjectBox, score: Bool) -> String {
            let x = Double(b.x1), y = Double(b.y1)
            var values = [String(b.image), String(b.classID), "\(x)", "\(y)", "\(Double(b.x2) - x)", "\(Double(b.y2) - y)"]
            if score { values.append("\(Double(b.score))") }
            return "[" + values.joined(separator: ",") + "]"
        }
        let items = cases.map { c in
            "{\"images\":\(c.images),\"classes\":\(c.classes),\"gts\":[" + c.truth.map { row($0, score: false) }.joined(separator: ",")
                + "],\"dets\":[" + c.predictions.map { row($0, score: true) }.joined(separator: ",") + "]}"
        }
        return "[" + items.joined(separator: ",\n") + "]"
    }

    static let cocoScript = """
        import contextlib, io, json, sys
        import numpy as np
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
        cases = json.load(open(sys.argv[1]))
        out = {"results": []}
        for c in cases:
            gt = COCO()
            gt.dataset = {
                "images": [{"id": i + 1} for i in range(c["images"])],
                "categories": [{"id": k + 1, "name": str(k)} for k in range(c["classes"])],
                "annotations": [{"id": j + 1, "image_id": g[0] + 1, "category_id": g[1] + 1, "bbox": g[2:6],
                                 "area": g[4] * g[5], "iscrowd": 0} for j, g in enumerate(c["gts"])],
            }
            with contextlib.redirect_stdout(io.StringIO()):
                gt.createIndex()
                dt = gt.loadRes([{"image_id": d[0] + 1, "category_id": d[1] + 1, "bbox": d[2:6], "score": d[6]} for d in c["dets"]])
                e = COCOeval(gt, dt, "bbox")
                e.evaluate()
                e.accumulate()
                e.summarize()
            out["results"].append([float(e.stats[0]), float(e.stats[1]), float(e.stats[2])])
            p = e.params
        out["iouThrs"] = [repr(float(v)) for v in p.iouThrs]
        out["recThrs"] = [repr(float(v)) for v in p.recThrs]
        out["maxDets"] = [int(v) for v in p.maxDets]
        json.dump(out, open(sys.argv[2], "w"))
        """

    func testCOCOMetricsAgreeWithPycocotools() throws {
        let python = try pythonWithPycocotools()
        let cases = Self.randomCases(count: 300, seed: 2024)
        let dir = try CLI.scratch("pycocotools")
        let input = dir.appendingPathComponent("cases.json").path, output = dir.appendingPathComponent("coco.json").path
        try Self.json(cases).write(toFile: input, atomically: true, encoding: .utf8)
        let script = dir.appendingPathComponent("coco_eval.py").path
        try Self.cocoScript.write(toFile: script, atomically: true, encoding: .utf8)
        let run = try runTool(python, [script, input, output])
        XCTAssertEqual(run.status, 0, run.output)
        guard run.status == 0 else { return }
        let decoded = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output))) as? [String: Any])
        let results = try XCTUnwrap(decoded["results"] as? [[Double]])
        XCTAssertEqual(results.count, cases.count)
        XCTAssertEqual((decoded["iouThrs"] as? [String])?.compactMap(Double.init), DetectionMetrics.iouThresholds)
        XCTAssertEqual((decoded["recThrs"] as? [String])?.compactMap(Double.init), DetectionMetrics.recallThresholds)
        XCTAssertEqual((decoded["maxDets"] as? [Int])?.last, DetectionMetrics.maxDetections)

        var worst = 0.0, nontrivial = 0
        for (i, (c, coco)) in zip(cases, results).enumerated() {
            let m = DetectionMetrics(truth: c.truth, predictions: c.predictions, classCount: c.classes)
            // pycocotools reports −1 without any ground truth; NASLab 0.
            let expected = coco.map { $0 < 0 ? 0 : $0 }
            for (mine, theirs, name) in [(m.map, expected[0], "mAP"), (m.map50, expected[1], "mAP@0.5"), (m.map75, expected[2], "mAP@0.75")] {
                worst = max(worst, abs(mine - theirs))
                XCTAssertEqual(mine, theirs, accuracy: 1e-3, "case \(i) \(name)")
            }
            if expected[0] > 0.05 && expected[0] < 0.95 { nontrivial += 1 }
            XCTAssertTrue(m.map50VOC >= 0 && m.map50VOC <= 1)
        }
        XCTAssertGreaterThan(nontrivial, 200, "the random cases exercise partial matches")
        print("DetectionMetrics vs pycocotools: \(cases.count) cases, largest difference \(worst)")
    }
}
