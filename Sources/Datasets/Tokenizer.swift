import Foundation
import NASCore

/// A word-level tokenizer with a vocabulary fitted on training texts.
///
/// **Splitting** (``tokenize(_:)``): the text is lower-cased first (Unicode-aware `String.lowercased()`,
/// so "ÉTÉ" → "été"). Tokens are then
/// - maximal runs of letters and numbers (Unicode letters and numbers: "naïve", "東京", "42", "x2");
///   an apostrophe (`'` or `’`) *between* two such characters stays inside the word and is stored as
///   `'` ("don't", "don’t" → `don't`; "rock'n'roll" is one token);
/// - every other character that is not whitespace (punctuation, symbols, emoji, a leading or
///   trailing apostrophe) is a token of its own ("hi!!" → `hi`, `!`, `!`).
///
/// Whitespace and control characters only separate tokens. Characters are extended grapheme
/// clusters, so a letter with combining accents is one character.
///
/// **Vocabulary** (``init(fittedOn:maximumVocabulary:minimumCount:maximumLength:)``): id 0 is
/// `<pad>` (``InputKind/paddingToken``), id 1 is `<unk>` (``InputKind/unknownToken``); then the
/// words of the training texts by descending number of occurrences, ties broken by the words'
/// lexicographic order (Swift `String` `<`), so the result is deterministic. Words seen fewer than
/// `minimumCount` times are dropped, and the vocabulary is capped at `maximumVocabulary` entries
/// *including* the two special tokens. A word outside the vocabulary encodes to 1.
///
/// **Encoding** (``encode(_:)``): exactly ``maximumLength`` ids per text (default 128): the first
/// `maximumLength` tokens (the rest is truncated), then padding ids 0 up to `maximumLength`.
///
/// It serialises to a compact JSON string (``encodedJSON()`` / ``init(json:)``) for storing with a
/// trained model.
public struct Tokenizer: Codable, Sendable, Equatable {
    /// The vocabulary in id order: `vocabulary[0] == "<pad>"`, `vocabulary[1] == "<unk>"`.
    public private(set) var vocabulary: [String]
    /// The number of ids per encoded text (longer texts are truncated, shorter ones padded).
    public let maximumLength: Int
    /// The vocabulary cap used when fitting (including `<pad>` and `<unk>`).
    public let maximumVocabulary: Int
    /// The minimum number of occurrences in the training texts for a word to get an id.
    public let minimumCount: Int
    private var ids: [String: Int32]

    /// The text of the padding token (id 0).
    public static let paddingText = "<pad>"
    /// The text of the unknown token (id 1).
    public static let unknownText = "<unk>"
    /// Default ``maximumVocabulary`` (20,000, including the two special tokens).
    public static let defaultMaximumVocabulary = 20_000
    /// Default ``maximumLength`` (128).
    public static let defaultMaximumLength = 128
    /// The version written by ``encodedJSON()``.
    public static let formatVersion = 1

    /// The number of ids, `vocabulary.count` (at most ``maximumVocabulary``).
    public var vocabularySize: Int { vocabulary.count }

    /// Fits the vocabulary on `texts` (the training texts only).
    /// - Parameters:
    ///   - maximumVocabulary: the cap on the vocabulary size including `<pad>` and `<unk>` (≥ 2; default 20,000).
    ///   - minimumCount: words occurring fewer times are left out (≥ 1; default 1).
    ///   - maximumLength: ids per encoded text (≥ 1; default 128).
    /// - Throws: ``DatasetError/invalidArgument(detail:)`` for out-of-range options.
    public init(fittedOn texts: [String], maximumVocabulary: Int = Tokenizer.defaultMaximumVocabulary,
                minimumCount: Int = 1, maximumLength: Int = Tokenizer.defaultMaximumLength) throws {
        try Tokenizer.check(maximumVocabulary: maximumVocabulary, minimumCount: minimumCount, maximumLength: maximumLength)
        var counts = [String: Int]()
        for text in texts {
            for token in Tokenizer.tokenize(text) { counts[token, default: 0] += 1 }
        }
        let words = counts.filter { $0.value >= minimumCount }
            .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .prefix(maximumVocabulary - 2)
            .map(\.key)
        try self.init(vocabulary: [Tokenizer.paddingText, Tokenizer.unknownText] + words, maximumLength: maximumLength,
                      maximumVocabulary: maximumVocabulary, minimumCount: minimumCount)
    }

