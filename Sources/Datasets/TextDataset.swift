import NASCore

/// How ``Dataset`` tokenises a text dataset (see ``Tokenizer``).
public struct TextOptions: Sendable, Hashable {
    /// The vocabulary cap including `<pad>` and `<unk>` (default 20,000).
    public var maximumVocabulary: Int
    /// Token ids per sample; longer texts are truncated, shorter ones padded with 0 (default 128).
    public var maximumLength: Int
    /// Words seen fewer times in the training texts get the unknown id (default 1: every word counts).
    public var minimumCount: Int
    /// Hashed character n-grams and word bigrams per position (default ``Tokenizer/Subwords/standard``;
    /// `nil`: word ids only).
    public var subwords: Tokenizer.Subwords?

    public init(maximumVocabulary: Int = Tokenizer.defaultMaximumVocabulary,
                maximumLength: Int = Tokenizer.defaultMaximumLength, minimumCount: Int = 1,
                subwords: Tokenizer.Subwords? = .standard) {
        self.maximumVocabulary = maximumVocabulary
        self.maximumLength = maximumLength
        self.minimumCount = minimumCount
        self.subwords = subwords
    }

    /// Fits a tokenizer with these options on `texts`.
    public func fitTokenizer(on texts: [String]) throws -> Tokenizer {
        try Tokenizer(fittedOn: texts, maximumVocabulary: maximumVocabulary, minimumCount: minimumCount,
                      maximumLength: maximumLength, subwords: subwords)
    }

    /// The sample shape of texts encoded with these options: ids per position × 1 × ``maximumLength``.
    public var sampleShape: FeatureShape {
        FeatureShape(channels: subwords?.idsPerToken ?? 1, height: 1, width: maximumLength)
    }

    /// The most ids a tokenizer fitted with these options uses (vocabulary cap + subword buckets):
    /// the embedding size of estimates made before a dataset is tokenized.
    public var maximumIdCount: Int { maximumVocabulary + (subwords?.buckets ?? 0) }
}

extension RawDataset {
    /// A raw text dataset (see ``RawDataset`` for the layout): texts with labels in `0..<classNames.count`.
    ///
    /// The metadata is provisional until ``Dataset`` tokenises the texts: the default ``TextOptions``'
    /// ``TextOptions/sampleShape`` and `.tokens(vocabularySize:)` of its ``TextOptions/maximumIdCount``.
    /// - Throws: ``DatasetError/invalidArgument(detail:)`` when counts disagree or a label is out of range.
    public init(name: String, source: String, classNames: [String], trainTexts: [String], trainLabels: [Int32],
                testTexts: [String]? = nil, testLabels: [Int32]? = nil) throws {
        let classCount = classNames.count
        guard classCount > 0 else { throw DatasetError.invalidArgument(detail: "text dataset '\(name)': no classes") }
        func part(_ texts: [String], _ labels: [Int32], _ what: String) throws -> LabeledArrays {
            guard texts.count == labels.count else {
                throw DatasetError.invalidArgument(detail: "text dataset '\(name)': \(texts.count) \(what) texts but \(labels.count) labels")
            }
            if let bad = labels.first(where: { $0 < 0 || Int($0) >= classCount }) {
                throw DatasetError.invalidArgument(detail: "text dataset '\(name)': label \(bad) outside 0..<\(classCount)")
            }
            return LabeledArrays(features: [], labels: labels, sampleShape: RawDataset.textPlaceholderShape, classCount: classCount)
        }
        guard (testTexts == nil) == (testLabels == nil) else {
            throw DatasetError.invalidArgument(detail: "text dataset '\(name)': give both test texts and test labels, or neither")
        }
        let train = try part(trainTexts, trainLabels, "training")
        let test = try testTexts.map { try part($0, testLabels ?? [], "test") }
        let metadata = DatasetMetadata(
            name: name, source: source,
            sampleShape: TextOptions().sampleShape,
            classCount: classCount, classNames: classNames,
            inputKind: .tokens(vocabularySize: TextOptions().maximumIdCount))
        self.init(metadata: metadata, train: train, test: test, text: RawText(trainTexts: trainTexts, testTexts: testTexts))
    }
}
