import Datasets
import Foundation
import NASCore
import XCTest

final class TokenizerTests: XCTestCase {
    func testSplittingLowercasesAndSeparatesPunctuation() {
        XCTAssertEqual(Tokenizer.tokenize("Hello, World!! It's 3.14"),
                       ["hello", ",", "world", "!", "!", "it's", "3", ".", "14"])
        // Apostrophes inside words stay (’ is stored as '), leading/trailing ones are punctuation.
        XCTAssertEqual(Tokenizer.tokenize("Don’t stop rock'n'roll, dogs' 'quoted'"),
                       ["don't", "stop", "rock'n'roll", ",", "dogs", "'", "'", "quoted", "'"])
        XCTAssertEqual(Tokenizer.tokenize("''a' b''"), ["'", "'", "a", "'", "b", "'", "'"])
        // Unicode letters and numbers, Unicode lower-casing, combining accents, emoji.
        XCTAssertEqual(Tokenizer.tokenize("ÉTÉ naïve 東京 x2 Straße ΣΟΦΙΑ ٣٤ 👍🏽!"),
                       ["été", "naïve", "東京", "x2", "straße", "σοφια", "٣٤", "👍🏽", "!"])
        XCTAssertEqual(Tokenizer.tokenize("cafe\u{301}"), ["café"])
        // Whitespace, control and zero-width format characters only separate.
        XCTAssertEqual(Tokenizer.tokenize("  a\tb\r\nc\u{0}d\u{200B}e\u{8}f  "), ["a", "b", "c", "d", "e", "f"])
        XCTAssertEqual(Tokenizer.tokenize(""), [])
        XCTAssertEqual(Tokenizer.tokenize(" \n "), [])
        XCTAssertEqual(Tokenizer.tokenize("a-b_c/d"), ["a", "-", "b", "_", "c", "/", "d"])
    }

    func testVocabularyOrderCapAndMinimumCount() throws {
        let texts = ["b a b c", "C b d!", "e"]   // b:3, c:2, then a, d, e, ! once each
        let tokenizer = try Tokenizer(fittedOn: texts)
        XCTAssertEqual(tokenizer.vocabulary, ["<pad>", "<unk>", "b", "c", "!", "a", "d", "e"])
        XCTAssertEqual(tokenizer.vocabularySize, 8)
        XCTAssertEqual(tokenizer.id(of: "c"), 3)
        XCTAssertEqual(tokenizer.id(of: "zebra"), 1)
        // Same texts in another order: same vocabulary (ties by word order, not first appearance).
        XCTAssertEqual(try Tokenizer(fittedOn: texts.reversed()).vocabulary, tokenizer.vocabulary)

        let capped = try Tokenizer(fittedOn: texts, maximumVocabulary: 4)
        XCTAssertEqual(capped.vocabulary, ["<pad>", "<unk>", "b", "c"])
        XCTAssertEqual(capped.encode("a b").ids.prefix(3), [1, 2, 0])
        XCTAssertEqual(try Tokenizer(fittedOn: texts, maximumVocabulary: 2).vocabulary, ["<pad>", "<unk>"])
        XCTAssertEqual(try Tokenizer(fittedOn: texts, minimumCount: 2).vocabulary, ["<pad>", "<unk>", "b", "c"])
        XCTAssertEqual(try Tokenizer(fittedOn: []).vocabulary, ["<pad>", "<unk>"])
        // Words that look like the special tokens are split, so they never collide with them.
        XCTAssertEqual(try Tokenizer(fittedOn: ["<pad> <unk>"]).vocabulary, ["<pad>", "<unk>", "<", ">", "pad", "unk"])

        for (vocabulary, minimum, length) in [(1, 1, 4), (10, 0, 4), (10, 1, 0)] {
            XCTAssertThrowsError(try Tokenizer(fittedOn: texts, maximumVocabulary: vocabulary, minimumCount: minimum,
                                               maximumLength: length)) { error in
                guard case .invalidArgument? = error as? DatasetError else { return XCTFail("\(error)") }
            }
        }
    }

