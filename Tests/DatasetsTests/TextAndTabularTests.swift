import Datasets
import Foundation
import NASCore
import TestSupport
import XCTest

final class TextAndTabularTests: XCTestCase {
    // MARK: Text datasets

    /// 3 classes of 10, 15 and 20 texts; every text has a unique marker word `uN` (N = sample index).
    func makeRawText() throws -> RawDataset {
        var texts = [String]()
        var labels = [Int32]()
        let topics = ["cats purr and meow", "stocks fall, markets rise", "rain clouds wind"]
        for (label, size) in [10, 15, 20].enumerated() {
            for k in 0..<size {
                texts.append("\(topics[label]) u\(texts.count) common \(k % 2 == 0 ? "even" : "odd")")
                labels.append(Int32(label))
            }
        }
        return try RawDataset(name: "toy", source: "memory", classNames: ["animals", "finance", "weather"],
                              trainTexts: texts, trainLabels: labels)
    }

    /// The marker number `N` of an encoded sample (the word `uN`), found through the vocabulary.
    func markers(_ part: LabeledArrays, _ tokenizer: Tokenizer) -> [Int?] {
        let length = part.sampleShape.width
        return (0..<part.count).map { sample in
            for id in part.features[sample * length ..< (sample + 1) * length] {
                let word = tokenizer.vocabulary[Int(id)]
                if word.hasPrefix("u"), let n = Int(word.dropFirst()) { return n }
            }
            return nil
        }
    }

    func testTextDatasetSplitsStratifiedAndFitsTheTokenizerOnTrainingTextsOnly() throws {
        let raw = try makeRawText()
        XCTAssertEqual(raw.train.count, 45)
        XCTAssertEqual(raw.train.features, [])
        XCTAssertEqual(raw.train.sampleShape, RawDataset.textPlaceholderShape)
        XCTAssertEqual(raw.metadata.inputKind, .tokens(vocabularySize: TextOptions().maximumIdCount))

        // Word ids only (subwords: nil), so every id is a vocabulary word.
        var rng = SeededGenerator(seed: 5)
        let options = TextOptions(maximumVocabulary: 1000, maximumLength: 12, subwords: nil)
        let data = try Dataset(raw: raw, textOptions: options, rng: &rng)
        let tokenizer = try XCTUnwrap(data.tokenizer)
        XCTAssertNil(data.normalization)
        XCTAssertEqual(data.metadata.sampleShape, FeatureShape(channels: 1, height: 1, width: 12))
        XCTAssertEqual(data.metadata.inputKind, .tokens(vocabularySize: tokenizer.vocabularySize))
        XCTAssertEqual(data.metadata.classNames, ["animals", "finance", "weather"])
        XCTAssertEqual(tokenizer.maximumLength, 12)
        for part in [data.train, data.validation, data.test] {
            XCTAssertEqual(part.sampleShape, FeatureShape(channels: 1, height: 1, width: 12))
            XCTAssertEqual(part.features.count, part.count * 12)
            XCTAssertTrue(part.features.allSatisfy { $0 >= 0 && $0 < Float(tokenizer.vocabularySize) && $0 == $0.rounded() })
        }
        // Stratified: test round(0.2 · n_c) = 2, 3, 4; validation round(0.1 · rest) = 1, 1, 2.
        func histogram(_ part: LabeledArrays) -> [Int] {
            var h = [0, 0, 0]
            part.labels.forEach { h[Int($0)] += 1 }
            return h
        }
        XCTAssertEqual(histogram(data.test), [2, 3, 4])
        XCTAssertEqual(histogram(data.validation), [1, 1, 2])
        XCTAssertEqual(histogram(data.train), [7, 11, 14])

        // The vocabulary has exactly the training markers: held-out markers encode to <unk> (1).
        let trainMarkers = markers(data.train, tokenizer)
        XCTAssertTrue(trainMarkers.allSatisfy { $0 != nil })
        XCTAssertEqual(tokenizer.vocabulary.filter { $0.hasPrefix("u") && Int($0.dropFirst()) != nil }.count, 32)
        for part in [data.validation, data.test] {
            XCTAssertEqual(markers(part, tokenizer), [Int?](repeating: nil, count: part.count))
            for sample in 0..<part.count {
                // "<topic words> uN common even|odd": the marker is the first id after the topic.
                let ids = part.features[sample * 12 ..< (sample + 1) * 12]
                XCTAssertTrue(ids.contains(1), "held-out marker must be unknown")
            }
        }
        // Training samples are distinct, in their original order, with their own labels, and encoded
        // exactly as the tokenizer encodes their texts.
        let trainIndices = trainMarkers.compactMap { $0 }
        XCTAssertEqual(trainIndices.count, 32)
        XCTAssertEqual(trainIndices, Array(Set(trainIndices)).sorted())
        XCTAssertEqual(data.train.labels, trainIndices.map { raw.train.labels[$0] })
        let texts = try XCTUnwrap(raw.text).trainTexts
        XCTAssertEqual(data.train.features, tokenizer.encodeFeatures(trainIndices.map { texts[$0] }).features)

        // Deterministic for a seed, different for another.
        var again = SeededGenerator(seed: 5)
        let same = try Dataset(raw: raw, textOptions: options, rng: &again)
        XCTAssertEqual(same.train, data.train)
        XCTAssertEqual(same.test, data.test)
        XCTAssertEqual(same.tokenizer, data.tokenizer)
        var other = SeededGenerator(seed: 6)
        let otherData = try Dataset(raw: raw, textOptions: options, rng: &other)
        XCTAssertNotEqual(markers(otherData.train, try XCTUnwrap(otherData.tokenizer)), trainMarkers)
    }

