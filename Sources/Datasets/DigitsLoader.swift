import Foundation
import NASCore

/// The scikit-learn "digits" dataset embedded as a resource: 1,797 8×8 images of handwritten
/// digits with pixel values 0…16, 10 classes. It has no test split of its own.
///
/// The resource `digits.csv.gz` has one row per sample: 64 pixel values (row-major) then the label.
///
/// References:
/// - E. Alpaydin, C. Kaynak, "Optical Recognition of Handwritten Digits", UCI Machine Learning Repository, 1998.
public enum DigitsLoader {
    /// The number of samples in the resource.
    public static let sampleCount = 1797

    /// The path of the embedded `digits.csv.gz` resource.
    public static func resourcePath() throws -> String {
        guard let url = Bundle.module.url(forResource: "digits.csv", withExtension: "gz") else {
            throw DatasetError.fileNotFound(path: "digits.csv.gz (Datasets module resource)")
        }
        return url.path
    }

    /// Loads the embedded digits (pixel values unscaled, 0…16) as a ``RawDataset`` without a test part.
    public static func load() throws -> RawDataset {
        try load(path: try resourcePath())
    }

    /// Loads a digits CSV (gzip or plain) from `path`.
    public static func load(path: String) throws -> RawDataset {
        let data = try Gzip.readFile(path)
        var features = [Float]()
        features.reserveCapacity(sampleCount * 64)
        var labels = [Int32]()
        labels.reserveCapacity(sampleCount)
        var fields = [Int]()
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            lineNumber += 1
            fields.removeAll(keepingCapacity: true)
            for field in line.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
                let text = String(decoding: field, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                guard let value = Int(text) else {
                    throw DatasetError.malformed(path: path, detail: "line \(lineNumber): '\(text)' is not an integer")
                }
                fields.append(value)
            }
            guard fields.count == 65 else {
                throw DatasetError.malformed(path: path, detail: "line \(lineNumber): expected 65 fields (64 pixels and a label), found \(fields.count)")
            }
            if let bad = fields[0..<64].first(where: { $0 < 0 || $0 > 16 }) {
                throw DatasetError.malformed(path: path, detail: "line \(lineNumber): pixel value \(bad) outside 0…16")
            }
            guard (0..<10).contains(fields[64]) else {
                throw DatasetError.labelOutOfRange(path: path, index: lineNumber - 1, label: Int64(fields[64]), classCount: 10)
            }
            features.append(contentsOf: fields[0..<64].map { Float($0) })
            labels.append(Int32(fields[64]))
        }
        guard !labels.isEmpty else { throw DatasetError.malformed(path: path, detail: "no samples") }
        let shape = FeatureShape(channels: 1, height: 8, width: 8)
        return RawDataset(
            metadata: DatasetMetadata(name: "digits", source: path, sampleShape: shape, classCount: 10,
                                      classNames: (0..<10).map(String.init), inputKind: .image),
            train: LabeledArrays(features: features, labels: labels, sampleShape: shape, classCount: 10),
            test: nil)
    }
}