    func testEncodingTruncatesPadsAndCountsTokensFedToTheModel() throws {
        let tokenizer = try Tokenizer(fittedOn: ["b a b c", "c b d"], maximumLength: 4)
        // vocabulary: <pad> <unk> b c a d
        XCTAssertEqual(tokenizer.encode("B, c").ids, [2, 1, 3, 0])        // "," is unknown
        XCTAssertEqual(tokenizer.encode("B, c").tokenCount, 3)
        XCTAssertEqual(tokenizer.encode("a b c d a b").ids, [4, 2, 3, 5])  // truncated to 4
        XCTAssertEqual(tokenizer.encode("a b c d a b").tokenCount, 4)      // not 6: only what the model sees
        XCTAssertEqual(tokenizer.encode("").ids, [0, 0, 0, 0])
        XCTAssertEqual(tokenizer.encode("").tokenCount, 0)
        XCTAssertEqual(tokenizer.encode("zebra").ids, [1, 0, 0, 0])
        XCTAssertEqual(tokenizer.sampleShape, FeatureShape(channels: 1, height: 1, width: 4))
        XCTAssertEqual(tokenizer.inputKind, .tokens(vocabularySize: 6))
        let (features, counts) = tokenizer.encodeFeatures(["d", "a b c d a", "zz"])
        XCTAssertEqual(features, [5, 0, 0, 0, 4, 2, 3, 5, 1, 0, 0, 0])
        XCTAssertEqual(counts, [1, 4, 1])
        XCTAssertEqual(try Tokenizer(fittedOn: []).maximumLength, 128)
        XCTAssertEqual(try Tokenizer(fittedOn: ["x"]).encode("x y").ids.count, 128)
    }

    func testJSONRoundTrip() throws {
        let tokenizer = try Tokenizer(fittedOn: ["Don't \"quote\" me\\ ☃ / é", "a b"], maximumVocabulary: 50,
                                      minimumCount: 1, maximumLength: 7)
        let json = try tokenizer.encodedJSON()
        XCTAssertFalse(json.contains("\n"))
        XCTAssertTrue(json.hasPrefix("{\"maximumLength\":7,\"maximumVocabulary\":50,\"minimumCount\":1,\"version\":1,\"vocabulary\":[\"<pad>\",\"<unk>\","), json)
        let decoded = try Tokenizer(json: json)
        XCTAssertEqual(decoded, tokenizer)
        XCTAssertEqual(decoded.vocabulary, tokenizer.vocabulary)
        XCTAssertEqual(decoded.encode("don't quote ☃ z").ids, tokenizer.encode("don't quote ☃ z").ids)
        XCTAssertEqual(try decoded.encodedJSON(), json)
        XCTAssertNotEqual(try Tokenizer(fittedOn: ["a b"], maximumLength: 7), tokenizer)

        let bad = [
            "not json",
            #"{"maximumLength":7,"maximumVocabulary":50,"minimumCount":1,"version":1,"vocabulary":["a","<unk>"]}"#,
            #"{"maximumLength":7,"maximumVocabulary":50,"minimumCount":1,"version":2,"vocabulary":["<pad>","<unk>"]}"#,
            #"{"maximumLength":0,"maximumVocabulary":50,"minimumCount":1,"version":1,"vocabulary":["<pad>","<unk>"]}"#,
            #"{"maximumLength":7,"maximumVocabulary":50,"minimumCount":1,"version":1,"vocabulary":["<pad>","<unk>","x","x"]}"#,
            #"{"maximumLength":7,"maximumVocabulary":3,"minimumCount":1,"version":1,"vocabulary":["<pad>","<unk>","x","y"]}"#,
            #"{"maximumLength":7,"minimumCount":1,"version":1,"vocabulary":["<pad>","<unk>"]}"#,
        ]
        for text in bad {
            XCTAssertThrowsError(try Tokenizer(json: text), text) { error in
                guard case let .invalidArgument(detail)? = error as? DatasetError else { return XCTFail("\(error)") }
                XCTAssertTrue(detail.hasPrefix("tokenizer JSON: "), detail)
            }
        }
    }

