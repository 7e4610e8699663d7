import Datasets
import Foundation
import NASCore
import TestSupport
import XCTest

final class DatasetsTests: XCTestCase {
    // MARK: Digits

    func testDigitsLoadsAllSamplesWithCorrectValues() throws {
        let raw = try DigitsLoader.load()
        XCTAssertEqual(raw.train.count, 1797)
        XCTAssertNil(raw.test)
        XCTAssertEqual(raw.metadata.sampleShape, FeatureShape(channels: 1, height: 8, width: 8))
        XCTAssertEqual(raw.metadata.classCount, 10)
        XCTAssertEqual(raw.metadata.classNames, (0..<10).map(String.init))
        // First row of scikit-learn's load_digits(): a zero.
        let firstRow: [Float] = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8, 8, 0,
                                 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]
        XCTAssertEqual(Array(raw.train.features[0..<64]), firstRow)
        XCTAssertEqual(Array(raw.train.labels.prefix(12)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1])
        XCTAssertEqual(raw.train.labels.last, 8)
        var histogram = [Int](repeating: 0, count: 10)
        raw.train.labels.forEach { histogram[Int($0)] += 1 }
        XCTAssertEqual(histogram, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
        XCTAssertEqual(raw.train.features.max(), 16)
    }

    func testDigitsSplitSizesStratificationAndDeterminism() throws {
        let a = try Dataset.load(name: "digits", normalize: false, seed: 7)
        XCTAssertEqual(a.test.count, 359)       // Σ round(0.2 · n_c)
        XCTAssertEqual(a.validation.count, 145) // Σ round(0.1 · (n_c − test_c))
        XCTAssertEqual(a.train.count, 1293)
        // Stratified: every class keeps its share in each split.
        var testHistogram = [Int](repeating: 0, count: 10)
        a.test.labels.forEach { testHistogram[Int($0)] += 1 }
        XCTAssertEqual(testHistogram, [36, 36, 35, 37, 36, 36, 36, 36, 35, 36])
        // The three splits are a partition of the original samples.
        let raw = try DigitsLoader.load()
        func rows(_ d: LabeledArrays) -> [[Float]] {
            (0..<d.count).map { Array(d.features[$0 * 64 ..< ($0 + 1) * 64]) + [Float(d.labels[$0])] }
        }
        let union = (rows(a.train) + rows(a.validation) + rows(a.test)).map { $0.description }.sorted()
        XCTAssertEqual(union, rows(raw.train).map { $0.description }.sorted())

        let b = try Dataset.load(name: "digits", normalize: false, seed: 7)
        XCTAssertEqual(a.train, b.train)
        XCTAssertEqual(a.validation, b.validation)
        XCTAssertEqual(a.test, b.test)
        let c = try Dataset.load(name: "digits", normalize: false, seed: 8)
        XCTAssertNotEqual(a.test.labels == c.test.labels && a.test.features == c.test.features, true)

        let noValidation = try Dataset.load(name: "digits", validationSplit: 0, seed: 7)
        XCTAssertEqual(noValidation.validation.count, 0)
        XCTAssertEqual(noValidation.train.count, 1797 - 359)
        XCTAssertThrowsError(try Dataset.load(name: "digits", validationSplit: 1.5, seed: 7)) { error in
            XCTAssertTrue("\(error)".contains("validationSplit must be in [0, 1)"), "\(error)")
        }
    }

