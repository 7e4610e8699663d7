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
/// **Subword features** (optional, ``Subwords``; fastText-style): each position then carries a
/// *bag* of ``idsPerToken`` ids instead of one id — the word id, the id of the word bigram that
/// starts at it, and the ids of the word's character n-grams — that the `embedding` op averages
/// (see ``Subwords``). Without them a position is its word id alone.
///
/// It serialises to a compact JSON string (``encodedJSON()`` / ``init(json:)``) for storing with a
/// trained model.
public struct Tokenizer: Codable, Sendable, Equatable {
    /// fastText-style subword features (Joulin et al. 2017, Bojanowski et al. 2017): hashed
    /// character n-grams of each word and hashed word bigrams, added to a position's bag of ids.
    ///
    /// Ids: the words use `0..<vocabulary.count`; the hashed features use the ``buckets`` ids after
    /// them, `vocabulary.count + h % buckets`, where `h` is the 32-bit FNV-1a hash of the feature's
    /// UTF-8 text (n-grams and bigrams share the buckets, like fastText). The character n-grams of
    /// a word `w` are the substrings of `"<" + w + ">"` of `characterNGrams` characters (Swift
    /// `Character`s), shortest first, left to right; the bigram starting at position `i` is the text
    /// `w[i] + " " + w[i+1]` (a space never occurs inside a token, so no n-gram has the same text).
    ///
    /// A position's bag, in this order until it holds ``idsPerToken`` ids: the word id (unknown
    /// words: 1), the bigram id (when ``wordBigrams`` and a next token exists), the n-gram ids
    /// (the longest n-grams of long words are cut first). Unused slots and padded positions are 0.
    /// Encoded texts are laid out slot-major: sample shape ``idsPerToken``×1×L, slot 0 being the
    /// word ids of plain word-level encoding.
    public struct Subwords: Codable, Sendable, Hashable {
        /// The n-gram lengths, e.g. 2...5; `nil`: no character n-grams.
        public var characterNGrams: ClosedRange<Int>?
        /// Whether a position's bag holds the bigram of its word and the next one.
        public var wordBigrams: Bool
        /// The number of hash buckets (ids) shared by n-grams and bigrams. When fitting a tokenizer
        /// it is a cap: the fitted tokenizer uses the number of distinct feature hashes of the
        /// training texts if that is smaller (so a small dataset gets a small embedding).
        public var buckets: Int
        /// Ids per position including the word id (the channel count of encoded texts).
        public var idsPerToken: Int

        /// The dataset default (``TextOptions``): n-grams 3...5 (fastText's are 3–6), word bigrams,
        /// 100,000 buckets, 24 ids per position (word + bigram + 22 n-grams: all n-grams of words of
        /// up to 8 characters). Chosen on the fortunes validation split (Benchmarks/README.md).
        public static let standard = Subwords(characterNGrams: 3...5, wordBigrams: true, buckets: 100_000, idsPerToken: 24)

        public init(characterNGrams: ClosedRange<Int>?, wordBigrams: Bool, buckets: Int, idsPerToken: Int) {
            self.characterNGrams = characterNGrams
            self.wordBigrams = wordBigrams
            self.buckets = buckets
            self.idsPerToken = idsPerToken
        }

        /// Calls `body` with the FNV-1a hash of each subword feature of `words[position]`, in bag
        /// order (the bigram, then the n-grams shortest first, left to right), at most
        /// `idsPerToken - 1` times: the features ``Tokenizer/encode(_:)`` puts in the position's bag.
        func forEachFeature(of words: [String], at position: Int, _ body: (UInt32) -> Void) {
            var left = idsPerToken - 1
            if wordBigrams, position + 1 < words.count, left > 0 {
                body(Tokenizer.fnv1a(words[position] + " " + words[position + 1]))
                left -= 1
            }
            guard let n = characterNGrams, left > 0 else { return }
            let characters = Array("<" + words[position] + ">")
            for size in n where size <= characters.count {
                for start in 0...(characters.count - size) {
                    body(Tokenizer.fnv1a(String(characters[start ..< start + size])))
                    left -= 1
                    if left == 0 { return }
                }
            }
        }

