import Foundation
import HDF5Kit
import NASCore
import Records
import TestSupport
import XCTest

func sampleMetadata(name: String = "run") -> RecordMetadata {
    RecordMetadata(name: name, configYAML: "dataset: digits\nbudget: 20\n", searchSpaceYAML: "decisions:\n  - width: [8, 16]\n",
                   seed: 12_345_678_901_234_567_890, createdAt: "2026-11-29T15:00:00Z",
                   environment: RecordEnvironment.detect(naslabVersion: "0.1.0", gitCommit: "abc123", openBLASVersion: "OpenBLAS 0.3.21"))
}

func sampleCandidate(_ id: Int64) -> CandidateRow {
    let text = "{\"choices\":[\(id % 3),\(id % 2)],\"note\":\"w, \\\"q\\\"\"}"
    if id % 4 == 3 {
        return CandidateRow(id: id, architecture: text, hash: stableHash(text), parentID: id - 1, status: .rejected,
                            reason: "params 1,234 > limit \"1000\"", params: 1234, macs: 56_789, flops: 113_578,
                            predictedLatencyMs: 0.25, worker: "local-0")
    }
    return CandidateRow(id: id, architecture: text, hash: stableHash(text), parentID: id == 0 ? -1 : id - 1, status: .accepted,
                        params: Double(1000 + id), macs: 5e6 + Double(id), flops: 1e7 + 2 * Double(id),
                        predictedLatencyMs: 0.125 * Double(id + 1), measuredLatencyMs: 0.1 + Double(id) / 3,
                        validationScore: 0.9 + Double(id) / 1000, testScore: id == 2 ? .nan : 0.88,
                        epochs: 3, wallSeconds: 1.5, worker: "local-\(id % 2)")
}

final class RecordsTests: XCTestCase {
    func testWriteReadRoundTrip() throws {
        let path = temporaryPath("roundtrip.h5")
        let metadata = sampleMetadata()
        let rows = (0..<6).map(sampleCandidate)
        let epochs = (0..<3).flatMap { c in (1...3).map { EpochRow(candidateID: c, epoch: $0, trainLoss: 1 / Double($0), trainAccuracy: 0.5, validationLoss: .nan, validationAccuracy: 0.6) } }
        let weights: [NamedTensor] = [("stem/conv/weight", [2, 1, 1, 1], [0.5, -1]), ("head/bias", [3], [1, 2, 3])]
        do {
            let record = try ExperimentRecord.create(path: path, metadata: metadata, overwrite: true)
            XCTAssertNil(try record.searcherState())
            XCTAssertNil(try record.bestCandidateID())
            for row in rows { try record.appendCandidate(row) }
            try record.appendEpochs(epochs)
            try record.setParetoFronts(ParetoFronts(accuracyVsLatency: [0, 4], accuracyVsParams: [0]))
            try record.setParetoFronts(ParetoFronts(accuracyVsLatency: [0, 5], accuracyVsParams: [0, 1, 5]))
            try record.setBest(candidateID: 4, tensors: [("old", [1], [9])])
            try record.setBest(candidateID: 5, tensors: weights)
            try record.setSearcherState("{\"step\":1}")
            try record.setSearcherState("{\"step\":2,\"population\":[1,2,3]}")
            XCTAssertEqual(try record.readCandidates(), rows)
            try record.close()
        }
        let record = try ExperimentRecord.openReadOnly(path: path)
        XCTAssertEqual(record.metadata, metadata)
        XCTAssertEqual(record.metadata.environment.hdf5Version, HDF5Library.version)
        XCTAssertEqual(try record.readCandidates(), rows)
        XCTAssertTrue(try record.readCandidates()[2].testScore.isNaN)
        XCTAssertEqual(try record.readEpochs(), epochs)
        XCTAssertEqual(try record.readEpochs(candidateID: 1), Array(epochs[3..<6]))
        XCTAssertEqual(try record.paretoFronts(), ParetoFronts(accuracyVsLatency: [0, 5], accuracyVsParams: [0, 1, 5]))
        XCTAssertEqual(try record.bestCandidateID(), 5)
        let best = try record.bestWeights()
        XCTAssertEqual(best.map(\.name), weights.map(\.name))
        XCTAssertEqual(best.map(\.values), weights.map(\.values))
        XCTAssertEqual(try record.searcherState(), "{\"step\":2,\"population\":[1,2,3]}")
        XCTAssertThrowsError(try record.appendCandidate(rows[0])) { error in
            XCTAssertEqual(error as? RecordError, .readOnly(path: path))
        }
    }

