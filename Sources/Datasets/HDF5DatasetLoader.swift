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
public enum HDF5DatasetLoader {
    public static func load(path: String) throws -> RawDataset {
        do {
            let file = try H5File.open(path: path)
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
}