    /// A tokenizer with a given vocabulary (id order; it must start with `<pad>`, `<unk>` and have no duplicates).
    public init(vocabulary: [String], maximumLength: Int = Tokenizer.defaultMaximumLength,
                maximumVocabulary: Int? = nil, minimumCount: Int = 1) throws {
        let cap = maximumVocabulary ?? max(vocabulary.count, 2)
        try Tokenizer.check(maximumVocabulary: cap, minimumCount: minimumCount, maximumLength: maximumLength)
        guard vocabulary.count >= 2, vocabulary[0] == Tokenizer.paddingText, vocabulary[1] == Tokenizer.unknownText else {
            throw DatasetError.invalidArgument(detail: "tokenizer vocabulary must start with \"<pad>\", \"<unk>\"")
        }
        guard vocabulary.count <= cap else {
            throw DatasetError.invalidArgument(detail: "tokenizer vocabulary has \(vocabulary.count) entries, more than maximumVocabulary \(cap)")
        }
        guard vocabulary.count <= Int(Int32.max) else {
            throw DatasetError.invalidArgument(detail: "tokenizer vocabulary too large")
        }
        var ids = [String: Int32](minimumCapacity: vocabulary.count)
        for (id, word) in vocabulary.enumerated() {
            if let previous = ids.updateValue(Int32(id), forKey: word) {
                throw DatasetError.invalidArgument(detail: "tokenizer vocabulary lists '\(word)' twice (ids \(previous) and \(id))")
            }
        }
        self.vocabulary = vocabulary
        self.ids = ids
        self.maximumLength = maximumLength
        self.maximumVocabulary = cap
        self.minimumCount = minimumCount
    }

    private static func check(maximumVocabulary: Int, minimumCount: Int, maximumLength: Int) throws {
        guard maximumVocabulary >= 2 else {
            throw DatasetError.invalidArgument(detail: "maximumVocabulary must be at least 2 (<pad> and <unk>), got \(maximumVocabulary)")
        }
        guard minimumCount >= 1 else { throw DatasetError.invalidArgument(detail: "minimumCount must be at least 1, got \(minimumCount)") }
        guard maximumLength >= 1 else { throw DatasetError.invalidArgument(detail: "maximumLength must be at least 1, got \(maximumLength)") }
    }

    // MARK: - Splitting and encoding

    /// The tokens of `text` (lower-cased; see the type's documentation for the rules).
    public func tokenize(_ text: String) -> [String] { Tokenizer.tokenize(text) }

    /// The tokens of `text` (lower-cased; see the type's documentation for the rules).
    public static func tokenize(_ text: String) -> [String] {
        var tokens = [String]()
        var word = ""
        // An apostrophe right after a word: joined into the word (as "'") if a letter or number follows.
        var pendingApostrophe: Character?
        func flush() {
            if !word.isEmpty { tokens.append(word) }
            if let apostrophe = pendingApostrophe { tokens.append(String(apostrophe)) }
            word = ""
            pendingApostrophe = nil
        }
        for character in text.lowercased() {
            if character.isLetter || character.isNumber {
                if pendingApostrophe != nil {
                    word.append("'")
                    pendingApostrophe = nil
                }
                word.append(character)
            } else if (character == "'" || character == "\u{2019}") && !word.isEmpty && pendingApostrophe == nil {
                pendingApostrophe = character
            } else {
                flush()
                if !character.isWhitespace && !isControl(character) { tokens.append(String(character)) }
            }
        }
        flush()
        return tokens
    }

    private static func isControl(_ character: Character) -> Bool {
        character.unicodeScalars.allSatisfy { $0.properties.generalCategory == .control || $0.properties.generalCategory == .format }
    }

    /// The id of a token (`1` = `<unk>` for a token outside the vocabulary).
    public func id(of token: String) -> Int32 { ids[token] ?? Int32(InputKind.unknownToken) }