    func testTextDatasetWithItsOwnTestPart() throws {
        let raw = try RawDataset(name: "t", source: "m", classNames: ["a", "b"],
                                 trainTexts: ["good fun", "good joy", "bad sad", "bad mad"], trainLabels: [0, 0, 1, 1],
                                 testTexts: ["zebra good", "bad"], testLabels: [0, 1])
        var rng = SeededGenerator(seed: 1)
        let data = try Dataset(raw: raw, validationSplit: 0, textOptions: TextOptions(maximumLength: 3, subwords: nil), rng: &rng)
        let tokenizer = try XCTUnwrap(data.tokenizer)
        XCTAssertEqual(tokenizer.vocabulary, ["<pad>", "<unk>", "bad", "good", "fun", "joy", "mad", "sad"])
        XCTAssertEqual(data.test.features, [1, 3, 0, 2, 0, 0])   // "zebra" only in the test part → 1
        XCTAssertEqual(data.test.labels, [0, 1])
        XCTAssertEqual(data.train.count, 4)

        XCTAssertThrowsError(try RawDataset(name: "t", source: "m", classNames: ["a"], trainTexts: ["x"], trainLabels: [0, 0]))
        XCTAssertThrowsError(try RawDataset(name: "t", source: "m", classNames: ["a"], trainTexts: ["x"], trainLabels: [1]))
        var mismatched = raw
        mismatched.text?.testTexts = nil
        XCTAssertThrowsError(try Dataset(raw: mismatched, rng: &rng)) { error in
            XCTAssertTrue("\(error)".contains("texts and labels of a text dataset disagree"), "\(error)")
        }
    }

    // MARK: Fortunes