    func testReopenAndAppendResumes() throws {
        let path = temporaryPath("resume.h5")
        do {
            let record = try ExperimentRecord.create(path: path, metadata: sampleMetadata(), overwrite: true)
            for id in 0..<3 { try record.appendCandidate(sampleCandidate(Int64(id))) }
            try record.setSearcherState("{\"next\":3}")
        }
        XCTAssertThrowsError(try ExperimentRecord.create(path: path, metadata: sampleMetadata())) { error in
            XCTAssertTrue("\(error)".contains(path), "\(error)")
        }
        do {
            let record = try ExperimentRecord.open(path: path)
            XCTAssertEqual(try record.searcherState(), "{\"next\":3}")
            XCTAssertEqual(record.candidateCount, 3)
            for id in 3..<5 { try record.appendCandidate(sampleCandidate(Int64(id))) }
            try record.appendEpochs([EpochRow(candidateID: 4, epoch: 1, trainLoss: 0.3, trainAccuracy: 0.9)])
        }
        let record = try ExperimentRecord.openReadOnly(path: path)
        XCTAssertEqual(try record.readCandidates(), (0..<5).map { sampleCandidate(Int64($0)) })
        XCTAssertEqual(try record.readEpochs().count, 1)
    }

    func testRepairsIncompleteRowsAndInterruptedReplacement() throws {
        let path = temporaryPath("repair.h5")
        do {
            let record = try ExperimentRecord.create(path: path, metadata: sampleMetadata(), overwrite: true)
            try record.appendCandidate(sampleCandidate(0))
            try record.appendEpochs([EpochRow(candidateID: 0, epoch: 1, trainLoss: 1, trainAccuracy: 0.5)])
            // An interrupted evaluation: epochs of candidate 1 but no candidate row.
            try record.appendEpochs([EpochRow(candidateID: 1, epoch: 1, trainLoss: 1, trainAccuracy: 0.5)])
        }
        // Simulate what a crash can leave: zero-filled rows after the last complete one, and a
        // staged searcher state that was never swapped in.
        do {
            let file = try H5File.open(path: path, mode: .readWrite)
            let candidates = try file.openTable("candidates")
            try candidates.resize(rowCount: 3)
            try file.openTable("epochs").resize(rowCount: 3)
            try file.writeString("searcher_state_new", "{\"staged\":true}")
        }
        XCTAssertEqual(try ExperimentRecord.openReadOnly(path: path).readCandidates(), [sampleCandidate(0)])
        XCTAssertEqual(try ExperimentRecord.openReadOnly(path: path).searcherState(), "{\"staged\":true}")
        let record = try ExperimentRecord.open(path: path)
        XCTAssertEqual(record.candidateCount, 1)
        try record.appendCandidate(sampleCandidate(1))
        XCTAssertEqual(try record.readCandidates(), [sampleCandidate(0), sampleCandidate(1)])
        XCTAssertEqual(try record.readEpochs(), [EpochRow(candidateID: 0, epoch: 1, trainLoss: 1, trainAccuracy: 0.5)])
        XCTAssertEqual(try record.searcherState(), "{\"staged\":true}")
        try record.close()
        let file = try H5File.open(path: path)
        XCTAssertTrue(file.exists("searcher_state"))
        XCTAssertFalse(file.exists("searcher_state_new"))
    }