    func testSubwordBagsHoldWordBigramAndCharacterNGramIds() throws {
        // FNV-1a 32-bit reference values (the published test vectors of the hash).
        XCTAssertEqual(Tokenizer.fnv1a(""), 0x811c_9dc5)
        XCTAssertEqual(Tokenizer.fnv1a("a"), 0xe40c_292c)
        XCTAssertEqual(Tokenizer.fnv1a("foobar"), 0xbf9c_f968)

        let subwords = Tokenizer.Subwords(characterNGrams: 3...3, wordBigrams: true, buckets: 1000, idsPerToken: 4)
        // Fitting caps the buckets at the distinct features of the training texts: "ab ab" <ab ab>
        // (the second "ab": bigram "ab c" and <ab, ab> again, its bag then full) "ab c" <c> → 5.
        let fitted = try Tokenizer(fittedOn: ["ab ab c"], maximumLength: 3, subwords: subwords)
        XCTAssertEqual(fitted.vocabulary, ["<pad>", "<unk>", "ab", "c"])
        XCTAssertEqual(fitted.subwords?.buckets, 5)
        XCTAssertEqual(fitted.idCount, 9)
        var capped = subwords
        capped.buckets = 3
        XCTAssertEqual(try Tokenizer(fittedOn: ["ab ab c"], maximumLength: 3, subwords: capped).subwords?.buckets, 3)
        XCTAssertEqual(try Tokenizer(fittedOn: [], maximumLength: 3, subwords: subwords).subwords?.buckets, 1)
        // With 1000 buckets given (no fitting):
        let tokenizer = try Tokenizer(vocabulary: ["<pad>", "<unk>", "ab", "c"], maximumLength: 3, subwords: subwords)
        XCTAssertEqual(tokenizer.idCount, 1004)
        XCTAssertEqual(tokenizer.inputKind, .tokens(vocabularySize: 1004))
        XCTAssertEqual(tokenizer.sampleShape, FeatureShape(channels: 4, height: 1, width: 3))
        // Buckets 4 + h % 1000: "ab c" → 651, "<c>" → 414, "<ab" → 512, "ab>" → 760 (h from Python's FNV-1a).
        // Position 0 ("ab"): word 2, bigram "ab c", n-grams "<ab", "ab>"; position 1 ("c"): word 3,
        // no next word, n-gram "<c>"; position 2: padding. Slot-major.
        let (ids, count) = tokenizer.encode("AB c")
        XCTAssertEqual(count, 2)
        XCTAssertEqual(ids, [2, 3, 0,   651, 414, 0,   512, 0, 0,   760, 0, 0])
        // Unknown words keep their n-grams (that is what subwords are for); the word slot says 1.
        let unknown = tokenizer.encode("zz").ids
        XCTAssertEqual(unknown[0], 1)
        XCTAssertEqual(unknown[3], Int32(4 + Tokenizer.fnv1a("<zz") % 1000))
        XCTAssertEqual(unknown[6], Int32(4 + Tokenizer.fnv1a("zz>") % 1000))
        // A full bag cuts the n-grams: 2 ids per position keep the word and the bigram only.
        let tight = try Tokenizer(vocabulary: ["<pad>", "<unk>", "ab", "c"], maximumLength: 2,
                                  subwords: .init(characterNGrams: 2...4, wordBigrams: true, buckets: 7, idsPerToken: 2))
        XCTAssertEqual(tight.encode("ab c").ids, [2, 3, Int32(4 + Tokenizer.fnv1a("ab c") % 7), Int32(4 + Tokenizer.fnv1a("<c") % 7)])
        // Features are the ids as floats, sample after sample.
        XCTAssertEqual(tokenizer.encodeFeatures(["ab c", "c"]).features, (tokenizer.encode("ab c").ids + tokenizer.encode("c").ids).map(Float.init))
        // Bad options are errors.
        for bad in [Tokenizer.Subwords(characterNGrams: 0...2, wordBigrams: false, buckets: 10, idsPerToken: 4),
                    .init(characterNGrams: nil, wordBigrams: false, buckets: 10, idsPerToken: 4),
                    .init(characterNGrams: 2...3, wordBigrams: true, buckets: 0, idsPerToken: 4),
                    .init(characterNGrams: 2...3, wordBigrams: true, buckets: 1 << 25, idsPerToken: 4),
                    .init(characterNGrams: 2...3, wordBigrams: true, buckets: 10, idsPerToken: 1)] {
            XCTAssertThrowsError(try Tokenizer(fittedOn: ["a"], subwords: bad)) { error in
                guard case .invalidArgument? = error as? DatasetError else { return XCTFail("\(error)") }
            }
        }
        // The dataset default turns them on; the standard bag is what estimates assume.
        XCTAssertEqual(TextOptions().subwords, .standard)
        XCTAssertEqual(TextOptions().sampleShape, FeatureShape(channels: Tokenizer.Subwords.standard.idsPerToken, height: 1, width: 128))
    }

