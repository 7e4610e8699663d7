import Foundation
import HDF5Kit
import NASCore

/// Loads the simple NASLab HDF5 dataset layout (see docs/datasets.md).
///
/// - `/x`: numbers (float32, float64, uint8, any integer or float type), shape N×C×H×W, N×H×W (one channel) or N×F.
///   A channels-last N×H×W×C array (last axis 1 or 3, the two before it larger than 4) is refused
///   with the fix (`x.transpose(0, 3, 1, 2)`) instead of being trained as C = H, H = W, W = C.
/// - `/y`: integer labels, shape N (or N×1).
/// - optional `/x_test`, `/y_test` with the same layout (both or neither).
/// - optional root attributes `class_names` (array of strings) and `class_count` (integer).
///
/// The class count is `class_count`, else the number of `class_names`, else the largest label + 1.
/// The input kind is `.features` for N×F data and `.image` otherwise.
///
/// ```python
/// import h5py, numpy as np
/// with h5py.File("mydata.h5", "w") as f:
///     f["x"] = images.astype(np.float32)          # N×1×28×28
///     f["y"] = labels.astype(np.int64)            # N
///     f.attrs["class_names"] = ["cat", "dog"]
/// ```
///
/// A file **without** `/y` but with `/masks` and/or `/boxes` is a scene dataset (segmentation /
/// detection, the layout of ``SceneDatasetFile``): see ``loadScenes(_:path:)``. A file with `/y`
/// is always read as classification data (any `/masks` or `/boxes` in it are ignored).
public enum HDF5DatasetLoader {
    public static func load(path: String) throws -> RawDataset {
        do {
            let file = try H5File.open(path: path)
            if !file.exists("y") && (file.exists("masks") || file.exists("boxes")) {
                return try loadScenes(file, path: path)
            }
            let classNames = file.hasAttribute("class_names") ? try file.stringsAttribute("class_names") : nil
            let declaredCount = file.hasAttribute("class_count") ? try file.intAttribute("class_count") : nil
            let hasTest = file.exists("x_test") || file.exists("y_test")
            let trainX = try features(file, "x")
            let trainY = try labels(file, "y", count: trainX.count)
            var testParts: (x: (shape: FeatureShape, count: Int, values: [Float]), y: [Int64])?
            if hasTest {
                let x = try features(file, "x_test")
                guard x.shape == trainX.shape else {
                    throw DatasetError.malformed(path: path, detail: "/x_test samples are \(x.shape), /x samples are \(trainX.shape)")
                }
                testParts = (x, try labels(file, "y_test", count: x.count))
            }
            let allLabels = trainY + (testParts?.y ?? [])
            let classCount = declaredCount ?? classNames?.count ?? Int((allLabels.max() ?? 0) + 1)
            guard classCount > 0 else { throw DatasetError.malformed(path: path, detail: "class count \(classCount) must be positive") }
            if let classNames, classNames.count != classCount {
                throw DatasetError.malformed(path: path, detail: "class_count is \(classCount) but class_names has \(classNames.count) names")
            }
            func check(_ values: [Int64], _ name: String) throws -> [Int32] {
                if let index = values.firstIndex(where: { $0 < 0 || $0 >= Int64(classCount) }) {
                    throw DatasetError.labelOutOfRange(path: path + ":/" + name, index: index, label: values[index], classCount: classCount)
                }
                return values.map { Int32($0) }
            }
            let train = LabeledArrays(features: trainX.values, labels: try check(trainY, "y"), sampleShape: trainX.shape, classCount: classCount)
            let test = try testParts.map {
                LabeledArrays(features: $0.x.values, labels: try check($0.y, "y_test"), sampleShape: trainX.shape, classCount: classCount)
            }
            let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
            // N×F is a flat feature vector (standardised per feature); N×H×W and N×C×H×W are images.
            let inputKind: InputKind = try file.datasetInfo("x").shape.count == 2 ? .features : .image
            return RawDataset(metadata: DatasetMetadata(name: name, source: path, sampleShape: trainX.shape,
                                                        classCount: classCount, classNames: classNames, inputKind: inputKind),
                              train: train, test: test)
        } catch let error as HDF5Error {
            throw DatasetError.hdf5(error)
        }
    }