    func testErrorsAreClear() throws {
        let missing = temporaryPath("missing-record.h5")
        XCTAssertThrowsError(try ExperimentRecord.openReadOnly(path: missing)) { error in
            XCTAssertEqual(error as? RecordError, .hdf5(.fileNotFound(path: missing)))
        }
        let plain = temporaryPath("plain.h5")
        do { try H5File.create(path: plain).write("x", values: [1.0]) }
        XCTAssertThrowsError(try ExperimentRecord.open(path: plain)) { error in
            XCTAssertEqual("\(error)", "record '\(plain)': not a NASLab experiment record: missing root attribute format = \"naslab-experiment-record\"")
        }
        let path = temporaryPath("limits.h5")
        let record = try ExperimentRecord.create(path: path, metadata: sampleMetadata(), layout: RecordLayout(architectureCapacity: 16, reasonCapacity: 10), overwrite: true)
        var long = sampleCandidate(0)
        long.architecture = String(repeating: "a", count: 17)
        XCTAssertThrowsError(try record.appendCandidate(long)) { error in
            XCTAssertTrue("\(error)".contains("architecture has 17 bytes, the column holds 16"), "\(error)")
        }
        var reasoned = sampleCandidate(3)
        reasoned.architecture = "short"
        reasoned.reason = "ééééééé" // 14 bytes
        try record.appendCandidate(reasoned)
        XCTAssertEqual(try record.readCandidates().map(\.reason), ["ééé…"]) // 6 + 3 bytes ≤ 10
        XCTAssertThrowsError(try record.appendEpochs([EpochRow(candidateID: 0, epoch: 0, trainLoss: 1, trainAccuracy: 1)]))
        XCTAssertEqual(try ExperimentRecord.openReadOnly(path: path).layout.architectureCapacity, 16)
    }

    func testH5pyAndPandasReadTheDocumentedLayout() throws {
        let path = temporaryPath("h5py-record.h5")
        do {
            let record = try ExperimentRecord.create(path: path, metadata: sampleMetadata(), overwrite: true)
            for id in 0..<4 { try record.appendCandidate(sampleCandidate(Int64(id))) }
            try record.appendEpochs([EpochRow(candidateID: 0, epoch: 1, trainLoss: 0.7, trainAccuracy: 0.8, validationLoss: 0.6, validationAccuracy: 0.85)])
            try record.setParetoFronts(ParetoFronts(accuracyVsLatency: [0, 2], accuracyVsParams: [1]))
            try record.setBest(candidateID: 2, tensors: [("stem/conv/weight", [2, 2], [1, 2, 3, 4])])
            try record.setSearcherState("{\"k\": 1}")
        }
        let script = """
        import sys, math, json, h5py, numpy as np
        f = h5py.File(sys.argv[1], "r")
        assert f.attrs["format"] == "naslab-experiment-record"
        assert int(f.attrs["format_version"]) == 1
        assert int(f.attrs["seed"]) == 12345678901234567890, f.attrs["seed"]
        assert f.attrs["created_at"] == "2026-11-29T15:00:00Z"
        assert int(f.attrs["best_candidate_id"]) == 2
        assert f["config_yaml"][()].decode() == "dataset: digits\\nbudget: 20\\n"
        assert f["search_space_yaml"][()].decode().startswith("decisions:")
        assert f["environment"].attrs["git_commit"] == "abc123"
        assert int(f["environment"].attrs["thread_count"]) >= 1
        c = f["candidates"][:]
        names = ["id", "architecture", "hash", "parent_id", "status", "reason", "params", "macs", "flops",
                 "latency_ms_predicted", "latency_ms_measured", "val_accuracy", "test_accuracy", "epochs", "wall_seconds", "worker"]
        assert list(c.dtype.names) == names, c.dtype.names
        assert list(c["id"]) == [0, 1, 2, 3]
        assert [s.decode() for s in c["status"]] == ["accepted", "accepted", "accepted", "rejected"]
        assert c["reason"][3].decode() == 'params 1,234 > limit "1000"'
        assert c["architecture"][1].decode() == '{"choices":[1,1],"note":"w, \\\\"q\\\\""}', c["architecture"][1]
        assert math.isnan(c["test_accuracy"][2]) and math.isnan(c["val_accuracy"][3])
        assert c["params"][1] == 1001 and c["parent_id"][0] == -1
        assert abs(c["latency_ms_measured"][3] - (0.1 + 3 / 3)) < 1e-12 or math.isnan(c["latency_ms_measured"][3])
        e = f["epochs"][:]
        assert list(e.dtype.names) == ["candidate_id", "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"]
        assert e["val_accuracy"][0] == 0.85
        assert list(f["pareto/accuracy_vs_latency"][:]) == [0, 2] and list(f["pareto/accuracy_vs_params"][:]) == [1]
        assert int(f["best"].attrs["candidate_id"]) == 2
        assert f["best/weights/stem/conv/weight"].shape == (2, 2) and f["best/weights/stem/conv/weight"][1, 1] == 4
        assert json.loads(f["searcher_state"][()].decode()) == {"k": 1}
        try:
            import pandas as pd
        except ImportError:
            print("pandas not available: skipped the DataFrame check")
        else:
            df = pd.DataFrame(c)
            for col in ["architecture", "hash", "status", "reason", "worker"]:
                df[col] = df[col].str.decode("utf-8")
            assert list(df.columns) == names
            assert df.loc[df.status == "rejected", "id"].tolist() == [3]
            assert df["test_accuracy"].isna().sum() == 2
            print("pandas ok")
        print("ok")
        """
        let output = try runPython(script, [path])
        XCTAssertTrue(output.contains("ok"), output)
        // pandas is in /work/venv here; CI only guarantees h5py.
        if FileManager.default.isExecutableFile(atPath: "/work/venv/bin/python") {
            let result = try runTool("/work/venv/bin/python", ["-c", script, path])
            XCTAssertEqual(result.status, 0, result.output)
            XCTAssertTrue(result.output.contains("pandas ok"), result.output)
        }
        let dump = try runTool("/usr/bin/h5dump", ["-H", path])
        XCTAssertEqual(dump.status, 0, dump.output)
        XCTAssertTrue(dump.output.contains("DATASET \"candidates\""), dump.output)
    }