    func testFortunesFromTheDebianPackage() throws {
        let directory = FortunesLoader.defaultDirectory
        guard FileManager.default.fileExists(atPath: directory + "/fortunes") else {
            throw XCTSkip("Debian's 'fortunes' package is not installed at \(directory) (apt-get install fortunes)")
        }
        let raw = try Dataset.loadRaw(name: "fortunes")
        let names = try XCTUnwrap(raw.metadata.classNames)
        XCTAssertGreaterThanOrEqual(names.count, 2)
        XCTAssertEqual(names, names.sorted())
        XCTAssertFalse(names.contains { $0.contains(".") }, "\(names)")
        XCTAssertEqual(raw.metadata.name, "fortunes")
        XCTAssertNil(raw.test)
        var sizes = [Int](repeating: 0, count: names.count)
        raw.train.labels.forEach { sizes[Int($0)] += 1 }
        XCTAssertTrue(sizes.allSatisfy { $0 >= FortunesLoader.minimumEntries }, "\(zip(names, sizes).map { "\($0) \($1)" })")
        let texts = try XCTUnwrap(raw.text).trainTexts
        XCTAssertEqual(texts.count, raw.train.count)
        XCTAssertTrue(texts.allSatisfy { !$0.isEmpty && $0 == $0.trimmingCharacters(in: .whitespacesAndNewlines) })
        XCTAssertFalse(texts.contains { $0.split(separator: "\n").contains("%") })
        if names.contains("fortunes") {
            // The category file of the same name, read directly, gives the same entries.
            let entries = try FortunesLoader.readEntries(path: directory + "/fortunes")
            let index = Int32(try XCTUnwrap(names.firstIndex(of: "fortunes")))
            XCTAssertEqual(zip(texts, raw.train.labels).filter { $0.1 == index }.map(\.0), entries)
        }

        let a = try Dataset.load(name: "fortunes", seed: 11)
        let b = try Dataset.load(name: "fortunes", seed: 11)
        XCTAssertEqual(a.test, b.test)
        XCTAssertEqual(a.train.labels, b.train.labels)
        XCTAssertEqual(a.tokenizer, b.tokenizer)
        var testSizes = [Int](repeating: 0, count: names.count)
        a.test.labels.forEach { testSizes[Int($0)] += 1 }
        XCTAssertEqual(testSizes, sizes.map { Int((Double($0) * 0.2).rounded()) })
        XCTAssertEqual(a.train.count + a.validation.count + a.test.count, raw.train.count)
        // The default options: subword bags of 24 ids per position over 128 positions.
        let tokenizer = try XCTUnwrap(a.tokenizer)
        XCTAssertEqual(tokenizer.subwords, .standard)
        XCTAssertEqual(a.metadata.inputKind, .tokens(vocabularySize: tokenizer.vocabularySize + 100_000))
        XCTAssertEqual(a.metadata.sampleShape, FeatureShape(channels: 24, height: 1, width: 128))
        XCTAssertTrue(a.train.features.allSatisfy { $0 >= 0 && $0 < Float(tokenizer.idCount) && $0 == $0.rounded() })
    }