    /// Encodes `text` to exactly ``maximumLength`` ids: its first `maximumLength` tokens (the rest
    /// is cut off; unknown words are 1), then padding 0.
    /// - Returns: the ids, and `tokenCount`: the number of non-padding ids, i.e. the tokens actually
    ///   fed to the model, `min(tokenize(text).count, maximumLength)` (tokens cut off by truncation are
    ///   not counted). This is what the API reports as `usage.input_tokens`.
    public func encode(_ text: String) -> (ids: [Int32], tokenCount: Int) {
        var result = [Int32]()
        result.reserveCapacity(maximumLength)
        for token in Tokenizer.tokenize(text) {
            guard result.count < maximumLength else { break }
            result.append(id(of: token))
        }
        let tokenCount = result.count
        result.append(contentsOf: repeatElement(Int32(InputKind.paddingToken), count: maximumLength - tokenCount))
        return (result, tokenCount)
    }

    /// Encodes texts as model inputs: `texts.count × maximumLength` token ids as `Float`
    /// (sample-major, the layout of `LabeledArrays` with sample shape 1×1×maximumLength), and the
    /// token count of each text (see ``encode(_:)``).
    public func encodeFeatures(_ texts: [String]) -> (features: [Float], tokenCounts: [Int]) {
        var features = [Float]()
        features.reserveCapacity(texts.count * maximumLength)
        var counts = [Int]()
        counts.reserveCapacity(texts.count)
        for text in texts {
            let (ids, count) = encode(text)
            features.append(contentsOf: ids.lazy.map { Float($0) })
            counts.append(count)
        }
        return (features, counts)
    }

    /// The sample shape of encoded texts: 1×1×``maximumLength``.
    public var sampleShape: FeatureShape { FeatureShape(channels: 1, height: 1, width: maximumLength) }

    /// `.tokens(vocabularySize: vocabularySize)`.
    public var inputKind: InputKind { .tokens(vocabularySize: vocabularySize) }

    // MARK: - Serialisation

    private enum CodingKeys: String, CodingKey {
        case version, maximumLength, maximumVocabulary, minimumCount, vocabulary
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let version = try container.decode(Int.self, forKey: .version)
        guard version == Tokenizer.formatVersion else {
            throw DecodingError.dataCorruptedError(forKey: .version, in: container,
                                                   debugDescription: "unsupported tokenizer version \(version), expected \(Tokenizer.formatVersion)")
        }
        do {
            try self.init(vocabulary: try container.decode([String].self, forKey: .vocabulary),
                          maximumLength: try container.decode(Int.self, forKey: .maximumLength),
                          maximumVocabulary: try container.decode(Int.self, forKey: .maximumVocabulary),
                          minimumCount: try container.decode(Int.self, forKey: .minimumCount))
        } catch let error as DatasetError {
            throw DecodingError.dataCorruptedError(forKey: .vocabulary, in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Tokenizer.formatVersion, forKey: .version)
        try container.encode(maximumLength, forKey: .maximumLength)
        try container.encode(maximumVocabulary, forKey: .maximumVocabulary)
        try container.encode(minimumCount, forKey: .minimumCount)
        try container.encode(vocabulary, forKey: .vocabulary)
    }

    /// One-line JSON: `{"maximumLength":128,"maximumVocabulary":20000,"minimumCount":1,"version":1,"vocabulary":["<pad>","<unk>",…]}`.
    public func encodedJSON() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// Reads the JSON of ``encodedJSON()``.
    /// - Throws: ``DatasetError/invalidArgument(detail:)`` naming what is wrong.
    public init(json: String) throws {
        do {
            self = try JSONDecoder().decode(Tokenizer.self, from: Data(json.utf8))
        } catch let error as DecodingError {
            throw DatasetError.invalidArgument(detail: "tokenizer JSON: \(Tokenizer.describe(error))")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case let .dataCorrupted(context): return context.debugDescription
        case let .keyNotFound(key, _): return "missing key '\(key.stringValue)'"
        case let .typeMismatch(_, context), let .valueNotFound(_, context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return "\(path.isEmpty ? "" : "'\(path)': ")\(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }

    public static func == (lhs: Tokenizer, rhs: Tokenizer) -> Bool {
        lhs.vocabulary == rhs.vocabulary && lhs.maximumLength == rhs.maximumLength
            && lhs.maximumVocabulary == rhs.maximumVocabulary && lhs.minimumCount == rhs.minimumCount
    }
}