        func check() throws {
            if let n = characterNGrams, n.lowerBound < 1 {
                throw DatasetError.invalidArgument(detail: "subword character n-grams must be at least 1 character long, got \(n.lowerBound)...\(n.upperBound)")
            }
            guard characterNGrams != nil || wordBigrams else {
                throw DatasetError.invalidArgument(detail: "subwords need character n-grams, word bigrams or both")
            }
            guard buckets >= 1, buckets <= 1 << 24 else {
                throw DatasetError.invalidArgument(detail: "subword buckets must be in 1...\(1 << 24), got \(buckets)")
            }
            guard idsPerToken >= 2, idsPerToken <= 256 else {
                throw DatasetError.invalidArgument(detail: "subword ids per token must be in 2...256 (the word id and at least one feature), got \(idsPerToken)")
            }
        }

        private enum CodingKeys: String, CodingKey {
            case minimumNGram, maximumNGram, wordBigrams, buckets, idsPerToken
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let lo = try c.decodeIfPresent(Int.self, forKey: .minimumNGram)
            let hi = try c.decodeIfPresent(Int.self, forKey: .maximumNGram)
            guard (lo == nil) == (hi == nil) else {
                throw DecodingError.dataCorruptedError(forKey: .minimumNGram, in: c, debugDescription: "give both minimumNGram and maximumNGram, or neither")
            }
            if let lo, let hi, lo > hi {
                throw DecodingError.dataCorruptedError(forKey: .minimumNGram, in: c, debugDescription: "minimumNGram \(lo) exceeds maximumNGram \(hi)")
            }
            self.init(characterNGrams: lo.flatMap { lo in hi.map { lo...$0 } }, wordBigrams: try c.decode(Bool.self, forKey: .wordBigrams),
                      buckets: try c.decode(Int.self, forKey: .buckets), idsPerToken: try c.decode(Int.self, forKey: .idsPerToken))
            do { try check() } catch let error as DatasetError {
                throw DecodingError.dataCorruptedError(forKey: .buckets, in: c, debugDescription: error.description)
            }
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encodeIfPresent(characterNGrams?.lowerBound, forKey: .minimumNGram)
            try c.encodeIfPresent(characterNGrams?.upperBound, forKey: .maximumNGram)
            try c.encode(wordBigrams, forKey: .wordBigrams)
            try c.encode(buckets, forKey: .buckets)
            try c.encode(idsPerToken, forKey: .idsPerToken)
        }
    }

    /// The vocabulary in id order: `vocabulary[0] == "<pad>"`, `vocabulary[1] == "<unk>"`.
    public private(set) var vocabulary: [String]
    /// The number of ids per encoded text (longer texts are truncated, shorter ones padded).
    public let maximumLength: Int
    /// The vocabulary cap used when fitting (including `<pad>` and `<unk>`).
    public let maximumVocabulary: Int
    /// The minimum number of occurrences in the training texts for a word to get an id.
    public let minimumCount: Int
    /// Hashed subword features added to each position's bag, or `nil` (one word id per position).
    public let subwords: Subwords?
    private var ids: [String: Int32]

    /// The text of the padding token (id 0).
    public static let paddingText = "<pad>"
    /// The text of the unknown token (id 1).
    public static let unknownText = "<unk>"
    /// Default ``maximumVocabulary`` (20,000, including the two special tokens).
    public static let defaultMaximumVocabulary = 20_000
    /// Default ``maximumLength`` (128).
    public static let defaultMaximumLength = 128
    /// The version ``encodedJSON()`` writes for a tokenizer without subwords (readers before
    /// subwords existed read it); ``subwordFormatVersion`` with them.
    public static let formatVersion = 1
    /// The version ``encodedJSON()`` writes for a tokenizer with ``subwords``.
    public static let subwordFormatVersion = 2

    /// The number of words, `vocabulary.count` (at most ``maximumVocabulary``).
    public var vocabularySize: Int { vocabulary.count }

    /// The number of distinct ids, i.e. the rows of the embedding: the words plus the subword buckets.
    public var idCount: Int { vocabulary.count + (subwords?.buckets ?? 0) }

