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
