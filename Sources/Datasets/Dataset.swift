import Foundation
import HDF5Kit
import NASCore

/// A classification dataset ready for training: train / validation / test splits, normalised.
///
/// Built from a ``RawDataset``: the validation split is taken from the training part, and for
/// datasets without their own test part (digits) a test split is taken first. Both splits are
/// stratified (per class, each class's indices shuffled with the injected generator and
/// `round(fraction × class size)` of them held out); samples keep their original relative order.
/// The per-channel normalisation is fitted on the final training split only and applied to all
/// three splits; it is kept in ``normalization`` for new inputs at prediction time. Images are
/// standardised per channel, tabular F×1×1 data per feature (every feature is a channel).
///
/// A **text** dataset (``RawDataset/text`` set) is split the same way; then a ``Tokenizer`` is fitted
/// on the final training texts only (with ``TextOptions``) and all three splits are encoded: features
/// are token ids as `Float`, sample shape 1×1×maximumLength, `metadata.inputKind` is
/// `.tokens(vocabularySize:)`, ids are never normalised (``normalization`` is `nil`) and the
/// tokenizer is kept in ``tokenizer`` for new texts at prediction time.
///
/// ```swift
/// var rng = SeededGenerator(seed: 1)
/// let digits = try Dataset.load(name: "digits", rng: &rng)
/// // digits.train.count == 1293, digits.validation.count == 145, digits.test.count == 359
/// ```
public struct Dataset: Sendable {
    public var metadata: DatasetMetadata
    public var train: LabeledArrays
    public var validation: LabeledArrays
    public var test: LabeledArrays
    /// The normalisation applied to all splits (`nil` when built with `normalize: false` and for text).
    public var normalization: Normalization?
    /// The tokenizer fitted on the training texts of a text dataset (`nil` for image and tabular data).
    public var tokenizer: Tokenizer?
    /// The original texts of each split of a text dataset, in sample order (`nil` otherwise).
    public var texts: SplitTexts?

    /// The texts of the three splits of a text dataset.
    public struct SplitTexts: Sendable, Equatable {
        public var train: [String]
        public var validation: [String]
        public var test: [String]
    }

    /// The fraction of held-out test samples for datasets without a test part (0.2).
    public static let defaultTestSplit = 0.2
    /// The default validation fraction, taken from the training part (0.1).
    public static let defaultValidationSplit = 0.1