    /// Ids per position (the channel count of encoded texts): 1, or ``Subwords/idsPerToken``.
    public var idsPerToken: Int { subwords?.idsPerToken ?? 1 }

    /// Fits the vocabulary on `texts` (the training texts only).
    /// - Parameters:
    ///   - maximumVocabulary: the cap on the vocabulary size including `<pad>` and `<unk>` (≥ 2; default 20,000).
    ///   - minimumCount: words occurring fewer times are left out (≥ 1; default 1).
    ///   - maximumLength: positions per encoded text (≥ 1; default 128).
    ///   - subwords: hashed subword features (default: none; ``TextOptions`` turns them on for
    ///     datasets); their `buckets` is a cap, see ``Subwords/buckets``.
    /// - Throws: ``DatasetError/invalidArgument(detail:)`` for out-of-range options.
    public init(fittedOn texts: [String], maximumVocabulary: Int = Tokenizer.defaultMaximumVocabulary,
                minimumCount: Int = 1, maximumLength: Int = Tokenizer.defaultMaximumLength,
                subwords: Subwords? = nil) throws {
        try Tokenizer.check(maximumVocabulary: maximumVocabulary, minimumCount: minimumCount, maximumLength: maximumLength)
        try subwords?.check()
        var counts = [String: Int]()
        var tokenized = [[String]]()   // kept for the subword buckets below: each text is split once
        for text in texts {
            let tokens = Tokenizer.tokenize(text)
            for token in tokens { counts[token, default: 0] += 1 }
            if subwords != nil { tokenized.append(Array(tokens.prefix(maximumLength))) }
        }
        let words = counts.filter { $0.value >= minimumCount }
            .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .prefix(maximumVocabulary - 2)
            .map(\.key)
        // Subword buckets: at most the requested number, fewer when the training texts have fewer
        // distinct features (a small dataset gets a small embedding).
        var fitted = subwords
        if let subwords {
            var distinct = Set<UInt32>()
            for tokens in tokenized {
                for position in tokens.indices { subwords.forEachFeature(of: tokens, at: position) { distinct.insert($0) } }
            }
            fitted?.buckets = max(1, min(subwords.buckets, distinct.count))
        }
        try self.init(vocabulary: [Tokenizer.paddingText, Tokenizer.unknownText] + words, maximumLength: maximumLength,
                      maximumVocabulary: maximumVocabulary, minimumCount: minimumCount, subwords: fitted)
    }