    static func features(_ file: H5File, _ name: String) throws -> (shape: FeatureShape, count: Int, values: [Float]) {
        guard file.exists(name) else { throw DatasetError.missingDataset(path: file.path, name: "/" + name) }
        let info = try file.datasetInfo(name)
        guard info.elementType.isNumeric else {
            throw DatasetError.malformed(path: file.path, detail: "/\(name) holds \(info.elementType), expected numbers")
        }
        let s = info.shape
        let shape: FeatureShape
        switch s.count {
        case 2: shape = FeatureShape(features: s[1])
        case 3: shape = FeatureShape(channels: 1, height: s[1], width: s[2])
        case 4:
            if FeatureShape.looksChannelsLast(s[1], s[2], s[3]) {
                throw DatasetError.malformed(path: file.path, detail: "/\(name) has shape \(s), which looks channels-last (N×H×W×C with "
                    + "\(s[3]) channel(s)); NASLab reads N×C×H×W and would train on \(s[1]) channels of \(s[2])×\(s[3]). "
                    + "Store it channels first (N×\(s[3])×\(s[1])×\(s[2])), e.g. with numpy: f[\"\(name)\"] = x.transpose(0, 3, 1, 2)")
            }
            shape = FeatureShape(channels: s[1], height: s[2], width: s[3])
        default:
            throw DatasetError.malformed(path: file.path, detail: "/\(name) has shape \(s), expected N×F, N×H×W or N×C×H×W")
        }
        guard s[0] > 0, shape.elementCount > 0 else {
            throw DatasetError.malformed(path: file.path, detail: "/\(name) has shape \(s): no samples")
        }
        let array = try file.read(name, as: Float.self)
        return (shape, s[0], array.values)
    }

    static func labels(_ file: H5File, _ name: String, count: Int) throws -> [Int64] {
        guard file.exists(name) else { throw DatasetError.missingDataset(path: file.path, name: "/" + name) }
        let info = try file.datasetInfo(name)
        guard case .integer = info.elementType else {
            throw DatasetError.malformed(path: file.path, detail: "/\(name) holds \(info.elementType), expected integer labels")
        }
        guard info.shape.count == 1 || (info.shape.count == 2 && info.shape[1] == 1) else {
            throw DatasetError.malformed(path: file.path, detail: "/\(name) has shape \(info.shape), expected N or N×1")
        }
        guard info.shape[0] == count else {
            throw DatasetError.malformed(path: file.path, detail: "/\(name) has \(info.shape[0]) labels but there are \(count) samples")
        }
        return try file.read(name, as: Int64.self).values
    }

    // MARK: - Scenes

