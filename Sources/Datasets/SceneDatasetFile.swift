import Foundation
import HDF5Kit
import NASCore

/// The HDF5 layout of scene datasets (segmentation and/or detection), see docs/datasets.md:
///
/// | object | content |
/// |---|---|
/// | `/x` | N×C×H×W images: uint8 when every value is an integer in 0…255, else float32 |
/// | `/masks` | N×H×W class ids: 0 background, 1 + k object class k, ``LabeledArrays/ignoreIndex`` (−100) skipped; uint8 when every id is in 0…255, else int32 |
/// | `/boxes` | M×6 float32 rows `(image_index, class_id, x1, y1, x2, y2)`: pixels, `x2`/`y2` exclusive, class ids 0-based (background excluded) |
/// | `/x_test`, `/masks_test`, `/boxes_test` | the same for the test part (optional) |
/// | root attribute `class_names` | the object classes (background excluded); `class_count` when no names are given |
///
/// Either of `/masks` and `/boxes` may be absent (not both). There is no `/y`: a reader derives
/// each scene's label, its dominant class, from the targets (``dominantClasses(masks:count:pixelsPerSample:classCount:)``,
/// else ``dominantClasses(boxes:count:)``). ``HDF5DatasetLoader`` reads the layout back.
public enum SceneDatasetFile {
    /// The number of values per `/boxes` row.
    public static let boxColumns = 6

    /// Writes the training part (and the test part, if given) in the scene layout, atomically:
    /// a temporary file next to `path` (created with its parent directories) renamed over `path`.
    /// - Parameters:
    ///   - path: the file to (re)place.
    ///   - train: scenes with `masks` and/or `boxes`.
    ///   - test: an optional test part with the same sample shape, class count and kinds of targets.
    ///   - classNames: the object class names (`classNames.count == train.classCount`); without
    ///     them the root attribute `class_count` is written instead.
    /// - Throws: ``DatasetError/invalidArgument(detail:)`` for inconsistent parts, ``DatasetError/hdf5(_:)``.
    public static func write(to path: String, train: LabeledArrays, test: LabeledArrays? = nil,
                             classNames: [String]? = nil) throws {
        try write(to: path, train: train, test: test, classNames: classNames, annotate: { _ in })
    }