    // MARK: Export

    func testCSVAndJSONExportRoundTrip() throws {
        let rows = (0..<6).map(sampleCandidate) + [CandidateRow(id: 9, architecture: "line1\nline2", hash: "h", status: .failed, reason: "out of memory, \"oom\"\r\n", params: 1e20, macs: 0.1, flops: -0.0)]
        let csv = CandidateExport.csv(rows)
        XCTAssertTrue(csv.hasPrefix("id,architecture,hash,parent_id,status,reason,params,macs,flops,latency_ms_predicted,latency_ms_measured,val_accuracy,test_accuracy,epochs,wall_seconds,worker\r\n"))
        // Row 3 (rejected): quoted fields with doubled quotes; unknown numbers are empty.
        let line3 = csv.components(separatedBy: "\r\n")[4]
        XCTAssertEqual(line3, "3,\"{\"\"choices\"\":[0,1],\"\"note\"\":\"\"w, \\\"\"q\\\"\"\"\"}\",\(stableHash(rows[3].architecture)),2,rejected,\"params 1,234 > limit \"\"1000\"\"\",1234,56789,113578,0.25,,,,0,,local-0")
        XCTAssertEqual(try CandidateExport.parseCSV(csv), rows)

        let json = CandidateExport.json(rows)
        let objects = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
        XCTAssertEqual(objects.count, rows.count)
        XCTAssertTrue(objects[3]["val_accuracy"] is NSNull)
        XCTAssertTrue(objects[2]["test_accuracy"] is NSNull)
        XCTAssertEqual(objects[0]["architecture"] as? String, rows[0].architecture)
        XCTAssertEqual(objects[0]["status"] as? String, "accepted")
        for key in ["id", "architecture", "status", "params", "macs", "latency_ms_predicted", "latency_ms_measured", "val_accuracy", "test_accuracy"] {
            XCTAssertNotNil(objects[0][key], key)
        }
        XCTAssertEqual(try CandidateExport.parseJSON(json), rows)
        XCTAssertEqual(CandidateExport.json([]), "[]\n")

        // A second reader: Python's csv and json modules.
        let csvPath = temporaryPath("export.csv"), jsonPath = temporaryPath("export.json")
        try CandidateExport.writeCSV(rows, to: csvPath)
        try CandidateExport.writeJSON(rows, to: jsonPath)
        let output = try runPython("""
        import sys, csv, json, math
        rows = list(csv.DictReader(open(sys.argv[1], newline="")))
        assert len(rows) == 7 and rows[3]["reason"] == 'params 1,234 > limit "1000"', rows[3]
        assert rows[6]["architecture"] == "line1\\nline2" and rows[3]["val_accuracy"] == ""
        data = json.load(open(sys.argv[2]))
        assert data[3]["val_accuracy"] is None and data[6]["reason"] == 'out of memory, "oom"\\r\\n'
        assert data[1]["latency_ms_measured"] == 0.1 + 1 / 3, data[1]["latency_ms_measured"]
        print("ok")
        """, [csvPath, jsonPath])
        XCTAssertTrue(output.contains("ok"))
        XCTAssertThrowsError(try CandidateExport.parseCSV("id,x\r\n1,2\r\n"))
    }

