import Foundation
import TestSupport
import XCTest

/// Proxy-guided search end to end (`naslab search` with `searcher.proxies`): the warm start is
/// scored and recorded (`zero_cost` table, read by h5py), the searcher starts from its best,
/// proposals below the pre-screening quantile are rejected untrained with the reason, every
/// candidate carries its proxy values, and the whole record is the same for the same seed.
final class ZeroCostSearchTests: XCTestCase {
    func config(_ dir: URL, name: String, searcher: String) throws -> String {
        let path = dir.appendingPathComponent("\(name).yaml").path
        try """
        name: \(name)
        seed: 6
        space: small
        dataset: digits
        searcher:
        \(searcher)
        budget:
          candidates: 6
        training:
          epochs: 1
          batch_size: 64
        threads: 1
        output: \(dir.appendingPathComponent("\(name).h5").path)
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testWarmStartPrescreeningAndRecord() throws {
        let dir = try CLI.scratch("zero-cost-search")
        let searcher = """
          kind: regularized_evolution
          population_size: 4
          sample_size: 2
          proxies: [synflow, params]
          warm_start: 12
          prescreen_quantile: 0.5
        """
        let path = try config(dir, name: "zc", searcher: searcher)
        var exports = [String]()
        for output in ["a.h5", "b.h5"] {
            let record = dir.appendingPathComponent(output).path
            let run = try CLI.run(["search", path, "--quiet", "--output", record])
            XCTAssertEqual(run.status, 0, run.stderr)
            let export = try CLI.run(["export", record, "--format", "json"])
            XCTAssertEqual(export.status, 0, export.stderr)
            exports.append(export.stdout)
        }
        let check = try CLI.python("""
        import sys, json, h5py, numpy as np
        f = h5py.File(sys.argv[1], "r")
        z = f["zero_cost"][:]
        assert list(z.dtype.names) == ["architecture", "hash", "synflow", "params", "combined", "rank"], z.dtype.names
        assert len(z) == 12, len(z)
        assert list(z["rank"]) == list(range(12))
        combined = z["combined"]
        assert all(combined[i] >= combined[i + 1] for i in range(11)), combined
        # combined = mean over proxies of the fraction of warm-start values below (ties half)
        for row in z:
            expect = np.mean([((z[p] < row[p]).sum() + (z[p] <= row[p]).sum()) / 2 / len(z) for p in ["synflow", "params"]])
            assert abs(expect - row["combined"]) < 1e-12, (expect, row["combined"])
        threshold = np.quantile(combined, 0.5)
        rows = json.loads(open(sys.argv[2]).read())
        assert rows[0]["architecture"] == z["architecture"][0].decode(), "evolution starts from the warm start's best"
        rejected = 0
        for r in rows:
            rep = r["reported"]
            assert "zero_cost_synflow" in rep and "zero_cost_params" in rep, rep
            if rep["zero_cost_combined"] < threshold - 1e-12:
                assert r["status"] == "rejected" and "zero-cost pre-screen" in r["reason"], r
                rejected += 1
            else:
                assert r["status"] == "accepted", r
        assert sum(1 for r in rows if r["status"] == "accepted") == 6
        print(rejected)
        """, [dir.appendingPathComponent("a.h5").path, try write(exports[0], dir, "a.json")])
        XCTAssertEqual(check.status, 0, check.stderr)
        XCTAssertGreaterThan(Int(check.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0, 0,
                             "some proposals were pre-screened out")
        func comparable(_ text: String) throws -> [String] {
            let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]])
            return try rows.map { row in
                var kept = row
                for timing in ["wall_seconds", "latency_ms_measured", "latency_ms_predicted"] { kept.removeValue(forKey: timing) }
                return String(decoding: try JSONSerialization.data(withJSONObject: kept, options: [.sortedKeys]), as: UTF8.self)
            }
        }
        XCTAssertEqual(try comparable(exports[0]), try comparable(exports[1]), "same seed ⇒ same warm start, pre-screening and candidates")
    }

    func testBadGuidanceSettingsAreRejectedWithTheirPlace() throws {
        let dir = try CLI.scratch("zero-cost-bad")
        let cases: [(String, String)] = [
            ("  kind: random\n  proxies: [synflow, magic]\n  warm_start: 20", "unknown proxy 'magic'"),
            ("  kind: random\n  warm_start: 20", "need 'proxies'"),
            ("  kind: random\n  proxies: [synflow]\n  warm_start: 3", "at least 10"),
            ("  kind: random\n  proxies: [synflow]\n  warm_start: 20\n  prescreen_quantile: 1.5", "prescreen_quantile"),
        ]
        for (index, (searcher, message)) in cases.enumerated() {
            let path = try config(dir, name: "bad\(index)", searcher: searcher)
            let run = try CLI.run(["search", path, "--quiet"])
            XCTAssertNotEqual(run.status, 0)
            XCTAssertTrue(run.stderr.contains(message), run.stderr)
            XCTAssertTrue(run.stderr.contains("bad\(index).yaml:"), "file:line:column — \(run.stderr)")
        }
    }

    private func write(_ text: String, _ dir: URL, _ name: String) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