    /// ``write(to:train:test:classNames:)`` with extra root attributes set by `annotate`.
    static func write(to path: String, train: LabeledArrays, test: LabeledArrays?, classNames: [String]?,
                      annotate: (H5File) throws -> Void) throws {
        try check(train, "training part")
        if let test {
            try check(test, "test part")
            guard test.sampleShape == train.sampleShape, test.classCount == train.classCount,
                  (test.masks == nil) == (train.masks == nil), (test.boxes == nil) == (train.boxes == nil) else {
                throw DatasetError.invalidArgument(detail: "scene file '\(path)': the test part (\(test.sampleShape), "
                    + "\(test.classCount) classes) differs from the training part (\(train.sampleShape), \(train.classCount) classes) "
                    + "or carries other targets")
            }
        }
        if let classNames, classNames.count != train.classCount {
            throw DatasetError.invalidArgument(detail: "scene file '\(path)': \(classNames.count) class names for \(train.classCount) classes")
        }
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp").path
        do {
            let file = try H5File.create(path: temporary)
            try writePart(file, train, suffix: "")
            if let test { try writePart(file, test, suffix: "_test") }
            if let classNames { try file.setAttribute("class_names", classNames) } else { try file.setAttribute("class_count", train.classCount) }
            try annotate(file)
            try file.close()
            guard rename(temporary, path) == 0 else {
                throw DatasetError.invalidArgument(detail: "scene file '\(path)': cannot move '\(temporary)' into place (errno \(errno))")
            }
        } catch let error as HDF5Error {
            try? FileManager.default.removeItem(atPath: temporary)
            throw DatasetError.hdf5(error)
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
    }

    static func check(_ part: LabeledArrays, _ what: String) throws {
        guard part.masks != nil || part.boxes != nil else {
            throw DatasetError.invalidArgument(detail: "scene file: the \(what) has neither masks nor boxes")
        }
        guard part.sampleShape.height * part.sampleShape.width > 1 else {
            throw DatasetError.invalidArgument(detail: "scene file: the \(what) is not images (\(part.sampleShape))")
        }
        if let boxes = part.boxes, let bad = boxes.first(where: { $0.image < 0 || $0.image >= part.count }) {
            throw DatasetError.invalidArgument(detail: "scene file: a box of the \(what) names image \(bad.image) of \(part.count)")
        }
        guard part.count <= 1 << 24 else {
            throw DatasetError.invalidArgument(detail: "scene file: \(part.count) images; /boxes stores image indices as float32 (at most 2^24)")
        }
    }

    static func writePart(_ file: H5File, _ part: LabeledArrays, suffix: String) throws {
        let s = part.sampleShape
        let xShape = [part.count, s.channels, s.height, s.width]
        if part.features.allSatisfy({ $0 >= 0 && $0 <= 255 && $0.rounded() == $0 }) {
            try file.write("x" + suffix, values: part.features.map { UInt8($0) }, shape: xShape)
        } else {
            try file.write("x" + suffix, values: part.features, shape: xShape)
        }
        if let masks = part.masks {
            let shape = [part.count, s.height, s.width]
            if masks.allSatisfy({ $0 >= 0 && $0 <= 255 }) {
                try file.write("masks" + suffix, values: masks.map { UInt8($0) }, shape: shape)
            } else {
                try file.write("masks" + suffix, values: masks, shape: shape)
            }
        }
        if let boxes = part.boxes {
            var rows = [Float]()
            rows.reserveCapacity(boxes.count * boxColumns)
            for b in boxes { rows += [Float(b.image), Float(b.classID), b.x1, b.y1, b.x2, b.y2] }
            try file.write("boxes" + suffix, values: rows, shape: [boxes.count, boxColumns])
        }
    }

    /// Each sample's dominant class: the object class owning the most mask pixels (ids `1...classCount`;
    /// background, ``LabeledArrays/ignoreIndex`` and other ids are not counted), ties to the smaller
    /// class; 0 for a sample without object pixels.
    public static func dominantClasses(masks: [Int32], count: Int, pixelsPerSample: Int, classCount: Int) -> [Int32] {
        precondition(masks.count == count * pixelsPerSample, "masks must hold count × pixelsPerSample ids")
        var labels = [Int32](repeating: 0, count: count)
        var histogram = [Int](repeating: 0, count: classCount + 1)
        masks.withUnsafeBufferPointer { m in
            for i in 0..<count {
                for k in histogram.indices { histogram[k] = 0 }
                for p in (i * pixelsPerSample)..<((i + 1) * pixelsPerSample) {
                    let id = Int(m[p])
                    if id >= 1 && id <= classCount { histogram[id] += 1 }
                }
                var best = 0, bestCount = 0
                for id in 1...max(1, classCount) where id <= classCount && histogram[id] > bestCount {
                    best = id
                    bestCount = histogram[id]
                }
                labels[i] = best > 0 ? Int32(best - 1) : 0
            }
        }
        return labels
    }

    /// Each sample's dominant class by boxes: the class of its largest box (by area; ties to the
    /// smaller class id); 0 for a sample without boxes.
    public static func dominantClasses(boxes: [ObjectBox], count: Int) -> [Int32] {
        var best = [(area: Float, classID: Int)?](repeating: nil, count: count)
        for b in boxes where b.image >= 0 && b.image < count {
            if let current = best[b.image], current.area > b.area || (current.area == b.area && current.classID <= b.classID) { continue }
            best[b.image] = (b.area, b.classID)
        }
        return best.map { Int32($0?.classID ?? 0) }
    }
}