    /// Splits and normalises raw data.
    /// - Parameters:
    ///   - raw: loaded samples.
    ///   - validationSplit: fraction of the training part held out for validation, in [0, 1) (default 0.1).
    ///   - testSplit: fraction held out as test set when `raw` has no test part, in [0, 1) (default 0.2).
    ///   - normalize: fit and apply per-channel standardisation to image and tabular data (default `true`;
    ///     token ids are never normalised).
    ///   - textOptions: vocabulary cap, sequence length and minimum word count for text datasets.
    ///   - tokenizer: for text datasets, encode with this tokenizer (a trained model's) instead of
    ///     fitting one on the training texts; the splits are the same.
    ///   - rng: the generator for the shuffles.
    public init(raw: RawDataset, validationSplit: Double = Dataset.defaultValidationSplit,
                testSplit: Double = Dataset.defaultTestSplit, normalize: Bool = true,
                textOptions: TextOptions = TextOptions(), tokenizer given: Tokenizer? = nil,
                rng: inout SeededGenerator) throws {
        for (name, value) in [("validationSplit", validationSplit), ("testSplit", testSplit)] where !(value >= 0 && value < 1) {
            throw DatasetError.invalidArgument(detail: "\(name) must be in [0, 1), got \(value)")
        }
        var trainTexts = raw.text?.trainTexts
        var testTexts = raw.text?.testTexts
        if raw.text != nil {
            guard trainTexts?.count == raw.train.count, testTexts?.count == raw.test?.count else {
                throw DatasetError.invalidArgument(detail: "dataset '\(raw.metadata.name)': the texts and labels of a text dataset disagree "
                    + "(\(raw.train.count) training labels, \(trainTexts?.count ?? 0) texts; "
                    + "\(raw.test?.count ?? 0) test labels, \(testTexts?.count ?? 0) texts)")
            }
        }
        var trainPart = raw.train
        var testPart: LabeledArrays
        if let test = raw.test {
            testPart = test
        } else {
            let (kept, heldOut) = Dataset.stratifiedSplit(labels: trainPart.labels, classCount: trainPart.classCount,
                                                         fraction: testSplit, rng: &rng)
            testPart = trainPart.subset(heldOut)
            trainPart = trainPart.subset(kept)
            testTexts = trainTexts.map { texts in heldOut.map { texts[$0] } }
            trainTexts = trainTexts.map { texts in kept.map { texts[$0] } }
        }
        let (kept, heldOut) = Dataset.stratifiedSplit(labels: trainPart.labels, classCount: trainPart.classCount,
                                                     fraction: validationSplit, rng: &rng)
        var validationPart = trainPart.subset(heldOut)
        trainPart = trainPart.subset(kept)
        let validationTexts = trainTexts.map { texts in heldOut.map { texts[$0] } }
        trainTexts = trainTexts.map { texts in kept.map { texts[$0] } }
        guard trainPart.count > 0 else {
            throw DatasetError.invalidArgument(detail: "dataset '\(raw.metadata.name)': no training samples left after splitting")
        }
        metadata = raw.metadata
        if let trainTexts, let validationTexts, let testTexts {
            // Text: the vocabulary comes from the training texts only; ids are not normalised.
            let tokenizer = try given ?? textOptions.fitTokenizer(on: trainTexts)
            func encoded(_ part: LabeledArrays, _ texts: [String]) -> LabeledArrays {
                LabeledArrays(features: tokenizer.encodeFeatures(texts).features, labels: part.labels,
                              sampleShape: tokenizer.sampleShape, classCount: part.classCount)
            }
            train = encoded(trainPart, trainTexts)
            validation = encoded(validationPart, validationTexts)
            test = encoded(testPart, testTexts)
            metadata.sampleShape = tokenizer.sampleShape
            metadata.inputKind = tokenizer.inputKind
            normalization = nil
            self.tokenizer = tokenizer
            texts = SplitTexts(train: trainTexts, validation: validationTexts, test: testTexts)
            return
        }
        tokenizer = nil
        texts = nil
        if normalize && raw.metadata.inputKind.isStandardized {
            let normalization = Normalization(fittedOn: trainPart)
            normalization.apply(to: &trainPart.features, sampleShape: trainPart.sampleShape)
            normalization.apply(to: &validationPart.features, sampleShape: validationPart.sampleShape)
            normalization.apply(to: &testPart.features, sampleShape: testPart.sampleShape)
            self.normalization = normalization
        } else {
            self.normalization = nil
        }
        train = trainPart
        validation = validationPart
        test = testPart
    }

    /// Splits indices `0..<labels.count` per class: `round(fraction × n_c)` random indices of each
    /// class `c` are held out. Both lists are returned in increasing order.
    public static func stratifiedSplit(labels: [Int32], classCount: Int, fraction: Double,
                                       rng: inout SeededGenerator) -> (kept: [Int], heldOut: [Int]) {
        var byClass = [[Int]](repeating: [], count: max(classCount, Int(labels.max() ?? 0) + 1))
        for (index, label) in labels.enumerated() { byClass[Int(label)].append(index) }
        var kept = [Int](), heldOut = [Int]()
        for var indices in byClass where !indices.isEmpty {
            let count = Int((Double(indices.count) * fraction).rounded())
            rng.shuffle(&indices)
            heldOut.append(contentsOf: indices[0..<count])
            kept.append(contentsOf: indices[count...])
        }
        return (kept.sorted(), heldOut.sorted())
    }

