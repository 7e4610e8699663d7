import Foundation
import NASCore

/// Reader for the IDX format of MNIST and Fashion-MNIST (`*-images-idx3-ubyte[.gz]`, `*-labels-idx1-ubyte[.gz]`).
///
/// Only unsigned-byte data (type code 0x08) is supported. Magic numbers, dimensions and the data
/// length are checked; pixel values are kept unscaled (0…255) as Float.
///
/// References:
/// - Y. LeCun, C. Cortes, C. Burges, "The MNIST database of handwritten digits" (IDX format).
/// - H. Xiao, K. Rasul, R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning Algorithms", arXiv:1708.07747, 2017.
public enum IDXLoader {
    /// Magic number of an unsigned-byte IDX file with 3 dimensions (images).
    public static let imagesMagic: UInt32 = 0x0000_0803
    /// Magic number of an unsigned-byte IDX file with 1 dimension (labels).
    public static let labelsMagic: UInt32 = 0x0000_0801

    /// The Fashion-MNIST class names, by label.
    public static let fashionMNISTClassNames = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]

    /// The default Fashion-MNIST directory (Debian package `dataset-fashion-mnist`);
    /// the environment variable `NASLAB_FASHION_MNIST_DIR` overrides it.
    public static var defaultFashionMNISTDirectory: String {
        ProcessInfo.processInfo.environment["NASLAB_FASHION_MNIST_DIR"] ?? "/usr/share/datasets/fashion-mnist"
    }

    /// Reads an IDX file: its dimensions and its bytes.
    static func read(path: String, magic expected: UInt32) throws -> (dimensions: [Int], bytes: Data) {
        let data = try Gzip.readFile(path)
        guard data.count >= 4 else { throw DatasetError.malformed(path: path, detail: "file too short for an IDX header (\(data.count) bytes)") }
        func word(_ offset: Int) -> UInt32 {
            let base = data.startIndex + offset
            return UInt32(data[base]) << 24 | UInt32(data[base + 1]) << 16 | UInt32(data[base + 2]) << 8 | UInt32(data[base + 3])
        }
        let magic = word(0)
        guard magic == expected else { throw DatasetError.badMagic(path: path, expected: expected, found: magic) }
        let rank = Int(magic & 0xFF)
        let headerSize = 4 + 4 * rank
        guard data.count >= headerSize else {
            throw DatasetError.malformed(path: path, detail: "file too short for an IDX header with \(rank) dimensions")
        }
        let dimensions = (0..<rank).map { Int(word(4 + 4 * $0)) }
        guard dimensions.allSatisfy({ $0 > 0 }) else {
            throw DatasetError.malformed(path: path, detail: "invalid dimensions \(dimensions)")
        }
        let expectedBytes = dimensions.reduce(1, *)
        let actualBytes = data.count - headerSize
        guard actualBytes == expectedBytes else {
            throw DatasetError.malformed(path: path,
                                         detail: "dimensions \(dimensions) need \(expectedBytes) data bytes, file has \(actualBytes)")
        }
        return (dimensions, data.subdata(in: (data.startIndex + headerSize)..<data.endIndex))
    }

    /// Loads an images file and a labels file into ``LabeledArrays`` (samples 1×H×W).
    /// - Parameters:
    ///   - imagesPath: an idx3-ubyte file, gzip or raw.
    ///   - labelsPath: an idx1-ubyte file, gzip or raw.
    ///   - classCount: labels must be in `0..<classCount` (default 10).
    public static func load(imagesPath: String, labelsPath: String, classCount: Int = 10) throws -> LabeledArrays {
        let images = try read(path: imagesPath, magic: imagesMagic)
        let labels = try read(path: labelsPath, magic: labelsMagic)
        guard images.dimensions[0] == labels.dimensions[0] else {
            throw DatasetError.malformed(path: labelsPath,
                                         detail: "\(labels.dimensions[0]) labels but '\(imagesPath)' has \(images.dimensions[0]) images")
        }
        var labelValues = [Int32]()
        labelValues.reserveCapacity(labels.bytes.count)
        for (index, byte) in labels.bytes.enumerated() {
            guard Int(byte) < classCount else {
                throw DatasetError.labelOutOfRange(path: labelsPath, index: index, label: Int64(byte), classCount: classCount)
            }
            labelValues.append(Int32(byte))
        }
        let features = images.bytes.withUnsafeBytes { raw in raw.bindMemory(to: UInt8.self).map { Float($0) } }
        let shape = FeatureShape(channels: 1, height: images.dimensions[1], width: images.dimensions[2])
        return LabeledArrays(features: features, labels: labelValues, sampleShape: shape, classCount: classCount)
    }

    /// Loads `train-*` and `t10k-*` IDX files (gzip or raw) from a directory, e.g. Fashion-MNIST.
    /// - Parameters:
    ///   - directory: holds `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`, `t10k-…`.
    ///   - name: the dataset name for the metadata.
    ///   - classNames: class names (default: Fashion-MNIST's).
    public static func loadDirectory(_ directory: String, name: String = "fashion-mnist",
                                     classNames: [String] = fashionMNISTClassNames) throws -> RawDataset {
        func file(_ stem: String) throws -> String {
            for candidate in [stem + ".gz", stem] {
                let path = (directory as NSString).appendingPathComponent(candidate)
                if FileManager.default.fileExists(atPath: path) { return path }
            }
            throw DatasetError.fileNotFound(path: (directory as NSString).appendingPathComponent(stem + "[.gz]"))
        }
        let train = try load(imagesPath: try file("train-images-idx3-ubyte"), labelsPath: try file("train-labels-idx1-ubyte"),
                             classCount: classNames.count)
        let test = try load(imagesPath: try file("t10k-images-idx3-ubyte"), labelsPath: try file("t10k-labels-idx1-ubyte"),
                            classCount: classNames.count)
        guard train.sampleShape == test.sampleShape else {
            throw DatasetError.malformed(path: directory, detail: "train images are \(train.sampleShape), test images \(test.sampleShape)")
        }
        return RawDataset(metadata: DatasetMetadata(name: name, source: directory, sampleShape: train.sampleShape,
                                                    classCount: classNames.count, classNames: classNames, inputKind: .image),
                          train: train, test: test)
    }
}