    /// Reads a scene file: `/x` (N×H×W or N×C×H×W images), `/masks` (N×H×W integer class ids,
    /// 0 = background, 1 + k = class k, −100 = ignore) and/or `/boxes` (M×6 rows
    /// `image_index, class_id, x1, y1, x2, y2`), optionally `/x_test` with `/masks_test` and/or
    /// `/boxes_test` (the test part must carry the same targets as the training part).
    ///
    /// The class count is the `class_count` attribute, else the number of `class_names`, else the
    /// largest mask id / box class id + 1. Every mask id must be in `0...classCount` or −100; every
    /// box row needs an integer image index in `0..<N`, an integer class id in `0..<classCount` and
    /// finite coordinates with `0 ≤ x1 < x2 ≤ W`, `0 ≤ y1 < y2 ≤ H`. Labels are the dominant classes
    /// (``SceneDatasetFile/dominantClasses(masks:count:pixelsPerSample:classCount:)`` when there are
    /// masks, else ``SceneDatasetFile/dominantClasses(boxes:count:)``).
    static func loadScenes(_ file: H5File, path: String) throws -> RawDataset {
        let classNames = file.hasAttribute("class_names") ? try file.stringsAttribute("class_names") : nil
        let declaredCount = file.hasAttribute("class_count") ? try file.intAttribute("class_count") : nil
        let hasMasks = file.exists("masks"), hasBoxes = file.exists("boxes")
        let hasTest = ["x_test", "masks_test", "boxes_test", "y_test"].contains { file.exists($0) }
        func malformed(_ detail: String) -> DatasetError { DatasetError.malformed(path: path, detail: detail) }

        typealias Part = (x: (shape: FeatureShape, count: Int, values: [Float]), masks: [Int32]?, boxes: [Double]?)
        func part(_ suffix: String) throws -> Part {
            let xName = "x" + suffix
            let x = try features(file, xName)
            guard try file.datasetInfo(xName).shape.count >= 3 else {
                throw malformed("/\(xName) has shape \(try file.datasetInfo(xName).shape): a scene dataset (with /masks or /boxes) "
                    + "needs images, N×H×W or N×C×H×W")
            }
            for name in ["masks", "boxes"] where file.exists(name + suffix) != file.exists(name) {
                if file.exists(name) { throw DatasetError.missingDataset(path: path, name: "/" + name + suffix) }
                throw malformed("/\(name + suffix) without /\(name): the test part must carry the same targets as the training part")
            }
            let masks = hasMasks ? try sceneMasks(file, "masks" + suffix, xName: xName, count: x.count, shape: x.shape) : nil
            let boxes = hasBoxes ? try boxRows(file, "boxes" + suffix) : nil
            return (x, masks, boxes)
        }
        let train = try part("")
        var test: Part?
        if hasTest {
            if file.exists("y_test") { throw malformed("/y_test without /y: a scene dataset has no label datasets (labels come from /masks or /boxes)") }
            let t = try part("_test")
            guard t.x.shape == train.x.shape else {
                throw malformed("/x_test samples are \(t.x.shape), /x samples are \(train.x.shape)")
            }
            test = t
        }
        let parts = [train] + (test.map { [$0] } ?? [])
        var inferred = 0
        for p in parts {
            if let masks = p.masks, let top = masks.max() { inferred = max(inferred, Int(top)) }
            if let rows = p.boxes {
                for r in stride(from: 1, to: rows.count, by: SceneDatasetFile.boxColumns) where rows[r].isFinite && rows[r] >= 0 && rows[r] < 1e9 {
                    inferred = max(inferred, Int(rows[r]) + 1)
                }
            }
        }
        let classCount = declaredCount ?? classNames?.count ?? inferred
        guard classCount > 0 else { throw malformed("class count \(classCount) must be positive (no object class in /masks or /boxes)") }
        if let classNames, classNames.count != classCount {
            throw malformed("class_count is \(classCount) but class_names has \(classNames.count) names")
        }
        func arrays(_ p: Part, _ suffix: String) throws -> LabeledArrays {
            let shape = p.x.shape
            if let masks = p.masks {
                let plane = shape.height * shape.width
                if let bad = masks.firstIndex(where: { ($0 < 0 || Int($0) > classCount) && $0 != LabeledArrays.ignoreIndex }) {
                    let pixel = bad % plane
                    throw malformed("/masks\(suffix): class id \(masks[bad]) of sample \(bad / plane) at pixel (y \(pixel / shape.width), "
                        + "x \(pixel % shape.width)) is outside 0...\(classCount) (0 = background, 1 + k = class k, "
                        + "\(LabeledArrays.ignoreIndex) = ignore)")
                }
            }
            let boxes = try p.boxes.map { try sceneBoxes($0, "boxes" + suffix, path: path, count: p.x.count, shape: shape, classCount: classCount) }
            let labels = p.masks.map {
                SceneDatasetFile.dominantClasses(masks: $0, count: p.x.count, pixelsPerSample: shape.height * shape.width, classCount: classCount)
            } ?? SceneDatasetFile.dominantClasses(boxes: boxes ?? [], count: p.x.count)
            return LabeledArrays(features: p.x.values, labels: labels, sampleShape: shape, classCount: classCount,
                                 masks: p.masks, boxes: boxes)
        }
        let trainArrays = try arrays(train, "")
        let testArrays = try test.map { try arrays($0, "_test") }
        let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        return RawDataset(metadata: DatasetMetadata(name: name, source: path, sampleShape: train.x.shape, classCount: classCount,
                                                    classNames: classNames, inputKind: .image),
                          train: trainArrays, test: testArrays)
    }

