import Foundation
import TestSupport
import XCTest

/// `naslab estimate --json` prints the predicted latency (the policy searches screen
/// `max_latency_ms` with) next to the measured one, and builds this machine's table on first use.
final class EstimateLatencyCLITests: XCTestCase {
    func testEstimateJSONHasPredictedAndMeasuredLatencyAndReusesItsTable() throws {
        let dir = try CLI.scratch("estimate-latency")
        defer {
            unsetenv("NASLAB_CACHE_DIR")
            try? FileManager.default.removeItem(at: dir)
        }
        setenv("NASLAB_CACHE_DIR", dir.appendingPathComponent("cache").path, 1)
        let arguments = ["estimate", "--space", "small", "--random", "2", "--input", "1x8x8", "--json"]
        let first = try CLI.run(arguments)
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertTrue(first.stderr.contains("measuring kernel timing"), "progress of building the table: \(first.stderr)")
        let table = dir.appendingPathComponent("cache/latency-table.h5").path
        XCTAssertTrue(FileManager.default.fileExists(atPath: table))
        func rows(_ text: String) throws -> [[String: Any]] {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]])
        }
        let estimates = try rows(first.stdout)
        XCTAssertEqual(estimates.count, 2)
        for e in estimates {
            let predicted = try XCTUnwrap(e["latency_ms_predicted"] as? Double, "\(e)")
            let measured = try XCTUnwrap(e["latency_ms_measured"] as? Double, "\(e)")
            XCTAssertGreaterThan(predicted, 0)
            XCTAssertGreaterThan(measured, 0)
        }
        // The second run finds the table: nothing is measured for it, the predictions at the table's
        // speed are the same (each run scales them by the machine's slowdown it measures).
        let second = try CLI.run(arguments)
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertFalse(second.stderr.contains("measuring kernel timing"), second.stderr)
        func atTableSpeed(_ rows: [[String: Any]]) throws -> [Double] {
            try rows.map { row in
                let slowdown = try XCTUnwrap(row["latency_slowdown"] as? Double, "\(row)")
                XCTAssertEqual(slowdown, 1, accuracy: 0.5, "the same machine minutes later")
                return try XCTUnwrap(row["latency_ms_predicted"] as? Double) / slowdown
            }
        }
        for (a, b) in zip(try atTableSpeed(rows(second.stdout)), try atTableSpeed(estimates)) { XCTAssertEqual(a, b, accuracy: 1e-9 * b) }
        // Text output shows both and the error; --no-latency shows neither.
        let text = try CLI.run(["estimate", "--space", "small", "--random", "1", "--input", "1x8x8"])
        XCTAssertTrue(text.stdout.contains("ms predicted") && text.stdout.contains("ms measured"), text.stdout)
        let none = try CLI.run(arguments + ["--no-latency"])
        XCTAssertEqual(none.status, 0, none.stderr)
        XCTAssertTrue(try rows(none.stdout).allSatisfy { $0["latency_ms_predicted"] == nil && $0["latency_ms_measured"] == nil })
    }
}