    func testFortunesDirectoryRules() throws {
        let directory = temporaryPath("fortunes-\(UUID())")
        let fileManager = FileManager.default
        try fileManager.createDirectory(atPath: directory + "/off", withIntermediateDirectories: true)
        func write(_ name: String, _ text: String) throws {
            try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
        }
        try write("zeta", "  z one  \n%\n\n%\nz two\nsecond line\n%\nz three\n%\n")
        try write("alpha", "a1\n%\na2\n%\na3\n%\na4")
        try write("small", "s1\n%\ns2")                           // < 3 entries: not a class
        try write("alpha.dat", "binary index")
        try write("off/rude", "r1\n%\nr2\n%\nr3\n%\nr4")          // subdirectory: skipped
        try write("crlf", "c1\r\n%\r\nc2\r\n%\r\nc3\r\n")
        try fileManager.createSymbolicLink(atPath: directory + "/alpha.u8", withDestinationPath: "alpha")
        try fileManager.createSymbolicLink(atPath: directory + "/beta", withDestinationPath: "alpha")   // same file again

        let raw = try FortunesLoader.load(directory: directory, minimumEntries: 3)
        XCTAssertEqual(raw.metadata.classNames, ["alpha", "crlf", "zeta"])
        XCTAssertEqual(raw.text?.trainTexts, ["a1", "a2", "a3", "a4", "c1", "c2", "c3", "z one", "z two\nsecond line", "z three"])
        XCTAssertEqual(raw.train.labels, [0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
        XCTAssertEqual(raw.metadata.source, directory)

        XCTAssertThrowsError(try FortunesLoader.load(directory: directory, minimumEntries: 4)) { error in
            XCTAssertTrue("\(error)".contains("fewer than 2 fortune categories with at least 4 entries"), "\(error)")
        }
        let missing = directory + "/nothing-here"
        XCTAssertThrowsError(try FortunesLoader.load(directory: missing)) { error in
            guard case .notInstalled("fortunes", missing, _)? = error as? DatasetError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("install Debian's 'fortunes' package"), "\(error)")
        }
    }

    // MARK: CSV

    func writeCSV(_ name: String, _ text: String) throws -> String {
        let path = temporaryPath(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func writeCSV(_ name: String, bytes: [UInt8]) throws -> String {
        let path = temporaryPath(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testTextCSVRoundTrip() throws {
        let csv = "\u{FEFF}id,text,label\r\n"
            + "1,\"Hello, world\",pos\r\n"
            + "2,\"She said \"\"no\"\"\nthen left\",neg\r\n"
            + "\r\n"
            + "3,plain text,neg\n"
            + "4,,pos"
        let path = try writeCSV("reviews.csv", csv)
        let raw = try Dataset.loadRaw(name: path)
        XCTAssertEqual(raw.metadata.name, "reviews")
        XCTAssertEqual(raw.metadata.classNames, ["neg", "pos"])
        XCTAssertEqual(raw.text?.trainTexts, ["Hello, world", "She said \"no\"\nthen left", "plain text", ""])
        XCTAssertNil(raw.text?.testTexts)
        XCTAssertEqual(raw.train.labels, [1, 0, 0, 1])

        let (records, lines) = try CSVLoader.parse(Data(csv.utf8), path: "x")
        XCTAssertEqual(records.map(\.line), [1, 2, 3, 6, 7])
        XCTAssertEqual(records[2].fieldLines, [3, 3, 4])
        XCTAssertEqual(lines, 7)

        // Custom column names; the text dataset splits and tokenises.
        let custom = try writeCSV("custom.csv", "review,y\n" + (0..<10).map { "word\($0 % 3) shared,\($0 % 2 == 0 ? "b" : "a")" }.joined(separator: "\n"))
        let options = CSVOptions(textColumn: "review", labelColumn: "y")
        let data = try Dataset.load(name: custom, textOptions: TextOptions(maximumLength: 4), csvOptions: options, seed: 1)
        XCTAssertEqual(data.metadata.classNames, ["a", "b"])
        XCTAssertEqual(data.metadata.sampleShape, FeatureShape(channels: Tokenizer.Subwords.standard.idsPerToken, height: 1, width: 4))
        XCTAssertEqual(data.train.count + data.validation.count + data.test.count, 10)
        XCTAssertEqual(data.test.count, 2)
        XCTAssertNotNil(data.tokenizer)
        // Forcing text without a text column is an error; forcing tabular ignores the name.
        XCTAssertThrowsError(try CSVLoader.load(path: custom, options: CSVOptions(labelColumn: "y", kind: .text))) { error in
            XCTAssertEqual(error as? DatasetError, .csv(path: custom, line: 1, column: 1,
                message: "no text column 'text'; the columns are 'review', 'y' (name the text column 'text' or set CSVOptions.textColumn)"))
        }
    }

    func testTabularCSVAndStandardisationFittedOnTrain() throws {
        var lines = ["f1, f2 ,label"]
        for i in 0..<40 {
            let label = [10, 2, 1][i % 3]
            lines.append("\(Double(i) * 0.5),\(label * 100 + i % 7), \(label)")
        }
        let path = try writeCSV("tab.csv", lines.joined(separator: "\n") + "\n")
        let raw = try Dataset.loadRaw(name: path)
        XCTAssertNil(raw.text)
        XCTAssertEqual(raw.metadata.inputKind, .features)
        XCTAssertEqual(raw.metadata.sampleShape, FeatureShape(features: 2))
        XCTAssertEqual(raw.metadata.classNames, ["1", "2", "10"])   // integers sort numerically
        XCTAssertEqual(Array(raw.train.labels.prefix(4)), [2, 1, 0, 2])
        XCTAssertEqual(Array(raw.train.features.prefix(4)), [0, 1000, 0.5, 201])

        let plain = try Dataset.load(name: path, normalize: false, seed: 3)
        let data = try Dataset.load(name: path, seed: 3)
        XCTAssertNil(data.tokenizer)
        let normalization = try XCTUnwrap(data.normalization)
        XCTAssertEqual(normalization.mean.count, 2)
        for feature in 0..<2 {
            let values = stride(from: feature, to: plain.train.features.count, by: 2).map { Double(plain.train.features[$0]) }
            let mean = values.reduce(0, +) / Double(values.count)
            let std = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)).squareRoot()
            XCTAssertEqual(Double(normalization.mean[feature]), mean, accuracy: 1e-3)
            XCTAssertEqual(Double(normalization.std[feature]), std, accuracy: 1e-3)
            let standardized = stride(from: feature, to: data.train.features.count, by: 2).map { Double(data.train.features[$0]) }
            XCTAssertEqual(standardized.reduce(0, +) / Double(standardized.count), 0, accuracy: 1e-4)
        }
        XCTAssertEqual(normalization.applied(to: plain.test).features, data.test.features)
        // Fitted on the training split only: the mean over all samples differs.
        let allF2 = stride(from: 1, to: raw.train.features.count, by: 2).map { Double(raw.train.features[$0]) }
        XCTAssertNotEqual(Double(normalization.mean[1]), allF2.reduce(0, +) / Double(allF2.count), accuracy: 1e-3)

        // A column named "text" is a numeric feature when the kind is tabular.
        let numericText = try writeCSV("numtext.csv", "text,label\n1,a\n2,a\n3,b\n4,b\n")
        XCTAssertEqual(try CSVLoader.load(path: numericText, options: CSVOptions(kind: .tabular)).train.features, [1, 2, 3, 4])
        XCTAssertNotNil(try CSVLoader.load(path: numericText).text)
    }

    /// Asserts that loading `text` as a CSV fails at `line`:`column` with a message containing `message`.
    func assertCSVError(_ text: String, bytes: [UInt8]? = nil, options: CSVOptions = CSVOptions(), line: Int, column: Int,
                        _ message: String, file: StaticString = #filePath, sourceLine: UInt = #line) throws {
        let path = try bytes.map { try writeCSV("bad-\(UUID()).csv", bytes: $0) } ?? writeCSV("bad-\(UUID()).csv", text)
        XCTAssertThrowsError(try Dataset.loadRaw(name: path, csvOptions: options), file: file, line: sourceLine) { error in
            guard case let .csv(errorPath, errorLine, errorColumn, errorMessage)? = error as? DatasetError else {
                return XCTFail("not a CSV error: \(error)", file: file, line: sourceLine)
            }
            XCTAssertEqual(errorPath, path, file: file, line: sourceLine)
            XCTAssertEqual(errorLine, line, "line; \(error)", file: file, line: sourceLine)
            XCTAssertEqual(errorColumn, column, "column; \(error)", file: file, line: sourceLine)
            XCTAssertTrue(errorMessage.contains(message), "\(errorMessage) does not contain \(message)", file: file, line: sourceLine)
            XCTAssertEqual("\(error)", "\(path):\(line):\(column): \(errorMessage)", file: file, line: sourceLine)
        }
    }

    func testBadCSVFilesNameLineAndColumn() throws {
        try assertCSVError("a,b\n1,2\n3,4\n", line: 1, column: 1, "no label column 'label'; the columns are 'a', 'b'")
        try assertCSVError("a,text\n1,x\n", options: CSVOptions(labelColumn: "y"), line: 1, column: 1, "no label column 'y'")
        try assertCSVError("a,label\n1,x\n", options: CSVOptions(kind: .text), line: 1, column: 1, "no text column 'text'")
        try assertCSVError("x,y,label\n1,2,a\n3,abc,b\n", line: 3, column: 2,
                           "'abc' in column 'y' is not a number (every column but the label column 'label' of a tabular CSV must be numeric")
        try assertCSVError("x,label\n1,a\n,a\n", line: 3, column: 1, "empty value in numeric column 'x'")
        try assertCSVError("x,label\n1,a\nnan,a\n", line: 3, column: 1, "'nan' in column 'x' is not a finite 32-bit number")
        try assertCSVError("x,label\n1,a\n2,b,extra\n", line: 3, column: 3, "expected 2 fields like the header, found 3")
        try assertCSVError("x,y,label\n1,2,a\n1,2\n", line: 3, column: 3, "expected 3 fields like the header, found 2")
        try assertCSVError("text,label\n\"ok\",a\n\"never closed,b\nmore\n", line: 3, column: 1,
                           "unterminated quoted field: the quote opened here is never closed")
        try assertCSVError("text,label\nfine,a\nx,\"open\n", line: 3, column: 2, "unterminated quoted field")
        try assertCSVError("text,label\n\"a\"b,a\n", line: 2, column: 1, "unexpected character after the closing quote")
        try assertCSVError("", line: 1, column: 1, "empty file: a CSV dataset needs a header row")
        try assertCSVError("\u{FEFF}\n\n", line: 1, column: 1, "empty file")
        try assertCSVError("x,label\n", line: 2, column: 1, "no data rows: the file has only a header")
        try assertCSVError("x,label", line: 2, column: 1, "no data rows")
        try assertCSVError("x,label\n1,a\n2,a\n3,b\n", line: 4, column: 2,
                           "class 'b' has 1 sample; every class needs at least 2 for a stratified split")
        try assertCSVError("x,label\n1,a\n2,a\n", line: 1, column: 2, "column 'label' has only one class 'a'")
        try assertCSVError("x,label\n1,a\n2,  \n", line: 3, column: 2, "empty label")
        // Line numbers count the physical lines of quoted multi-line fields.
        try assertCSVError("text,label\n\"one\ntwo\r\nthree\",a\nfour,\n", line: 5, column: 2, "empty label")
        try assertCSVError("label,a,a\n", line: 1, column: 3, "duplicate column name 'a' (also column 2)")
        try assertCSVError("label\n1\n2\n", line: 1, column: 1, "no feature columns")
        // Binary junk: NUL bytes and invalid UTF-8, with the line and column of the field.
        try assertCSVError("", bytes: Array("x,label\n1,a\n".utf8) + [0, 0, 7] + Array(",b\n".utf8), line: 3, column: 1, "NUL byte")
        try assertCSVError("", bytes: Array("x,label\n1,a\n2,".utf8) + [0xFF, 0x62], line: 3, column: 2, "invalid UTF-8 (byte 0xFF)")
        try assertCSVError("", bytes: [0x1F, 0x8B, 0x08, 0x08, 0x2C, 0x41], line: 1, column: 1, "invalid UTF-8 (byte 0x8B)")
        try assertCSVError("", bytes: Array("x,label\na".utf8) + [0xC3] + Array(",b\n".utf8), line: 2, column: 1, "invalid UTF-8 (byte 0xC3)")

        XCTAssertThrowsError(try Dataset.loadRaw(name: temporaryPath("missing.csv"))) { error in
            XCTAssertEqual(error as? DatasetError, .fileNotFound(path: temporaryPath("missing.csv")))
        }
    }

    /// Random and mutated inputs: loading either succeeds or throws a `DatasetError`, never crashes.
    func testArbitraryBytesNeverCrashTheCSVLoader() throws {
        var rng = SeededGenerator(seed: 99)
        let seedCSV = Array("text,x,label\n\"a, \"\"b\"\"\",1,p\r\nc,2,q\nd,3,p\n\"e\nf\",4,q\n".utf8)
        let alphabet = Array("\",\r\n label text 0.5e-x\u{0}".utf8) + [0xC3, 0xA9, 0xFF, 0xEF, 0xBB, 0xBF]
        var outcomes = (loaded: 0, failed: 0)
        for round in 0..<300 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = seedCSV
                for _ in 0..<(1 + Int(rng.next() % 4)) {
                    let position = Int(rng.next() % UInt64(bytes.count + 1))
                    let byte = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                    switch rng.next() % 3 {
                    case 0: bytes.insert(byte, at: position)
                    case 1: if position < bytes.count { bytes.remove(at: position) }
                    default: if position < bytes.count { bytes[position] = byte }
                    }
                }
            } else {
                bytes = (0..<Int(rng.next() % 64)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            }
            do {
                let raw = try CSVLoader.load(data: Data(bytes), path: "fuzz.csv", name: "fuzz")
                XCTAssertGreaterThanOrEqual(raw.metadata.classCount, 2)
                outcomes.loaded += 1
            } catch let error as DatasetError {
                guard case .csv = error else { return XCTFail("\(error)") }
                outcomes.failed += 1
            }
        }
        XCTAssertGreaterThan(outcomes.loaded, 0)
        XCTAssertGreaterThan(outcomes.failed, 0)
    }
}