    /// `/name`: integer class ids, shape N×H×W matching `/xName` (range checks come later).
    static func sceneMasks(_ file: H5File, _ name: String, xName: String, count: Int, shape: FeatureShape) throws -> [Int32] {
        let info = try file.datasetInfo(name)
        guard case let .integer(bytes, signed) = info.elementType else {
            throw DatasetError.malformed(path: file.path, detail: "/\(name) holds \(info.elementType), expected integer class ids")
        }
        let s = info.shape
        guard s.count == 3 else {
            throw DatasetError.malformed(path: file.path, detail: "/\(name) has shape \(s), expected N×H×W (one class id per pixel)")
        }
        guard s[0] == count else {
            throw DatasetError.malformed(path: file.path, detail: "/\(name) has \(s[0]) masks but /\(xName) has \(count) samples")
        }
        guard s[1] == shape.height, s[2] == shape.width else {
            throw DatasetError.malformed(path: file.path,
                                         detail: "/\(name) masks are \(s[1])×\(s[2]) but /\(xName) images are \(shape.height)×\(shape.width)")
        }
        if bytes < 4 || (bytes == 4 && signed) { return try file.read(name, as: Int32.self).values }
        // Wider ids: clamped to Int32 (an id beyond it still fails the range check).
        return try file.read(name, as: Int64.self).values.map { Int32(clamping: $0) }
    }

    /// `/name`: numeric rows of six values, shape M×6 (M may be 0).
    static func boxRows(_ file: H5File, _ name: String) throws -> [Double] {
        let info = try file.datasetInfo(name)
        guard info.elementType.isNumeric else {
            throw DatasetError.malformed(path: file.path, detail: "/\(name) holds \(info.elementType), expected numbers")
        }
        guard info.shape.count == 2, info.shape[1] == SceneDatasetFile.boxColumns else {
            throw DatasetError.malformed(path: file.path, detail: "/\(name) has shape \(info.shape), expected M×6 rows "
                + "(image_index, class_id, x1, y1, x2, y2)")
        }
        return try file.read(name, as: Double.self).values
    }

    /// Checks and converts box rows (see ``loadScenes(_:path:)``).
    static func sceneBoxes(_ rows: [Double], _ name: String, path: String, count: Int, shape: FeatureShape,
                           classCount: Int) throws -> [ObjectBox] {
        var boxes = [ObjectBox]()
        boxes.reserveCapacity(rows.count / SceneDatasetFile.boxColumns)
        let width = Double(shape.width), height = Double(shape.height)
        for r in 0..<(rows.count / SceneDatasetFile.boxColumns) {
            let v = rows[(r * 6)..<(r * 6 + 6)].map { $0 }
            let (image, classID, x1, y1, x2, y2) = (v[0], v[1], v[2], v[3], v[4], v[5])
            func fail(_ why: String) -> DatasetError {
                let shown = v.map { $0.rounded() == $0 && abs($0) < 1e15 ? String(Int64($0)) : String($0) }.joined(separator: ", ")
                return DatasetError.malformed(path: path, detail: "/\(name) row \(r) (\(shown)): \(why)")
            }
            guard v.allSatisfy({ $0.isFinite }) else { throw fail("values must be finite") }
            guard image.rounded() == image, image >= 0, image < Double(count) else {
                throw fail("image index must be an integer in 0..<\(count)")
            }
            guard classID.rounded() == classID, classID >= 0, classID < Double(classCount) else {
                throw fail("class id must be an integer in 0..<\(classCount) (object classes, background excluded)")
            }
            guard x2 > x1 else { throw fail("x2 must be greater than x1") }
            guard y2 > y1 else { throw fail("y2 must be greater than y1") }
            guard x1 >= 0, y1 >= 0, x2 <= width, y2 <= height else {
                throw fail("the box is outside the \(shape.width)×\(shape.height) image (need 0 ≤ x1 < x2 ≤ \(shape.width), "
                    + "0 ≤ y1 < y2 ≤ \(shape.height))")
            }
            boxes.append(ObjectBox(image: Int(image), classID: Int(classID), x1: Float(x1), y1: Float(y1), x2: Float(x2), y2: Float(y2)))
        }
        return boxes
    }
}
