import Foundation
import Records
import TestSupport
import XCTest

/// A segmentation search end to end (`naslab search` → record → h5py, `export`, `analyze`): the
/// score columns are named by the task's metric (`val_miou`, `test_miou`), the other metrics go
/// to the `reported` table; `naslab spaces --json` lists the dense spaces with their tasks.
final class DenseSearchRecordTests: XCTestCase {
    /// Two decisions (upsampling, the first level's skip) on the tiny scenes' encoder.
    static let space = """
        name: tiny-segmentation-search
        task: segmentation
        activation: relu
        stem:
          - {op: conv, width: 8, kernel: 3}
        stages:
          - blocks: {width: 12, op: conv, stride: 2}
          - blocks: {width: 16, op: conv, stride: 2}
        decoder:
          upsample: [nearest, bilinear]
          levels:
            - {skip: [true, false], width: 12}
            - {skip: true, width: 8}
        """

    func testSegmentationSearchRecordsMiouColumnsAndReportedMetrics() throws {
        let dir = try CLI.scratch("dense-search")
        let scenes = try TinyScenes.write(to: dir, count: 64, testCount: 16)
        let spacePath = dir.appendingPathComponent("space.yaml").path
        try Self.space.write(toFile: spacePath, atomically: true, encoding: .utf8)
        let record = dir.appendingPathComponent("seg.h5").path
        let config = dir.appendingPathComponent("seg.yaml").path
        try """
        name: seg
        seed: 2
        space: \(spacePath)
        dataset: \(scenes)
        searcher:
          kind: random
        budget:
          candidates: 2
        training:
          epochs: 1
          batch_size: 16
        threads: 1
        output: \(record)
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let run = try CLI.run(["search", config, "--quiet"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("search finished: budget of 2 candidates reached"), run.stdout)

        // A second reader (h5py): score columns named by the metric, the other metrics in /reported.
        let py = try CLI.python("""
        import sys, h5py, json
        f = h5py.File(sys.argv[1], "r")
        c = f["candidates"][:]
        r = f["reported"][:]
        print(json.dumps({
            "columns": list(c.dtype.names),
            "status": [s.decode() for s in c["status"]],
            "val": [float(v) for v in c["val_miou"]], "test": [float(v) for v in c["test_miou"]],
            "reported": [[int(x["candidate_id"]), x["name"].decode(), float(x["value"])] for x in r]}))
        """, [record])
        XCTAssertEqual(py.status, 0, py.stderr)
        let info = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(py.stdout.utf8)) as? [String: Any])
        let columns = try XCTUnwrap(info["columns"] as? [String])
        XCTAssertEqual(Array(columns[11...12]), ["val_miou", "test_miou"])
        XCTAssertFalse(columns.contains("val_accuracy"), "\(columns)")
        XCTAssertEqual(info["status"] as? [String], ["accepted", "accepted"])
        for v in (info["val"] as? [Double] ?? []) + (info["test"] as? [Double] ?? []) {
            XCTAssertTrue((0...1).contains(v), "mIoU \(v)")
        }
        let reported = try XCTUnwrap(info["reported"] as? [[Any]])
        let names = Set(reported.compactMap { $0[1] as? String })
        XCTAssertEqual(names, ["val_miou_no_background", "val_pixel_accuracy", "test_miou_no_background", "test_pixel_accuracy"])
        XCTAssertEqual(reported.count, 8, "4 values for each of the 2 candidates")
        for row in reported { XCTAssertTrue((0...1).contains(row[2] as? Double ?? -1), "\(row)") }

        // export: CSV header and JSON keys carry the metric; the JSON reads back.
        let csvPath = dir.appendingPathComponent("seg.csv").path
        let csv = try CLI.run(["export", record, "--format", "csv", "-o", csvPath])
        XCTAssertEqual(csv.status, 0, csv.stderr)
        let header = try String(contentsOfFile: csvPath, encoding: .utf8).components(separatedBy: "\r\n")[0]
        XCTAssertTrue(header.hasPrefix("id,architecture,hash,parent_id,status,reason,params,macs,flops,latency_ms_predicted,"
            + "latency_ms_measured,val_miou,test_miou,epochs,wall_seconds,worker"), header)
        XCTAssertEqual(try CandidateExport.parseCSV(try String(contentsOfFile: csvPath, encoding: .utf8)).count, 2)
        let json = try CLI.run(["export", record, "--format", "json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let rows = try CandidateExport.parseJSON(json.stdout)
        XCTAssertEqual(rows.count, 2)
        // (JSONSerialization on Linux may miss the last digit of a double: compare within 1e-12.)
        let h5Values = (info["val"] as? [Double] ?? []).sorted()
        let exported = rows.map(\.validationScore).sorted()
        XCTAssertEqual(exported.count, h5Values.count)
        for (a, b) in zip(exported, h5Values) { XCTAssertEqual(a, b, accuracy: 1e-12, "the val_miou values") }

        // analyze runs on a record scored by mIoU.
        let analysis = try CLI.run(["analyze", record])
        XCTAssertEqual(analysis.status, 0, analysis.stderr)
        XCTAssertTrue(analysis.stdout.contains("candidates: 2 (accepted 2"), analysis.stdout)
        XCTAssertTrue(analysis.stdout.contains("val_miou_no_background"), analysis.stdout)
    }

    func testCandidateExportJSONRoundTripWithMiou() throws {
        let rows = [
            CandidateRow(id: 0, architecture: "decoder.upsample=nearest decoder.level1.skip=true", hash: "a1", status: .accepted,
                         params: 12345, macs: 678_901, flops: 1_357_802, predictedLatencyMs: 0.25, validationScore: 0.4375,
                         testScore: 0.40625, epochs: 1, wallSeconds: 2.5, worker: "local-0"),
            CandidateRow(id: 1, architecture: "decoder.upsample=bilinear decoder.level1.skip=false", hash: "b2", parentID: 0,
                         status: .failed, reason: "loss became nan", epochs: 0, worker: "local-0"),
        ]
        let json = CandidateExport.json(rows, metric: "miou")
        let objects = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
        XCTAssertEqual(objects[0]["val_miou"] as? Double, 0.4375)
        XCTAssertEqual(objects[0]["test_miou"] as? Double, 0.40625)
        XCTAssertTrue(objects[1]["val_miou"] is NSNull)
        XCTAssertNil(objects[0]["val_accuracy"])
        XCTAssertEqual(try CandidateExport.parseJSON(json), rows)
        // With reported values (a `reported` object per row) it still reads back.
        let reported: CandidateExport.Reported = (["val_miou_no_background"], [0: ["val_miou_no_background": 0.25]])
        XCTAssertEqual(try CandidateExport.parseJSON(CandidateExport.json(rows, metric: "miou", reported: reported)), rows)
        // CSV too: the header's val_<metric> column names the metric.
        let csv = CandidateExport.csv(rows, metric: "miou", reported: reported)
        XCTAssertTrue(csv.hasPrefix(CandidateExport.columns(metric: "miou").joined(separator: ",")), csv)
        XCTAssertEqual(try CandidateExport.parseCSV(csv), rows)
    }

    func testSpacesJSONListsTheDenseSpacesWithTheirTasks() throws {
        let out = try CLI.run(["spaces", "--json"])
        XCTAssertEqual(out.status, 0, out.stderr)
        let spaces = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]])
        var tasks = [String: String]()
        for s in spaces { tasks[s["name"] as? String ?? ""] = s["task"] as? String }
        for name in ["segmentation-small", "segmentation-medium", "segmentation-large", "reference/unet"] {
            XCTAssertEqual(tasks[name], "segmentation", name)
        }
        for name in ["detection-small", "detection-medium", "detection-large", "reference/centernet"] {
            XCTAssertEqual(tasks[name], "detection", name)
        }
        XCTAssertEqual(tasks["small"], "image_classification")
    }
}
