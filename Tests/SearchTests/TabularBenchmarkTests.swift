import Foundation
import NASCore
import Search
import XCTest

final class TabularBenchmarkTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("SearchTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func write(_ text: String, name: String = "table.csv") throws -> URL {
        let url = directory.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    func testReadsKeysAndMetricsWithQuotesAndCRLF() throws {
        let url = try write("Accuracy,Name,Other\r\n91.5,|a~0|,x\r\n\r\n\"92.25\",\"b, \"\"quoted\"\"\",y\r\n")
        let table = try TabularBenchmark(contentsOf: url, keyColumn: "Name", metricColumn: "Accuracy")
        XCTAssertEqual(table.count, 2)
        XCTAssertEqual(table.lookup("|a~0|"), 91.5)
        XCTAssertEqual(table.lookup("b, \"quoted\""), 92.25)
        XCTAssertNil(table.lookup("missing"))
    }

    func testErrors() throws {
        let missing = directory.appendingPathComponent("nope.csv")
        XCTAssertThrowsError(try TabularBenchmark(contentsOf: missing)) { error in
            XCTAssertEqual(error as? TabularBenchmarkError, .fileNotFound(path: missing.path))
        }
        let noColumn = try write("ArchitectureString,Accuracy\n|a|,1\n")
        XCTAssertThrowsError(try TabularBenchmark(contentsOf: noColumn)) { error in
            XCTAssertEqual(error as? TabularBenchmarkError,
                           .missingColumn(path: noColumn.path, column: "CIFAR10TestAccuracy200Epochs",
                                          available: ["ArchitectureString", "Accuracy"]))
            XCTAssertTrue("\(error)".contains("no column 'CIFAR10TestAccuracy200Epochs'"))
        }
        let badNumber = try write("k,v\na,1.5\nb,2\nc,abc\n")
        XCTAssertThrowsError(try TabularBenchmark(contentsOf: badNumber, keyColumn: "k", metricColumn: "v")) { error in
            XCTAssertEqual(error as? TabularBenchmarkError, .badNumber(path: badNumber.path, line: 4, column: "v", value: "abc"))
            XCTAssertTrue("\(error)".hasSuffix("table.csv:4: column 'v' holds 'abc', which is not a number"), "\(error)")
        }
        let shortRow = try write("k,v\na,1\nb\n")
        XCTAssertThrowsError(try TabularBenchmark(contentsOf: shortRow, keyColumn: "k", metricColumn: "v")) { error in
            XCTAssertEqual(error as? TabularBenchmarkError, .wrongFieldCount(path: shortRow.path, line: 3, expected: 2, found: 1))
        }
        let duplicate = try write("k,v\na,1\nb,2\na,3\n")
        XCTAssertThrowsError(try TabularBenchmark(contentsOf: duplicate, keyColumn: "k", metricColumn: "v")) { error in
            XCTAssertEqual(error as? TabularBenchmarkError, .duplicateKey(path: duplicate.path, line: 4, key: "a", firstLine: 2))
        }
        let empty = try write("")
        XCTAssertThrowsError(try TabularBenchmark(contentsOf: empty)) { error in
            XCTAssertEqual(error as? TabularBenchmarkError, .emptyFile(path: empty.path))
        }
    }

    func testNASBench201Table() throws {
        let url = try nasBench201TableURL()
        let space = NASBench201TestSpace()
        let table = try TabularBenchmark(contentsOf: url)
        XCTAssertEqual(table.count, 15_625)
        let best = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
        XCTAssertEqual(table.lookup(best)!, 94.373, accuracy: 0.0005)
        // Every architecture of the test space has an entry, and the best of them is the one above.
        let all = GridSpace(optionCounts: [5, 5, 5, 5, 5, 5]).all
        let values = all.map { table.lookup(space.text(of: $0)) }
        XCTAssertTrue(values.allSatisfy { $0 != nil })
        // The maximum is shared by two isomorphic cells; the README's string is one of them.
        let maximum = values.map { $0! }.max()!
        XCTAssertEqual(table.lookup(best), maximum)
        XCTAssertEqual(values.filter { $0 == maximum }.count, 2)
        XCTAssertEqual(space.text(of: try space.parse(best)), best)
        XCTAssertEqual(values.map { $0! }.reduce(0, +) / Double(values.count), 87.06, accuracy: 0.01)
        let imagenet = try TabularBenchmark(contentsOf: url, metricColumn: "ImageNetTestAccuracy200Epochs")
        XCTAssertEqual(imagenet.count, 15_625)
    }
}
