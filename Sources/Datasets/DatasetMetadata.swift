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
    /// What a sample is: an image (C×H×W), a token-id sequence (K×1×L: K ids per position) or a flat feature vector (F×1×1).
    ///
    /// Metadata JSON written before this field existed decodes with the default derived from
    /// ``sampleShape`` (see ``defaultInputKind(for:)``).
    public var inputKind: InputKind

    /// - Parameter inputKind: defaults to ``defaultInputKind(for:)`` of `sampleShape`.
    public init(name: String, source: String, sampleShape: FeatureShape, classCount: Int, classNames: [String]? = nil,
                inputKind: InputKind? = nil) {
        self.name = name
        self.source = source
        self.sampleShape = sampleShape
        self.classCount = classCount
        self.classNames = classNames
        self.inputKind = inputKind ?? DatasetMetadata.defaultInputKind(for: sampleShape)
    }

    /// `.features` for a flat F×1×1 shape, `.image` for C×H×W with H·W > 1.
    public static func defaultInputKind(for shape: FeatureShape) -> InputKind {
        shape.height * shape.width > 1 ? .image : .features
    }

    private enum CodingKeys: String, CodingKey {
        case name, source, sampleShape, classCount, classNames, inputKind
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        source = try container.decode(String.self, forKey: .source)
        sampleShape = try container.decode(FeatureShape.self, forKey: .sampleShape)
        classCount = try container.decode(Int.self, forKey: .classCount)
        classNames = try container.decodeIfPresent([String].self, forKey: .classNames)
        inputKind = try container.decodeIfPresent(InputKind.self, forKey: .inputKind)
            ?? DatasetMetadata.defaultInputKind(for: sampleShape)
    }
}

/// The texts of a text dataset, before tokenisation (labels stay in the ``RawDataset``'s parts).
public struct RawText: Sendable, Equatable {
    /// One text per sample of ``RawDataset/train`` (same order).
    public var trainTexts: [String]
    /// One text per sample of ``RawDataset/test``; present exactly when the raw dataset has a test part.
    public var testTexts: [String]?

    public init(trainTexts: [String], testTexts: [String]? = nil) {
        self.trainTexts = trainTexts
        self.testTexts = testTexts
    }
}

/// Samples as read from files, before validation splitting and normalisation.
///
/// A **text** dataset (``text`` is set) is not tokenised yet: its parts hold only the labels, with
/// empty features and the zero-size sample shape ``textPlaceholderShape`` (1×1×0), and the texts are in
/// ``text`` (one per label, same order). Its ``metadata`` is provisional until ``Dataset`` fits the
/// tokenizer: `inputKind` is `.tokens(vocabularySize:)` with the *cap* of the default ``TextOptions``
/// (an upper bound of the fitted size) and `sampleShape` is 1×1×(default maximum length).
public struct RawDataset: Sendable, Equatable {
    public var metadata: DatasetMetadata
    /// The training part (the validation split is taken from it).
    public var train: LabeledArrays
    /// The file's own test part, if it has one.
    public var test: LabeledArrays?
    /// The texts of a text dataset (`nil` for image and tabular data).
    public var text: RawText?

    /// The sample shape of the label-only parts of a text dataset (1×1×0: no features before tokenisation).
    public static let textPlaceholderShape = FeatureShape(channels: 1, height: 1, width: 0)

    public init(metadata: DatasetMetadata, train: LabeledArrays, test: LabeledArrays?, text: RawText? = nil) {
        self.metadata = metadata
        self.train = train
        self.test = test
        self.text = text
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