    /// A tokenizer with a given vocabulary (id order; it must start with `<pad>`, `<unk>` and have no duplicates).
    public init(vocabulary: [String], maximumLength: Int = Tokenizer.defaultMaximumLength,
                maximumVocabulary: Int? = nil, minimumCount: Int = 1, subwords: Subwords? = nil) throws {
        let cap = maximumVocabulary ?? max(vocabulary.count, 2)
        try Tokenizer.check(maximumVocabulary: cap, minimumCount: minimumCount, maximumLength: maximumLength)
        try subwords?.check()
        guard vocabulary.count >= 2, vocabulary[0] == Tokenizer.paddingText, vocabulary[1] == Tokenizer.unknownText else {
            throw DatasetError.invalidArgument(detail: "tokenizer vocabulary must start with \"<pad>\", \"<unk>\"")
        }
        guard vocabulary.count <= cap else {
            throw DatasetError.invalidArgument(detail: "tokenizer vocabulary has \(vocabulary.count) entries, more than maximumVocabulary \(cap)")
        }
        guard vocabulary.count + (subwords?.buckets ?? 0) <= 1 << 24 else {
            // Ids travel as Float; every integer up to 2^24 is exact.
            throw DatasetError.invalidArgument(detail: "tokenizer has \(vocabulary.count) words + \(subwords?.buckets ?? 0) subword buckets, "
                + "more than the \(1 << 24) ids a float represents exactly")
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
        self.subwords = subwords
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

    /// Encodes `text` to exactly ``idsPerToken`` × ``maximumLength`` ids, slot-major (see
    /// ``Subwords``): slot 0 holds the word ids of the first `maximumLength` tokens (the rest is cut
    /// off; unknown words are 1), then padding 0; further slots hold each position's subword ids.
    /// - Returns: the ids, and `tokenCount`: the number of non-padding positions, i.e. the tokens
    ///   actually fed to the model, `min(tokenize(text).count, maximumLength)` (tokens cut off by
    ///   truncation are not counted). This is what the API reports as `usage.input_tokens`.
    public func encode(_ text: String) -> (ids: [Int32], tokenCount: Int) {
        let tokens = Tokenizer.tokenize(text).prefix(maximumLength)
        let length = maximumLength
        var result = [Int32](repeating: Int32(InputKind.paddingToken), count: idsPerToken * length)
        for (position, token) in tokens.enumerated() { result[position] = id(of: token) }
        if let subwords {
            let base = UInt32(vocabulary.count), buckets = UInt32(subwords.buckets)
            let words = Array(tokens)
            for position in words.indices {
                var slot = 1
                subwords.forEachFeature(of: words, at: position) { hash in
                    result[slot * length + position] = Int32(base + hash % buckets)
                    slot += 1
                }
            }
        }
        return (result, tokens.count)
    }

    /// The 32-bit FNV-1a hash of the UTF-8 bytes of `text` (the hash fastText uses).
    public static func fnv1a(_ text: String) -> UInt32 {
        var h: UInt32 = 2_166_136_261
        for byte in text.utf8 {
            h ^= UInt32(byte)
            h = h &* 16_777_619
        }
        return h
    }

    /// Encodes texts as model inputs: `texts.count` samples of ``sampleShape`` token ids as `Float`
    /// (sample-major, the layout of `LabeledArrays`), and the token count of each text (see ``encode(_:)``).
    public func encodeFeatures(_ texts: [String]) -> (features: [Float], tokenCounts: [Int]) {
        var features = [Float]()
        features.reserveCapacity(texts.count * idsPerToken * maximumLength)
        var counts = [Int]()
        counts.reserveCapacity(texts.count)
        for text in texts {
            let (ids, count) = encode(text)
            features.append(contentsOf: ids.lazy.map { Float($0) })
            counts.append(count)
        }
        return (features, counts)
    }

    /// The sample shape of encoded texts: ``idsPerToken``×1×``maximumLength``.
    public var sampleShape: FeatureShape { FeatureShape(channels: idsPerToken, height: 1, width: maximumLength) }

    /// `.tokens(vocabularySize: idCount)`: the ids an embedding must cover.
    public var inputKind: InputKind { .tokens(vocabularySize: idCount) }

    // MARK: - Serialisation

    private enum CodingKeys: String, CodingKey {
        case version, maximumLength, maximumVocabulary, minimumCount, subwords, vocabulary
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let version = try container.decode(Int.self, forKey: .version)
        guard version == Tokenizer.formatVersion || version == Tokenizer.subwordFormatVersion else {
            throw DecodingError.dataCorruptedError(forKey: .version, in: container, debugDescription:
                "unsupported tokenizer version \(version), expected \(Tokenizer.formatVersion) or \(Tokenizer.subwordFormatVersion)")
        }
        let subwords = try container.decodeIfPresent(Subwords.self, forKey: .subwords)
        guard (subwords != nil) == (version == Tokenizer.subwordFormatVersion) else {
            throw DecodingError.dataCorruptedError(forKey: .subwords, in: container, debugDescription:
                "tokenizer version \(version) \(subwords == nil ? "needs" : "has no") 'subwords'")
        }
        do {
            try self.init(vocabulary: try container.decode([String].self, forKey: .vocabulary),
                          maximumLength: try container.decode(Int.self, forKey: .maximumLength),
                          maximumVocabulary: try container.decode(Int.self, forKey: .maximumVocabulary),
                          minimumCount: try container.decode(Int.self, forKey: .minimumCount), subwords: subwords)
        } catch let error as DatasetError {
            throw DecodingError.dataCorruptedError(forKey: .vocabulary, in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(subwords == nil ? Tokenizer.formatVersion : Tokenizer.subwordFormatVersion, forKey: .version)
        try container.encodeIfPresent(subwords, forKey: .subwords)
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
            && lhs.subwords == rhs.subwords
    }
}