    func testNormalizationFittedOnTrainingSplitOnly() throws {
        let raw = try Dataset.load(name: "digits", normalize: false, seed: 3)
        let dataset = try Dataset.load(name: "digits", seed: 3)
        let normalization = try XCTUnwrap(dataset.normalization)
        XCTAssertEqual(normalization.mean.count, 1)
        // Reference: mean/std of the raw training split, in Double.
        let values = raw.train.features.map(Double.init)
        let mean = values.reduce(0, +) / Double(values.count)
        let std = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)).squareRoot()
        XCTAssertEqual(Double(normalization.mean[0]), mean, accuracy: 1e-5)
        XCTAssertEqual(Double(normalization.std[0]), std, accuracy: 1e-5)
        let trainMean = dataset.train.features.map(Double.init).reduce(0, +) / Double(dataset.train.features.count)
        XCTAssertEqual(trainMean, 0, accuracy: 1e-5)
        // The stored normalisation reproduces the other splits from raw inputs (prediction time).
        XCTAssertEqual(normalization.applied(to: raw.test).features, dataset.test.features)
        XCTAssertEqual(normalization.applied(to: raw.validation).features, dataset.validation.features)
        XCTAssertNotEqual(Double(normalization.mean[0]), 0, accuracy: 0.1)
    }

    func testPerChannelNormalizationOnMultiChannelData() throws {
        // 2 channels of 1×2: channel 0 values {1,3,5,7}, channel 1 constant 4 (std → 1).
        let shape = FeatureShape(channels: 2, height: 1, width: 2)
        let data = LabeledArrays(features: [1, 3, 4, 4, 5, 7, 4, 4], labels: [0, 1], sampleShape: shape, classCount: 2)
        let n = Normalization(fittedOn: data)
        XCTAssertEqual(n.mean, [4, 4])
        XCTAssertEqual(n.std[0], Float(5).squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(n.std[1], 1)
        XCTAssertEqual(n.applied(to: data).features[4], 1 / Float(5).squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(n.applied(to: data).features[2], 0)
    }

    // MARK: IDX

    func testFashionMNISTFromIDX() throws {
        let directory = IDXLoader.defaultFashionMNISTDirectory
        guard FileManager.default.fileExists(atPath: directory + "/train-labels-idx1-ubyte.gz") else {
            throw XCTSkip("Fashion-MNIST not installed at \(directory) (Debian package dataset-fashion-mnist)")
        }
        let raw = try Dataset.loadRaw(name: "fashion-mnist")
        XCTAssertEqual(raw.train.count, 60_000)
        XCTAssertEqual(raw.test?.count, 10_000)
        XCTAssertEqual(raw.metadata.sampleShape, FeatureShape(channels: 1, height: 28, width: 28))
        XCTAssertEqual(Array(raw.train.labels.prefix(4)), [9, 0, 0, 3])
        XCTAssertEqual(Array(try XCTUnwrap(raw.test).labels.prefix(4)), [9, 2, 1, 1])
        XCTAssertEqual(raw.metadata.classNames?[9], "Ankle boot")
        XCTAssertEqual(raw.train.features.max(), 255)
        var rng = SeededGenerator(seed: 1)
        let dataset = try Dataset(raw: raw, rng: &rng)
        XCTAssertEqual(dataset.train.count, 54_000)
        XCTAssertEqual(dataset.validation.count, 6_000)
        XCTAssertEqual(dataset.test.count, 10_000)
    }

    /// Writes an IDX file with the given magic, dimensions and data bytes.
    func writeIDX(_ name: String, magic: UInt32, dimensions: [UInt32], data: [UInt8]) throws -> String {
        var bytes = [UInt8]()
        for word in [magic] + dimensions { bytes += [UInt8(word >> 24), UInt8(word >> 16 & 0xFF), UInt8(word >> 8 & 0xFF), UInt8(word & 0xFF)] }
        bytes += data
        let path = temporaryPath(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testRawIDXFilesAndTheirErrors() throws {
        let images = try writeIDX("img", magic: 0x803, dimensions: [2, 2, 3], data: Array(0..<12))
        let labels = try writeIDX("lab", magic: 0x801, dimensions: [2], data: [4, 1])
        let data = try IDXLoader.load(imagesPath: images, labelsPath: labels)
        XCTAssertEqual(data.sampleShape, FeatureShape(channels: 1, height: 2, width: 3))
        XCTAssertEqual(data.features, (0..<12).map(Float.init))
        XCTAssertEqual(data.labels, [4, 1])

        XCTAssertThrowsError(try IDXLoader.load(imagesPath: labels, labelsPath: labels)) { error in
            XCTAssertEqual(error as? DatasetError, .badMagic(path: labels, expected: 0x803, found: 0x801))
            XCTAssertTrue("\(error)".contains(labels))
        }
        let short = try writeIDX("short", magic: 0x803, dimensions: [2, 2, 3], data: Array(0..<11))
        XCTAssertThrowsError(try IDXLoader.load(imagesPath: short, labelsPath: labels)) { error in
            XCTAssertEqual("\(error)", "dataset file '\(short)': dimensions [2, 2, 3] need 12 data bytes, file has 11")
        }
        let threeLabels = try writeIDX("lab3", magic: 0x801, dimensions: [3], data: [1, 2, 3])
        XCTAssertThrowsError(try IDXLoader.load(imagesPath: images, labelsPath: threeLabels)) { error in
            XCTAssertTrue("\(error)".contains("3 labels but '\(images)' has 2 images"), "\(error)")
        }
        let badLabel = try writeIDX("labbad", magic: 0x801, dimensions: [2], data: [1, 10])
        XCTAssertThrowsError(try IDXLoader.load(imagesPath: images, labelsPath: badLabel)) { error in
            XCTAssertEqual(error as? DatasetError, .labelOutOfRange(path: badLabel, index: 1, label: 10, classCount: 10))
        }
    }

    func testTruncatedAndCorruptGzip() throws {
        let original = try Data(contentsOf: URL(fileURLWithPath: try DigitsLoader.resourcePath()))
        let truncated = temporaryPath("truncated.csv.gz")
        try original.prefix(original.count / 2).write(to: URL(fileURLWithPath: truncated))
        XCTAssertThrowsError(try DigitsLoader.load(path: truncated)) { error in
            guard case let .gzip(path, detail)? = error as? DatasetError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, truncated)
            XCTAssertTrue(detail.contains("truncated"), detail)
        }
        var corrupt = original
        for i in 100..<200 { corrupt[i] ^= 0x5A }
        let corruptPath = temporaryPath("corrupt.csv.gz")
        try corrupt.write(to: URL(fileURLWithPath: corruptPath))
        XCTAssertThrowsError(try DigitsLoader.load(path: corruptPath)) { error in
            guard case .gzip(corruptPath, _)? = error as? DatasetError else { return XCTFail("\(error)") }
        }
        // The full resource decompresses to exactly the CSV (1,797 lines).
        let text = try Gzip.decompress(original, path: "digits")
        XCTAssertEqual(text.filter { $0 == UInt8(ascii: "\n") }.count, 1797)
    }

    // MARK: HDF5 layout

    func testHDF5LayoutWrittenByH5py() throws {
        let path = temporaryPath("h5py-dataset.h5")
        try runPython("""
        import sys, h5py, numpy as np
        with h5py.File(sys.argv[1], "w") as f:
            f["x"] = np.arange(5 * 2 * 3 * 3, dtype=np.uint8).reshape(5, 2, 3, 3)
            f["y"] = np.array([0, 1, 2, 1, 0], dtype=np.int64)
            f["x_test"] = np.full((2, 2, 3, 3), 7, dtype=np.uint8)
            f["y_test"] = np.array([[2], [0]], dtype=np.int32)
            f.attrs["class_names"] = ["a", "b", "c"]
        """, [path])
        let raw = try Dataset.loadRaw(name: path)
        XCTAssertEqual(raw.metadata.sampleShape, FeatureShape(channels: 2, height: 3, width: 3))
        XCTAssertEqual(raw.metadata.classNames, ["a", "b", "c"])
        XCTAssertEqual(raw.metadata.classCount, 3)
        XCTAssertEqual(raw.metadata.name, "h5py-dataset")
        XCTAssertEqual(raw.metadata.inputKind, .image)
        XCTAssertEqual(raw.train.features, (0..<90).map(Float.init))
        XCTAssertEqual(raw.train.labels, [0, 1, 2, 1, 0])
        XCTAssertEqual(raw.test?.labels, [2, 0])
        XCTAssertEqual(raw.test?.features, [Float](repeating: 7, count: 36))

        let flat = temporaryPath("flat.h5")
        try runPython("""
        import sys, h5py, numpy as np
        with h5py.File(sys.argv[1], "w") as f:
            f["x"] = np.linspace(0, 1, 40, dtype=np.float64).reshape(10, 4)
            f["y"] = np.array([0, 1] * 5, dtype=np.uint8)
        """, [flat])
        let flatRaw = try Dataset.loadRaw(name: flat)
        XCTAssertEqual(flatRaw.metadata.sampleShape, FeatureShape(features: 4))
        XCTAssertEqual(flatRaw.metadata.inputKind, .features)
        // Flat features are standardised per feature on the training split.
        var rng = SeededGenerator(seed: 2)
        XCTAssertEqual(try Dataset(raw: flatRaw, rng: &rng).normalization?.mean.count, 4)
        XCTAssertEqual(flatRaw.metadata.classCount, 2)
        XCTAssertNil(flatRaw.test)
        XCTAssertEqual(flatRaw.train.features[39], 1)
    }

    func testHDF5LayoutErrors() throws {
        let noY = temporaryPath("no-y.h5")
        let badLabel = temporaryPath("bad-label.h5")
        let stringY = temporaryPath("string-y.h5")
        let mismatch = temporaryPath("mismatch.h5")
        try runPython("""
        import sys, h5py, numpy as np
        with h5py.File(sys.argv[1], "w") as f:
            f["x"] = np.zeros((3, 4), dtype=np.float32)
        with h5py.File(sys.argv[2], "w") as f:
            f["x"] = np.zeros((3, 4), dtype=np.float32)
            f["y"] = np.array([0, 1, 5])
            f.attrs["class_names"] = ["a", "b"]
        with h5py.File(sys.argv[3], "w") as f:
            f["x"] = np.zeros((2, 4), dtype=np.float32)
            f["y"] = ["a", "b"]
        with h5py.File(sys.argv[4], "w") as f:
            f["x"] = np.zeros((3, 4), dtype=np.float32)
            f["y"] = np.array([0, 1])
        """, [noY, badLabel, stringY, mismatch])
        XCTAssertThrowsError(try Dataset.loadRaw(name: noY)) { error in
            XCTAssertEqual(error as? DatasetError, .missingDataset(path: noY, name: "/y"))
            XCTAssertEqual("\(error)", "dataset file '\(noY)': missing dataset '/y'")
        }
        XCTAssertThrowsError(try Dataset.loadRaw(name: badLabel)) { error in
            XCTAssertEqual(error as? DatasetError, .labelOutOfRange(path: badLabel + ":/y", index: 2, label: 5, classCount: 2))
        }
        XCTAssertThrowsError(try Dataset.loadRaw(name: stringY)) { error in
            XCTAssertTrue("\(error)".contains("/y holds string (variable-length), expected integer labels"), "\(error)")
        }
        XCTAssertThrowsError(try Dataset.loadRaw(name: mismatch)) { error in
            XCTAssertTrue("\(error)".contains("/y has 2 labels but there are 3 samples"), "\(error)")
        }
        let text = temporaryPath("text.h5")
        try "not hdf5".write(toFile: text, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Dataset.loadRaw(name: text)) { error in
            XCTAssertEqual("\(error)", "HDF5 file '\(text)': not an HDF5 file")
        }
    }

    func testMissingFilesAndUnknownNames() throws {
        XCTAssertThrowsError(try Dataset.loadRaw(name: "/no/such/data.h5")) { error in
            XCTAssertEqual(error as? DatasetError, .fileNotFound(path: "/no/such/data.h5"))
        }
        XCTAssertThrowsError(try Dataset.loadRaw(name: "cifar-1000")) { error in
            XCTAssertEqual(error as? DatasetError, .unknownDataset(name: "cifar-1000"))
        }
        XCTAssertThrowsError(try IDXLoader.loadDirectory(temporaryPath("empty-dir-\(UUID())"))) { error in
            guard case .fileNotFound? = error as? DatasetError else { return XCTFail("\(error)") }
        }
    }
}