    /// Loads a dataset by name or path, then splits and normalises it.
    ///
    /// - `"digits"`: the embedded scikit-learn digits (1×8×8, 10 classes, 1,797 samples; 20 % test split).
    /// - `"fashion-mnist"`: IDX files from ``IDXLoader/defaultFashionMNISTDirectory`` (60,000 train, 10,000 test).
    /// - `"fortunes"`: Debian's fortune cookie files (``FortunesLoader``), one text class per category
    ///   with at least 100 entries; 20 % test split.
    /// - `"fashion-scenes"`: the default ``FashionScenes`` (10,000 train + 2,000 test 1×64×64 scenes with
    ///   masks and boxes), generated on first use into ``FashionScenes/defaultCachePath``.
    /// - a directory: IDX files `train-*`/`t10k-*` inside it.
    /// - a file ending in `.csv`: a text or tabular CSV (``CSVLoader``, read with `csvOptions`).
    /// - another file: the HDF5 layout of ``HDF5DatasetLoader``.
    /// - Parameters:
    ///   - name: see above.
    ///   - validationSplit: fraction of the training part held out for validation (default 0.1).
    ///   - testSplit: held-out test fraction for datasets without their own test part (default 0.2).
    ///   - normalize: per-channel standardisation fitted on the training split (default `true`).
    ///   - textOptions: tokenizer options for text datasets.
    ///   - csvOptions: column names for CSV files.
    ///   - rng: generator for the splits.
    public static func load(name: String, validationSplit: Double = defaultValidationSplit,
                            testSplit: Double = defaultTestSplit, normalize: Bool = true,
                            textOptions: TextOptions = TextOptions(), csvOptions: CSVOptions = CSVOptions(),
                            rng: inout SeededGenerator) throws -> Dataset {
        try Dataset(raw: loadRaw(name: name, csvOptions: csvOptions), validationSplit: validationSplit, testSplit: testSplit,
                    normalize: normalize, textOptions: textOptions, rng: &rng)
    }

    /// Same as ``load(name:validationSplit:testSplit:normalize:textOptions:csvOptions:rng:)`` with
    /// `SeededGenerator(seed: seed)`.
    public static func load(name: String, validationSplit: Double = defaultValidationSplit,
                            testSplit: Double = defaultTestSplit, normalize: Bool = true,
                            textOptions: TextOptions = TextOptions(), csvOptions: CSVOptions = CSVOptions(),
                            seed: UInt64) throws -> Dataset {
        var rng = SeededGenerator(seed: seed)
        return try load(name: name, validationSplit: validationSplit, testSplit: testSplit, normalize: normalize,
                        textOptions: textOptions, csvOptions: csvOptions, rng: &rng)
    }

    /// Loads the raw samples for `name` (see ``load(name:validationSplit:testSplit:normalize:textOptions:csvOptions:rng:)``).
    public static func loadRaw(name: String, csvOptions: CSVOptions = CSVOptions()) throws -> RawDataset {
        switch name.lowercased() {
        case "digits": return try DigitsLoader.load()
        case "fashion-mnist", "fashion_mnist", "fashionmnist":
            return try IDXLoader.loadDirectory(IDXLoader.defaultFashionMNISTDirectory)
        case "fortunes": return try FortunesLoader.load()
        case "fashion-scenes", "fashion_scenes": return try FashionScenes.loadCached()
        default:
            var isDirectory: ObjCBool = false
            let isCSV = name.lowercased().hasSuffix(".csv")
            guard FileManager.default.fileExists(atPath: name, isDirectory: &isDirectory) else {
                if name.contains("/") || name.hasSuffix(".h5") || name.hasSuffix(".hdf5") || isCSV {
                    throw DatasetError.fileNotFound(path: name)
                }
                throw DatasetError.unknownDataset(name: name)
            }
            if isDirectory.boolValue {
                return try IDXLoader.loadDirectory(name, name: (name as NSString).lastPathComponent,
                                                  classNames: (0..<10).map(String.init))
            }
            if isCSV { return try CSVLoader.load(path: name, options: csvOptions) }
            return try HDF5DatasetLoader.load(path: name)
        }
    }
}
