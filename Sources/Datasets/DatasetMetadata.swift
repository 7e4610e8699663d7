import NASCore

/// What a dataset is: its name, where it came from, the sample shape and the classes.
public struct DatasetMetadata: Codable, Sendable, Equatable {
    /// A short name (`digits`, `fashion-mnist`, or the file name).
    public var name: String
    /// Where the data came from (a file, directory or resource path).
    public var source: String
    /// The shape of one sample (C×H×W; flat features are F×1×1).
    public var sampleShape: FeatureShape
    /// The number of classes; labels are in `0..<classCount`.
    public var classCount: Int
    /// Class names, if known (`classNames[label]`).
    public var classNames: [String]?

    public init(name: String, source: String, sampleShape: FeatureShape, classCount: Int, classNames: [String]? = nil) {
        self.name = name
        self.source = source
        self.sampleShape = sampleShape
        self.classCount = classCount
        self.classNames = classNames
    }
}

/// Samples as read from files, before validation splitting and normalisation.
public struct RawDataset: Sendable, Equatable {
    public var metadata: DatasetMetadata
    /// The training part (the validation split is taken from it).
    public var train: LabeledArrays
    /// The file's own test part, if it has one.
    public var test: LabeledArrays?

    public init(metadata: DatasetMetadata, train: LabeledArrays, test: LabeledArrays?) {
        self.metadata = metadata
        self.train = train
        self.test = test
    }
}

/// Per-channel standardisation `(x − mean[c]) / std[c]`, fitted on a training split.
///
/// Stored with the dataset (and in experiment records) so that new inputs at prediction time get
/// exactly the same transformation.
public struct Normalization: Codable, Sendable, Equatable {
    public var mean: [Float]
    public var std: [Float]

    public init(mean: [Float], std: [Float]) {
        precondition(mean.count == std.count, "mean and std need one value per channel")
        self.mean = mean
        self.std = std
    }

    /// Fits per-channel mean and standard deviation (population, in Double) on `data`.
    /// A channel with standard deviation below 1e-6 gets std 1 (it is only centred).
    public init(fittedOn data: LabeledArrays) {
        let shape = data.sampleShape
        let plane = shape.height * shape.width
        var sum = [Double](repeating: 0, count: shape.channels)
        var sumSquares = [Double](repeating: 0, count: shape.channels)
        data.features.withUnsafeBufferPointer { features in
            for sample in 0..<data.count {
                for channel in 0..<shape.channels {
                    let start = (sample * shape.channels + channel) * plane
                    var s = 0.0, q = 0.0
                    for k in start..<(start + plane) {
                        let v = Double(features[k])
                        s += v
                        q += v * v
                    }
                    sum[channel] += s
                    sumSquares[channel] += q
                }
            }
        }
        let n = Double(max(1, data.count * plane))
        mean = sum.map { Float($0 / n) }
        std = zip(sum, sumSquares).map { s, q in
            let variance = max(0, q / n - (s / n) * (s / n))
            let deviation = variance.squareRoot()
            return deviation < 1e-6 ? 1 : Float(deviation)
        }
    }

    /// Normalises sample-major C×H×W `features` in place.
    public func apply(to features: inout [Float], sampleShape: FeatureShape) {
        precondition(sampleShape.channels == mean.count, "normalisation has \(mean.count) channels, samples have \(sampleShape.channels)")
        let plane = sampleShape.height * sampleShape.width
        let sampleSize = sampleShape.elementCount
        guard sampleSize > 0 else { return }
        let scale = std.map { 1 / $0 }
        features.withUnsafeMutableBufferPointer { buffer in
            for sampleStart in stride(from: 0, to: buffer.count, by: sampleSize) {
                for channel in 0..<mean.count {
                    let start = sampleStart + channel * plane
                    let m = mean[channel], s = scale[channel]
                    for k in start..<(start + plane) { buffer[k] = (buffer[k] - m) * s }
                }
            }
        }
    }

    /// A normalised copy of `data`.
    public func applied(to data: LabeledArrays) -> LabeledArrays {
        var copy = data
        apply(to: &copy.features, sampleShape: data.sampleShape)
        return copy
    }
}