    // MARK: Crash safety

    /// Not a test on its own: the writer half of `testKillDuringWritesLosesNoFlushedCandidate`,
    /// run in a child process of the test binary when NASLAB_RECORDS_CRASH_CHILD is set.
    func testCrashChildWriter() throws {
        guard let path = ProcessInfo.processInfo.environment["NASLAB_RECORDS_CRASH_CHILD"] else {
            throw XCTSkip("helper for testKillDuringWritesLosesNoFlushedCandidate (runs only in its child process)")
        }
        // Resume an existing record (as the runner does after a crash), else start a new one.
        let record = FileManager.default.fileExists(atPath: path)
            ? try ExperimentRecord.open(path: path, liveLog: true)
            : try ExperimentRecord.create(path: path, metadata: sampleMetadata(name: "crash"), liveLog: true)
        var id = Int64(try record.readCandidates().count)
        while true {
            try record.appendEpochs((1...3).map { EpochRow(candidateID: id, epoch: $0, trainLoss: 1, trainAccuracy: Double(id)) })
            try record.appendCandidate(sampleCandidate(id))
            try record.setSearcherState("{\"next\": \(id + 1)}")
            if id % 7 == 0 { try record.setBest(candidateID: id, tensors: [("w", [256], [Float](repeating: Float(id), count: 256))]) }
            FileHandle.standardOutput.write(Data("NASLAB-ROW \(id)\n".utf8))
            id += 1
        }
    }

    func testKillDuringWritesLosesNoFlushedCandidate() throws {
        let path = temporaryPath("crash.h5")
        try? FileManager.default.removeItem(atPath: path)
        let liveLog = ExperimentRecord.liveLogPath(forRecord: path)
        XCTAssertEqual(liveLog, temporaryPath("crash.live.jsonl"))
        var liveReaderChecked = false
        let binary = URL(fileURLWithPath: CommandLine.arguments[0])
        guard binary.lastPathComponent.hasSuffix(".xctest"), FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw XCTSkip("the test binary cannot be re-run as a child here (\(binary.path))")
        }
        var completeRows = 0
        var parentWritten = Set<Int64>()
        for round in 0..<6 {
            let process = Process()
            process.executableURL = binary
            process.arguments = ["RecordsTests.RecordsTests/testCrashChildWriter"]
            process.environment = ProcessInfo.processInfo.environment.merging(["NASLAB_RECORDS_CRASH_CHILD": path]) { $1 }
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            try process.run()
            let target = completeRows + 25 + 11 * round
            var reported = Int64(-1)
            var buffer = ""
            let deadline = Date().addingTimeInterval(120)
            while reported < Int64(target), Date() < deadline, process.isRunning {
                let data = pipe.fileHandleForReading.availableData
                if data.isEmpty { break }
                buffer += String(decoding: data, as: UTF8.self)
                for line in buffer.split(separator: "\n") where line.hasPrefix("NASLAB-ROW ") {
                    reported = max(reported, Int64(line.dropFirst(11)) ?? -1)
                }
                if !liveReaderChecked, reported >= 20 {
                    // A live reader while the writer runs: the JSON Lines log.
                    let output = try runPython("""
                    import sys, json
                    text = open(sys.argv[1]).read()
                    lines = text.split("\\n")[:-1]   # a last line without newline is still being written
                    rows = [json.loads(l) for l in lines]
                    assert len(rows) >= 21 and [r["id"] for r in rows] == list(range(len(rows))), len(rows)
                    print("live rows", len(rows))
                    """, [liveLog])
                    XCTAssertTrue(output.contains("live rows"), output)
                    // The HDF5 record itself is readable while it is written (each flush replaces it
                    // whole), and a second writer is refused.
                    let live = try runPython("""
                    import sys, h5py
                    with h5py.File(sys.argv[1], "r") as f:
                        ids = list(f["candidates"][:]["id"])
                    assert len(ids) >= 21 and ids == list(range(len(ids))), ids
                    print("live hdf5 rows", len(ids))
                    """, [path])
                    XCTAssertTrue(live.contains("live hdf5 rows"), live)
                    XCTAssertThrowsError(try ExperimentRecord.open(path: path)) { error in
                        XCTAssertTrue("\(error)".contains("another process is writing it"), "\(error)")
                    }
                    liveReaderChecked = true
                }
            }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationReason, .uncaughtSignal, "child ended by itself:\n\(buffer.suffix(2000))")
            XCTAssertGreaterThanOrEqual(reported, Int64(target), "child reported only \(reported) rows:\n\(buffer.suffix(2000))")