    func testSubwordJSONRoundTripAndVersions() throws {
        let tokenizer = try Tokenizer(fittedOn: ["a b"], maximumLength: 5, subwords: .standard)
        let json = try tokenizer.encodedJSON()
        XCTAssertTrue(json.contains("\"version\":2"), json)
        let decoded = try Tokenizer(json: json)
        XCTAssertEqual(decoded, tokenizer)
        XCTAssertEqual(decoded.encode("a b zebra").ids, tokenizer.encode("a b zebra").ids)
        XCTAssertNotEqual(try Tokenizer(fittedOn: ["a b"], maximumLength: 5), tokenizer)
        let sub = #""subwords":{"buckets":10,"idsPerToken":3,"maximumNGram":3,"minimumNGram":2,"wordBigrams":true}"#
        XCTAssertEqual(try Tokenizer(json: #"{"maximumLength":5,"maximumVocabulary":50,"minimumCount":1,\#(sub),"version":2,"vocabulary":["<pad>","<unk>"]}"#).subwords,
                       .init(characterNGrams: 2...3, wordBigrams: true, buckets: 10, idsPerToken: 3))
        let bad = [
            #"{"maximumLength":5,"maximumVocabulary":50,"minimumCount":1,"version":2,"vocabulary":["<pad>","<unk>"]}"#,
            #"{"maximumLength":5,"maximumVocabulary":50,"minimumCount":1,\#(sub),"version":1,"vocabulary":["<pad>","<unk>"]}"#,
            #"{"maximumLength":5,"maximumVocabulary":50,"minimumCount":1,"subwords":{"buckets":10,"idsPerToken":3,"maximumNGram":1,"minimumNGram":2,"wordBigrams":true},"version":2,"vocabulary":["<pad>","<unk>"]}"#,
            #"{"maximumLength":5,"maximumVocabulary":50,"minimumCount":1,"subwords":{"buckets":10,"idsPerToken":3,"minimumNGram":2,"wordBigrams":true},"version":2,"vocabulary":["<pad>","<unk>"]}"#,
            #"{"maximumLength":5,"maximumVocabulary":50,"minimumCount":1,"subwords":{"buckets":0,"idsPerToken":3,"wordBigrams":true},"version":2,"vocabulary":["<pad>","<unk>"]}"#,
        ]
        for text in bad {
            XCTAssertThrowsError(try Tokenizer(json: text), text) { error in
                guard case let .invalidArgument(detail)? = error as? DatasetError else { return XCTFail("\(error)") }
                XCTAssertTrue(detail.hasPrefix("tokenizer JSON: "), detail)
            }
        }
    }

    func testMetadataInputKindDefaultsForOldJSON() throws {
        let old = #"{"name":"d","source":"s","sampleShape":{"channels":1,"height":8,"width":8},"classCount":10}"#
        let image = try JSONDecoder().decode(DatasetMetadata.self, from: Data(old.utf8))
        XCTAssertEqual(image.inputKind, .image)
        XCTAssertNil(image.classNames)
        let flat = #"{"name":"d","source":"s","sampleShape":{"channels":4,"height":1,"width":1},"classCount":2,"classNames":["a","b"]}"#
        XCTAssertEqual(try JSONDecoder().decode(DatasetMetadata.self, from: Data(flat.utf8)).inputKind, .features)

        let tokens = DatasetMetadata(name: "t", source: "s", sampleShape: FeatureShape(channels: 1, height: 1, width: 16),
                                     classCount: 3, inputKind: .tokens(vocabularySize: 99))
        let decoded = try JSONDecoder().decode(DatasetMetadata.self, from: JSONEncoder().encode(tokens))
        XCTAssertEqual(decoded, tokens)
        XCTAssertEqual(decoded.inputKind, .tokens(vocabularySize: 99))
        // The initialiser's default is derived from the shape the same way.
        XCTAssertEqual(DatasetMetadata(name: "x", source: "", sampleShape: FeatureShape(features: 5), classCount: 2).inputKind, .features)
        XCTAssertEqual(DatasetMetadata(name: "x", source: "", sampleShape: FeatureShape(channels: 3, height: 4, width: 4),
                                       classCount: 2).inputKind, .image)
        XCTAssertEqual(try DigitsLoader.load().metadata.inputKind, .image)
    }
}