            // Every reported row is in the file, readable by us and by h5py, and the record reopens to append.
            let readOnly = try ExperimentRecord.openReadOnly(path: path)
            let rows = try readOnly.readCandidates()
            XCTAssertGreaterThanOrEqual(rows.count, Int(reported) + 1)
            XCTAssertEqual(Array(rows.prefix(Int(reported) + 1)), (0...reported).map(sampleCandidate))
            let epochs = try readOnly.readEpochs()
            for id in 0...reported where !parentWritten.contains(id) {
                XCTAssertEqual(epochs.filter { $0.candidateID == id }.map(\.epoch), [1, 2, 3], "epochs of candidate \(id)")
            }
            let state = try XCTUnwrap(try readOnly.searcherState())
            // The child keeps writing between its last report and the kill: the stored state must be at
            // least the reported one and never ahead of the rows on disk.
            let next = Int64(state.filter(\.isNumber)) ?? -1
            XCTAssertTrue(next >= reported + 1 && next <= Int64(rows.count) + 1, "state \(state), reported \(reported), rows \(rows.count)")
            XCTAssertNotNil(try readOnly.bestCandidateID())
            try readOnly.close()
            // The live log holds every reported row (possibly one more, and a partial last line).
            let logText = try String(contentsOfFile: liveLog, encoding: .utf8)
            let logLines = logText.components(separatedBy: "\n").dropLast()
            let logged = try CandidateExport.parseJSON("[" + logLines.joined(separator: ",") + "]")
            XCTAssertEqual(Array(logged.prefix(Int(reported) + 1)), (0...reported).map(sampleCandidate))
            // A second reader reads every dataset and attribute in full.
            let output = try runPython("""
            import sys, h5py
            f = h5py.File(sys.argv[1], "r")
            def read(name, obj):
                if isinstance(obj, h5py.Dataset):
                    obj[()]
                dict(obj.attrs)
            f.visititems(read)
            print("rows", len(f["candidates"]))
            """, [path])
            XCTAssertTrue(output.contains("rows"), output)
            let resumed = try ExperimentRecord.open(path: path, liveLog: true)
            // Resuming rewrites the live log from the record.
            let rewritten = try String(contentsOfFile: liveLog, encoding: .utf8).components(separatedBy: "\n").dropLast()
            XCTAssertEqual(try CandidateExport.parseJSON("[" + rewritten.joined(separator: ",") + "]"), rows)
            // Resuming dropped the epochs of the interrupted candidate, if any.
            XCTAssertTrue(try resumed.readEpochs().allSatisfy { $0.candidateID < Int64(rows.count) })
            try resumed.appendCandidate(sampleCandidate(Int64(rows.count)))
            parentWritten.insert(Int64(rows.count))
            XCTAssertEqual(try resumed.readCandidates().count, rows.count + 1)
            try resumed.close()
            completeRows = rows.count + 1
        }
        XCTAssertGreaterThanOrEqual(completeRows, 6 * 25)
        XCTAssertTrue(liveReaderChecked)
    }
}
